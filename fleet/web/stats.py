"""The history and statistics page's numbers: per member and per printer, from the jobs that printed.

Pure functions over :class:`~fleet.models.Job` lists, so the sums are easy to check. Days are UTC
days; a job's printing time is ``finished_at - started_at`` (up to ``now`` while it still prints).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Optional

from ..app.statistics import grams_of
from ..models import Job, Printer
from ..states import JobState

DAY_S = 86400.0
#: How many days the printers' utilisation chart covers.
CHART_DAYS = 14
#: The chart's geometry, in SVG user units.
CHART_WIDTH = 420
CHART_HEIGHT = 120
CHART_TOP = 8
CHART_BOTTOM = 20
CHART_LEFT = 34


@dataclass
class MemberStats:
    member_id: int
    name: str
    done: int = 0
    failed: int = 0
    seconds: float = 0.0
    filament_mm: float = 0.0
    filament_g: float = 0.0

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0

    @property
    def filament_m(self) -> float:
        return self.filament_mm / 1000.0

    def add(self, job: Job, now: float) -> None:
        self.seconds += printed_seconds(job, now)
        if job.state is JobState.DONE:
            self.done += 1
        elif job.state is JobState.FAILED:
            self.failed += 1
        if job.state in (JobState.DONE, JobState.FAILED):
            self.filament_mm += _number(job.analysis.get("filament_length_mm"))
            self.filament_g += grams_of(job)


@dataclass
class Bar:
    day: float  # the day's start, epoch seconds (UTC)
    hours: float
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0

    @property
    def share(self) -> float:
        """The part of the day spent printing, 0 to 1."""
        return min(1.0, self.hours / 24.0)


@dataclass
class PrinterStats:
    printer_id: str
    name: str
    failures: int = 0
    bars: list[Bar] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return sum(b.hours for b in self.bars)

    @property
    def utilisation(self) -> float:
        return self.hours / (24.0 * len(self.bars)) if self.bars else 0.0


@dataclass
class Statistics:
    members: list[MemberStats]
    totals: MemberStats
    printers: list[PrinterStats]
    days: list[float]


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def printed_seconds(job: Job, now: float, start: float = float("-inf"), end: float = float("inf")) -> float:
    """How long ``job`` printed within [start, end)."""
    if job.started_at is None:
        return 0.0
    stop = job.finished_at if job.finished_at is not None else now
    return max(0.0, min(stop, end) - max(job.started_at, start))


def day_starts(now: float, days: int = CHART_DAYS) -> list[float]:
    """The UTC midnights of the last ``days`` days, oldest first, today last."""
    today = now - now % DAY_S
    return [today - (days - 1 - i) * DAY_S for i in range(days)]


def _layout(bars: list[Bar]) -> None:
    inner_w = CHART_WIDTH - CHART_LEFT
    inner_h = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    slot = inner_w / max(1, len(bars))
    for i, bar in enumerate(bars):
        bar.width = round(slot * 0.7, 2)
        bar.x = round(CHART_LEFT + i * slot + slot * 0.15, 2)
        bar.height = round(inner_h * bar.share, 2)
        bar.y = round(CHART_TOP + inner_h - bar.height, 2)


def compute(
    jobs: Iterable[Job],
    printers: Iterable[Printer],
    names: dict[int, str],
    *,
    now: float,
    only_member: Optional[int] = None,
    days: int = CHART_DAYS,
) -> Statistics:
    """The page's numbers. ``only_member`` keeps one member's row (the totals still cover the lab)."""
    jobs = list(jobs)
    starts = day_starts(now, days)
    window_start = starts[0]
    totals = MemberStats(0, "")
    rows: dict[int, MemberStats] = {}
    for job in jobs:
        totals.add(job, now)
        if only_member is None or job.member_id == only_member:
            name = names.get(job.member_id, f"#{job.member_id}")
            rows.setdefault(job.member_id, MemberStats(job.member_id, name)).add(job, now)
    if only_member is not None and only_member not in rows:
        rows[only_member] = MemberStats(only_member, names.get(only_member, f"#{only_member}"))
    printer_rows = []
    for printer in sorted(printers, key=lambda p: (p.name.lower(), p.id)):
        mine = [j for j in jobs if j.printer_id == printer.id]
        bars = [
            Bar(day, sum(printed_seconds(j, now, day, day + DAY_S) for j in mine) / 3600.0) for day in starts
        ]
        _layout(bars)
        failures = sum(
            1
            for j in mine
            if j.state is JobState.FAILED and j.finished_at is not None and j.finished_at >= window_start
        )
        printer_rows.append(PrinterStats(printer.id, printer.name, failures, bars))
    members = sorted(rows.values(), key=lambda r: r.name.lower())
    return Statistics(members, totals, printer_rows, starts)


# -- a period's breakdown (fleet.statistics), as horizontal bar charts ----------------------------------

#: The breakdown charts' geometry, in SVG user units: a label column, then the bars.
HBAR_WIDTH = 420
HBAR_LABEL = 110
HBAR_ROW = 18
HBAR_TOP = 4
#: Room right of the longest bar for its text.
HBAR_TEXT = 90


@dataclass(frozen=True)
class HBar:
    """One row of a horizontal bar chart: its label, up to two values, their bars' lengths, its text."""

    label: str
    value: float
    y: float
    width: float
    #: What the row says beside its bars ("97.1 h", "8 min / 2 h 59").
    text: str
    #: A second, lighter bar behind the first (the 90th percentile behind the median wait).
    back: float = 0.0
    back_width: float = 0.0


@dataclass(frozen=True)
class HBarChart:
    bars: list[HBar]
    height: float
    left: float = HBAR_LABEL
    width: float = HBAR_WIDTH


def hbar_chart(rows: Iterable[tuple[str, float, float, str]]) -> HBarChart:
    """Lay out ``(label, value, back, text)`` rows: bars scaled to the largest value or back."""
    rows = list(rows)
    top = max([max(value, back) for _, value, back, _ in rows] + [0.0])
    span = HBAR_WIDTH - HBAR_LABEL - HBAR_TEXT

    def length(value: float) -> float:
        return round(span * value / top, 2) if top > 0 else 0.0

    bars = [
        HBar(label, value, HBAR_TOP + i * HBAR_ROW, length(value), text, back, length(back))
        for i, (label, value, back, text) in enumerate(rows)
    ]
    return HBarChart(bars, HBAR_TOP * 2 + HBAR_ROW * max(1, len(bars)))
