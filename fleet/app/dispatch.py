"""The scheduler's adapter: the store's printers and jobs in, the queue's order and assignments out."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Optional

from .. import scheduler
from ..errors import Forbidden
from ..geometry import Box
from ..models import Job, Member, Printer
from ..protocol import BedShape
from ..scheduler.wording import not_for
from ..spools import Spool
from ..states import ACTIVE, PENDING
from .base import Context


@dataclass(frozen=True)
class QueueEntry:
    job: Job
    member_name: str
    explanation: Optional[scheduler.Explanation]


def estimate(job: Job) -> float:
    """How long a job should print, in seconds, from its analysis (0 when the file does not say)."""
    analysis = job.analysis
    value = analysis.get("estimated_time_s") or analysis.get("own_time_estimate_s") or 0.0
    return float(value)


def grams_of(job: Job) -> float:
    """The filament a job takes, in grams, from its analysis (0 when the file does not say)."""
    weight = job.analysis.get("filament_weight_g")
    return float(weight) if isinstance(weight, (int, float)) and weight > 0 else 0.0


def job_info(job: Job) -> scheduler.JobInfo:
    bounds = job.analysis.get("bounds")
    return scheduler.JobInfo(
        id=job.id,
        member_id=job.member_id,
        state=job.state,
        submitted_at=job.submitted_at,
        estimated_seconds=estimate(job),
        bounds=Box.from_dict(bounds) if bounds else None,
        nozzle_diameter=job.analysis.get("nozzle_diameter"),
        material=job.material,
        priority=job.priority,
        heats_bed=bool(job.analysis.get("bed_temperature_c")),
        tools=int(job.analysis.get("tools") or 1),
        colour=job.colour,
        grams=grams_of(job),
    )


def busy_until(printers: list[Printer], active: list[Job], now: float) -> dict[str, float]:
    """When each printer holding a job should be free again, by its job's estimate."""
    by_id = {j.id: j for j in active}
    result: dict[str, float] = {}
    for p in printers:
        job = by_id.get(p.current_job_id) if p.current_job_id is not None else None
        if job is not None:
            start = job.started_at or now
            result[p.id] = max(now, start + estimate(job))
    return result


def printer_info(
    p: Printer, busy: Optional[float] = None, spool: Optional[Spool] = None
) -> scheduler.PrinterInfo:
    """The scheduler's view of a printer: with a spool loaded, its material, colour and grams left;
    without one (a lab that does not track spools), the printer's own material and any grams."""
    return scheduler.PrinterInfo(
        id=p.id,
        state=p.state,
        volume=p.volume,
        nozzle_diameter=p.nozzle_diameter,
        material=p.material if spool is None else spool.material,
        colour=None if spool is None else spool.colour_name,
        spool_grams=None if spool is None else spool.remaining_grams,
        restricted=p.restricted,
        busy_until=busy,
        round_bed=p.bed_shape == BedShape.CIRCULAR.value,
        heated_bed=p.heated_bed,
        extruders=p.extruders,
        lending=p.lending,
    )


@dataclass(frozen=True)
class Unfit:
    """A job no printer in the fleet can take, and why this printer's profile cannot either."""

    job_id: int
    reason: str


class Dispatcher:
    """Plans with :mod:`fleet.scheduler` and claims what the plan says, one conditional claim each."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def _plan(
        self, *, hide_printers: Collection[str] = (), hide_jobs: Collection[int] = (), explain: bool = True
    ) -> tuple[scheduler.Plan, list[Job]]:
        now = self.ctx.clock()
        lab = self.ctx.lab_settings()
        jobs = [j for j in self.store.list_jobs(states=PENDING) if j.id not in hide_jobs]
        active = self.store.list_jobs(states=ACTIVE)
        printers = [p for p in self.store.list_printers() if p.id not in hide_printers]
        until = busy_until(printers, active, now)
        spools = self.store.loaded_spools()
        infos = [printer_info(p, until.get(p.id), spools.get(p.id)) for p in printers]
        usage = scheduler.decayed_usage(
            self.store.usage_records(since=now - 8 * lab.fair_share_half_life_s),
            now,
            half_life_s=lab.fair_share_half_life_s,
        )
        plan = scheduler.plan(
            infos,
            [job_info(j) for j in jobs],
            usage=usage,
            grants=self.store.grants(),
            now=now,
            explain=explain,
        )
        return plan, jobs

    def queue(self, actor: Member) -> list[QueueEntry]:
        """Every waiting job in queue order, each with the scheduler's explanation of where it stands."""
        del actor  # any member sees the whole queue (file names are the caller's to hide)
        plan, jobs = self._plan()
        names = {m.id: m.name for m in self.store.list_members()}
        by_id = {j.id: j for j in jobs}
        ordered = [by_id[i] for i in plan.order if i in by_id]
        seen = set(plan.order)
        ordered += [j for j in jobs if j.id not in seen]
        return [QueueEntry(j, names.get(j.member_id, "?"), plan.explanations.get(j.id)) for j in ordered]

    def unfit_for(self, printer: Printer, printer_id: str) -> list[Unfit]:
        """Waiting jobs no printer can take that this printer's profile cannot take either, in order.

        For the printer's own node (its token), to tell its owner what a bigger or different profile
        would take; the reasons name the jobs' needs only, never their members or files.
        """
        if printer.id != printer_id:
            raise Forbidden(f"this token belongs to printer {printer.id}, not {printer_id}")
        plan, jobs = self._plan()
        info = printer_info(printer)
        by_id = {j.id: j for j in jobs}
        unfit = []
        seen = set(plan.order)
        for job_id in [*plan.order, *(j.id for j in jobs if j.id not in seen)]:
            explanation = plan.explanations.get(job_id)
            if explanation is None or explanation.reason is not scheduler.WaitReason.NO_COMPATIBLE_PRINTER:
                continue
            reason = not_for(job_info(by_id[job_id]), info)
            if reason is not None:
                unfit.append(Unfit(job_id, reason))
        return unfit

    def dispatch_pass(self, avoid: Collection[tuple[int, str]] = ()) -> list[tuple[int, str]]:
        """Assign what the scheduler says; a job or printer another process claimed first is skipped.

        ``avoid`` holds (job, printer) pairs not to make now (the printer just refused that job).
        When the plan wants one, the pass plans again without that printer, so the job may go to
        another, then without that job, so the printer may take another.
        """
        avoid = frozenset(avoid)
        assigned: list[tuple[int, str]] = []
        blocked = self._assign_planned(avoid, assigned)
        if blocked:
            self._assign_planned(avoid, assigned, hide_printers={p for _, p in blocked})
            self._assign_planned(avoid, assigned, hide_jobs={j for j, _ in blocked})
        return assigned

    def _assign_planned(
        self,
        avoid: frozenset[tuple[int, str]],
        assigned: list[tuple[int, str]],
        *,
        hide_printers: Collection[str] = (),
        hide_jobs: Collection[int] = (),
    ) -> list[tuple[int, str]]:
        """Plan once and claim the assignments (added to ``assigned``); returns the avoided ones."""
        # Dispatch needs only the assignments: the scheduler's fast pass, without explanations.
        plan, _ = self._plan(hide_printers=hide_printers, hide_jobs=hide_jobs, explain=False)
        now = self.ctx.clock()
        blocked = []
        for job_id, printer_id in plan.assignments:
            if (job_id, printer_id) in avoid:
                blocked.append((job_id, printer_id))
            elif self.store.assign_job(job_id, printer_id, actor="system", now=now):
                assigned.append((job_id, printer_id))
                self.ctx.queue_changed()
                self.ctx.printer_changed(printer_id)
        return blocked
