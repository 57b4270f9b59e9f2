"""The scheduler's adapter: the store's printers and jobs in, the queue's order and assignments out."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Optional, Union

from .. import scheduler
from ..economy import wording as economy_words
from ..economy.pricing import grams_of
from ..errors import Forbidden
from ..geometry import Box
from ..models import Job, Member, Printer
from ..protocol import BedShape
from ..scheduler.wording import not_for
from ..spools import Spool
from ..states import ACTIVE, PENDING
from .base import Context
from .quotas import Quotas


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


def job_info(
    job: Job, group: Optional[tuple[str, int]] = None, *, lifted: bool = False, cost_minor: int = 0
) -> scheduler.JobInfo:
    """What the scheduler knows of a job; ``group`` is its member's (name, priority), ``lifted`` says a
    manager lifted its quotas, ``cost_minor`` is its estimated cost (for a member with a cost quota)."""
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
        grams=float(grams_of(job.analysis.get("filament_weight_g"))),
        cost_minor=cost_minor,
        quota_lifted=lifted,
        group=None if group is None else group[0],
        group_priority=0 if group is None else group[1],
        heats_chamber=bool(job.analysis.get("chamber_temperature_c")),
        colour=job.colour,
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
        heated_chamber=p.heated_chamber,
        extruders=p.extruders,
        lending=p.lending,
    )


@dataclass(frozen=True)
class Unfit:
    """A job no printer in the fleet can take, and why this printer's profile cannot either."""

    job_id: int
    reason: str
    #: The reason as a stable key and its values, for the plugin to word in its user's language.
    key: str = ""
    params: dict[str, Union[str, int]] = field(default_factory=dict)


class Dispatcher:
    """Plans with :mod:`fleet.scheduler` and claims what the plan says, one conditional claim each."""

    def __init__(self, ctx: Context, quotas: Quotas) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.quotas = quotas
        #: Where a pass gets every printer: the store, or a :class:`~fleet.app.printer_view.PrinterView`
        #: kept up to date by PostgreSQL's change notes (``fleet.server`` sets it when they are heard).
        self.list_printers: Callable[[], list[Printer]] = self.store.list_printers

    def _plan(
        self, *, hide_printers: Collection[str] = (), hide_jobs: Collection[int] = (), explain: bool = True
    ) -> tuple[scheduler.Plan, list[Job]]:
        now = self.ctx.clock()
        lab = self.ctx.lab_settings()
        jobs = [j for j in self.store.list_jobs(states=PENDING) if j.id not in hide_jobs]
        active = self.store.list_jobs(states=ACTIVE)
        printers = [p for p in self.list_printers() if p.id not in hide_printers]
        until = busy_until(printers, active, now)
        spools = self.store.loaded_spools()
        infos = [printer_info(p, until.get(p.id), spools.get(p.id)) for p in printers]
        usage = scheduler.decayed_usage(
            self.store.usage_records(since=now - 8 * lab.fair_share_half_life_s),
            now,
            half_life_s=lab.fair_share_half_life_s,
        )
        book = self.quotas.book({j.member_id for j in jobs})
        estimate = self.quotas.pricing.estimator() if book.cost_limited else None

        def info(job: Job) -> scheduler.JobInfo:
            cost = 0
            if estimate is not None and job.member_id in book.cost_limited:
                cost = estimate(job.analysis, job.material, None).total_minor
            return job_info(
                job, book.groups.get(job.member_id), lifted=job.id in book.lifted, cost_minor=cost
            )

        plan = scheduler.plan(
            infos,
            [info(j) for j in jobs],
            usage=usage,
            grants=self.store.grants(),
            now=now,
            explain=explain,
            quotas=book.allowances,
            currency=lab.currency,
        )
        return plan, jobs

    def hold_words(self, actor: Member, job_id: int, lang: str) -> Optional[str]:
        """Why a quota holds a job, in ``lang`` ("en" or "fr"); None when none does."""
        del actor  # the queue, reasons included, is public to members
        plan, _ = self._plan()
        hold = plan.holds.get(job_id)
        if hold is None:
            return None
        words = economy_words.hold_words(hold, lang, self.ctx.lab_settings().currency)
        return f"{words[0].upper()}{words[1:]}."

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
            misfit = not_for(job_info(by_id[job_id]), info)
            if misfit is not None:
                unfit.append(Unfit(job_id, misfit.text, misfit.key, dict(misfit.params)))
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
        plan, jobs = self._plan(hide_printers=hide_printers, hide_jobs=hide_jobs, explain=False)
        submitted = {job.id: job.submitted_at for job in jobs}
        now = self.ctx.clock()
        blocked = []
        for job_id, printer_id in plan.assignments:
            if (job_id, printer_id) in avoid:
                blocked.append((job_id, printer_id))
            elif self.store.assign_job(job_id, printer_id, actor="system", now=now):
                assigned.append((job_id, printer_id))
                self.ctx.metrics.observe("queue.wait_s", now - submitted[job_id])
                self.ctx.queue_changed()
                self.ctx.printer_changed(printer_id)
        return blocked
