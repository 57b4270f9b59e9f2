"""The dashboard's read models: the printer board, the queue's signature, the lab's print history,
and the fleet's figures for monitoring."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Optional

from ..errors import NotFound
from ..models import Job, LiveStatus, Member, Printer
from ..states import ACTIVE, PENDING, JobState, PrinterState
from .base import Context
from .printers import Printers
from .reports import PrinterReports


@dataclass(frozen=True)
class PrinterBoard:
    """One printer as the dashboard shows it: its record, what its node last said, and its job."""

    printer: Printer
    live: Optional[LiveStatus]
    job: Optional[Job]
    #: The name of the member whose job the printer holds.
    member_name: Optional[str]
    #: Waiting for a bed clear: the member whose print is on the plate (they, or a manager, clear it).
    plate_owner: Optional[int]
    #: Waiting for a bed clear with a photo of the plate: the job it is filed under (the photo is its
    #: plate owner's and the managers' to see, as the job's own page).
    plate_photo: Optional[int] = None


@dataclass(frozen=True)
class FleetFigures:
    """What monitoring reads of the lab's state at one moment (three small queries, any lab size)."""

    printers: dict[PrinterState, int]
    #: Every job ever submitted, by the state it is in (finished states only grow).
    jobs: dict[JobState, int]
    #: How long the longest-queued job has waited since it was submitted (0 with an empty queue).
    oldest_queued_s: float


class Board:
    """Read-only views any signed-in member may see; each is a few queries, whatever the lab's size."""

    def __init__(self, ctx: Context, printers: Printers, reports: PrinterReports) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.printers = printers
        self.reports = reports

    def printer_board(self, only: Optional[Collection[str]] = None) -> list[PrinterBoard]:
        """Every printer (or those in ``only``) with its live status and current job, in name order."""
        if only is None:
            printers = self.store.list_printers()
        else:
            printers = []
            for printer_id in only:
                try:
                    printers.append(self.store.get_printer(printer_id))
                except NotFound:
                    continue  # removed meanwhile: the caller sees it missing
        printers.sort(key=lambda p: (p.name.lower(), p.id))
        active = {j.id: j for j in self.store.list_jobs(states=ACTIVE)} if printers else {}
        names = {m.id: m.name for m in self.store.list_members()} if printers else {}
        plates: dict[str, Job] = {}
        for p in printers:
            if p.state is PrinterState.AWAITING_BED_CLEAR:
                last = self.store.last_finished_job(p.id)  # the print on the plate (see plate_owner)
                if last is not None:
                    plates[p.id] = last
        photos = self.store.jobs_with_snapshots([j.id for j in plates.values()])
        board = []
        for p in printers:
            job = active.get(p.current_job_id) if p.current_job_id is not None else None
            plate = plates.get(p.id)
            member_name = names.get(job.member_id) if job is not None else None
            board.append(
                PrinterBoard(
                    p,
                    self.reports.live(p.id),
                    job,
                    member_name,
                    plate.member_id if plate is not None else None,
                    plate.id if plate is not None and plate.id in photos else None,
                )
            )
        return board

    def queue_signature(self) -> tuple[tuple[int, str, int], ...]:
        """What changes whenever the queue does: the waiting jobs, their states and priorities."""
        return tuple((j.id, j.state.value, j.priority) for j in self.store.list_jobs(states=PENDING))

    def figures(self) -> FleetFigures:
        """The counts behind the fleet's monitoring gauges (``/metrics``), read when it is scraped."""
        oldest = self.store.oldest_submission(JobState.QUEUED)
        return FleetFigures(
            printers=self.store.count_printers_by_state(),
            jobs=self.store.count_jobs_by_state(),
            oldest_queued_s=0.0 if oldest is None else max(0.0, self.ctx.clock() - oldest),
        )

    def print_history(self, actor: Member, *, since: float = 0.0) -> list[Job]:
        """Every job that reached a printer and did not end before ``since``, for the lab's statistics.

        Any member may ask (a member's page shows only their own row beside the lab's totals);
        jobs still printing come with ``finished_at`` None.
        """
        del actor  # signed in is enough: the caller decides which rows a person sees
        return [
            j
            for j in self.store.list_jobs()
            if j.started_at is not None and (j.finished_at is None or j.finished_at >= since)
        ]
