"""The lab's statistics as each person may see them: the store's jobs become rows for :mod:`fleet.statistics`.

Who sees what: everyone sees the lab's totals and the breakdowns by printer, material and group (no
person's own figures); by member, a manager sees every member and a member only their own row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Optional

from ..economy.pricing import grams_of as analysis_grams
from ..models import Job, Member, Role
from ..states import JobState
from ..statistics import Dimension, Figures, Period, PrintRow, Report, breakdown, parse_period, totals
from .base import Context

#: Extra columns of a job's row, by job id, that other concerns (membership groups, charges) supply.
GroupsOf = Callable[[Iterable[Job]], Mapping[int, str]]
CostsOf = Callable[[Iterable[Job]], Mapping[int, Decimal]]


def grams_of(job: Job) -> float:
    """The job's filament in grams, read as its price and its spool read it (to the centigram)."""
    return float(analysis_grams(job.analysis.get("filament_weight_g")))


def row_of(
    job: Job,
    member_names: Mapping[int, str],
    printer_names: Mapping[str, str],
    group: Optional[str] = None,
    cost: Optional[Decimal] = None,
) -> PrintRow:
    """A job that reached a printer as the statistics' row (``started_at`` must be set)."""
    assert job.started_at is not None
    material = job.material or job.analysis.get("material")
    state = (
        job.state if job.state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED) else JobState.PRINTING
    )
    return PrintRow(
        job_id=job.id,
        member_id=job.member_id,
        member=member_names.get(job.member_id, f"#{job.member_id}"),
        state=state,
        submitted_at=job.submitted_at,
        started_at=job.started_at,
        finished_at=job.finished_at if state is not JobState.PRINTING else None,
        grams=grams_of(job),
        printer_id=job.printer_id,
        printer=printer_names.get(job.printer_id) if job.printer_id else None,
        material=material if isinstance(material, str) else None,
        group=group,
        cost=cost,
    )


class LabStatistics:
    """Reports over a period, by member, group, printer or material, and the CSV of one."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store
        #: Set by the composition root when the lab has membership groups or charges.
        self.groups_of: Optional[GroupsOf] = None
        self.costs_of: Optional[CostsOf] = None

    def period(self, first: Optional[str], last: Optional[str]) -> Period:
        """The period asked for (ISO dates, either may be missing) on the lab's clock."""
        return parse_period(first, last, self.ctx.lab_settings().time_zone, self.ctx.clock())

    def rows(self, period: Period) -> list[PrintRow]:
        jobs = [
            j for j in self.store.list_jobs(started=(period.start, period.end)) if j.started_at is not None
        ]
        members = {m.id: m.name for m in self.store.list_members()}
        printers = {p.id: p.name for p in self.store.list_printers()}
        groups = self.groups_of(jobs) if self.groups_of is not None else {}
        costs = self.costs_of(jobs) if self.costs_of is not None else {}
        return [row_of(j, members, printers, groups.get(j.id), costs.get(j.id)) for j in jobs]

    def report(self, actor: Member, by: Dimension, period: Period) -> Report:
        """The breakdown ``by`` one dimension, as ``actor`` may see it, with the lab's totals."""
        return self.reports(actor, period, (by,))[by]

    def reports(
        self, actor: Member, period: Period, dimensions: Iterable[Dimension] = tuple(Dimension)
    ) -> dict[Dimension, Report]:
        """Several breakdowns of one period, reading the store once (the dashboard's page)."""
        rows = self.rows(period)
        now = self.ctx.clock()
        lab = totals(rows, now)
        return {by: Report(period, by, self._figures(actor, rows, by, now), lab) for by in dimensions}

    @staticmethod
    def _figures(actor: Member, rows: list[PrintRow], by: Dimension, now: float) -> list[Figures]:
        if by is not Dimension.MEMBER or actor.role is Role.MANAGER:
            return breakdown(rows, by, now)
        own = breakdown([r for r in rows if r.member_id == actor.id], by, now)
        # A member with no print in the period still sees their own (empty) row.
        return own or [replace(totals([], now), key=str(actor.id), label=actor.name)]
