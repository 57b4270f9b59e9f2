"""The lab's statistics: prints, hours, grams, failures and waits per member, group, printer or material.

Pure: plain rows in (one :class:`PrintRow` per job that reached a printer), figures out. A job belongs
to the period in which it started, with all its figures (its hours too, even past the period's end),
so the figures of adjacent periods add up to those of both together, and the rows of any breakdown
add up to the lab's totals. Periods are whole days on the lab's clock (:class:`Period`).

``group`` and ``cost`` are optional columns: rows without them still add up, a breakdown by group
puts them under "no group", and a figure's cost is None when none of its rows has one. Money is a
:class:`~decimal.Decimal`, never a float.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import Invalid
from .states import JobState

#: The longest period one report covers: ten years of days.
MAX_DAYS = 3660
#: The period a report covers when none is asked for: the last 30 days, today included.
DEFAULT_DAYS = 30


class Dimension(str, Enum):
    """What a breakdown groups the prints by."""

    MEMBER = "member"
    GROUP = "group"
    PRINTER = "printer"
    MATERIAL = "material"


@dataclass(frozen=True)
class PrintRow:
    """One job that reached a printer, as the statistics see it."""

    job_id: int
    member_id: int
    member: str
    #: Where the job is now: printing (or paused), done, failed or cancelled.
    state: JobState
    submitted_at: float
    started_at: float
    #: None while it still prints.
    finished_at: Optional[float]
    grams: float
    printer_id: Optional[str] = None
    printer: Optional[str] = None
    material: Optional[str] = None
    #: The member's membership group, where the lab has groups.
    group: Optional[str] = None
    #: What the print was charged, in the lab's currency, where the lab charges.
    cost: Optional[Decimal] = None

    def seconds(self, now: float) -> float:
        """How long it printed: start to end (to ``now`` while it prints); never negative."""
        end = self.finished_at if self.finished_at is not None else now
        return max(0.0, end - self.started_at)

    @property
    def waited(self) -> float:
        """Seconds from submission to start (approval included); never negative."""
        return max(0.0, self.started_at - self.submitted_at)


@dataclass(frozen=True)
class Period:
    """Whole days on the lab's clock, ``first`` to ``last`` included, as epoch seconds [start, end)."""

    first: date
    last: date
    time_zone: str
    start: float
    end: float

    @classmethod
    def of_days(cls, first: date, last: date, time_zone: str) -> Period:
        if last < first:
            raise Invalid(f"the period ends ({last}) before it starts ({first})", field="to")
        if (last - first).days + 1 > MAX_DAYS:
            raise Invalid(f"a period covers at most {MAX_DAYS} days", field="from")
        zone = zone_of(time_zone)
        start = datetime.combine(first, time(), zone).timestamp()
        end = datetime.combine(last + timedelta(days=1), time(), zone).timestamp()
        return cls(first, last, time_zone, start, end)

    def __contains__(self, at: float) -> bool:
        return self.start <= at < self.end

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise Invalid(
            f"unknown time zone {name!r} (use a name such as Europe/Paris)", field="time_zone"
        ) from error


def parse_period(first: Optional[str], last: Optional[str], time_zone: str, now: float) -> Period:
    """The period asked for as ISO dates (``YYYY-MM-DD``, either may be missing), on the lab's clock.

    Without ``to`` it ends today; without ``from`` it starts :data:`DEFAULT_DAYS` days before its end.
    """
    today = datetime.fromtimestamp(now, zone_of(time_zone)).date()
    end = _date(last, "to") if last else today
    start = _date(first, "from") if first else end - timedelta(days=DEFAULT_DAYS - 1)
    return Period.of_days(start, end, time_zone)


def _date(text: str, field: str) -> date:
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{field} must be a date as YYYY-MM-DD", field=field) from None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of ``values``, interpolated between the two nearest ranks.

    The median is ``q = 0.5``; equal to ``statistics.quantiles(method="inclusive")`` at its cut points.
    """
    if not values:
        raise ValueError("no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be from 0 to 1")
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


@dataclass(frozen=True)
class Figures:
    """What one member, group, printer or material (or the whole lab) printed in a period."""

    key: str
    label: str
    #: Jobs that started in the period, whatever came of them.
    prints: int
    done: int
    failed: int
    cancelled: int
    seconds: float
    grams: float
    wait_median_s: Optional[float]
    wait_p90_s: Optional[float]
    #: None when no row has a cost (the lab does not charge).
    cost: Optional[Decimal] = None

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0

    @property
    def failure_rate(self) -> Optional[float]:
        """Failed among the prints that ended done or failed (a cancel is nobody's failure); None if none."""
        ended = self.done + self.failed
        return self.failed / ended if ended else None


def summarise(rows: Sequence[PrintRow], key: str, label: str, now: float) -> Figures:
    """The figures of ``rows`` (already chosen: one member's, one printer's...)."""
    waits = [r.waited for r in rows]
    costs = [r.cost for r in rows if r.cost is not None]
    return Figures(
        key=key,
        label=label,
        prints=len(rows),
        done=sum(1 for r in rows if r.state is JobState.DONE),
        failed=sum(1 for r in rows if r.state is JobState.FAILED),
        cancelled=sum(1 for r in rows if r.state is JobState.CANCELLED),
        seconds=math.fsum(r.seconds(now) for r in rows),
        grams=math.fsum(r.grams for r in rows),
        wait_median_s=percentile(waits, 0.5) if waits else None,
        wait_p90_s=percentile(waits, 0.9) if waits else None,
        cost=sum(costs, Decimal(0)) if costs else None,
    )


def in_period(rows: Iterable[PrintRow], period: Period) -> list[PrintRow]:
    """The rows of jobs that started in ``period``."""
    return [r for r in rows if r.started_at in period]


#: Each dimension's (key, label) of a row; rows with no printer, material or group share one key "".
KEYS: dict[Dimension, Callable[[PrintRow], tuple[str, str]]] = {
    Dimension.MEMBER: lambda r: (str(r.member_id), r.member),
    Dimension.GROUP: lambda r: (r.group or "", r.group or ""),
    Dimension.PRINTER: lambda r: (r.printer_id or "", r.printer or r.printer_id or ""),
    Dimension.MATERIAL: lambda r: ((r.material or "").upper(), (r.material or "").upper()),
}


def breakdown(rows: Iterable[PrintRow], by: Dimension, now: float) -> list[Figures]:
    """One :class:`Figures` per member, group, printer or material of ``rows``, by label."""
    groups: dict[str, list[PrintRow]] = {}
    labels: dict[str, str] = {}
    key_of = KEYS[by]
    for row in rows:
        key, label = key_of(row)
        groups.setdefault(key, []).append(row)
        labels.setdefault(key, label)
    figures = [summarise(found, key, labels[key], now) for key, found in groups.items()]
    return sorted(figures, key=lambda f: (f.label == "", f.label.casefold(), f.key))


def totals(rows: Sequence[PrintRow], now: float) -> Figures:
    return summarise(rows, "", "", now)


@dataclass(frozen=True)
class Report:
    """A period's breakdown by one dimension and the lab's totals, as one person may see them."""

    period: Period
    by: Dimension
    rows: list[Figures]
    totals: Figures

    @property
    def charges(self) -> bool:
        """Whether any print in the period has a cost (the CSV then has a cost column)."""
        return self.totals.cost is not None


CSV_COLUMNS = (
    "key",
    "label",
    "prints",
    "done",
    "failed",
    "cancelled",
    "failure_rate",
    "hours",
    "grams",
    "wait_median_h",
    "wait_p90_h",
)


def to_csv(report: Report) -> str:
    """The report as CSV: a header, one line per row, then the lab's total (key and label ``total``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = [report.by.value if c == "key" else c for c in CSV_COLUMNS]
    writer.writerow([*columns, *(["cost"] if report.charges else [])])
    for figures in [*report.rows, report.totals]:
        is_total = figures is report.totals
        writer.writerow(_csv_line(figures, is_total, report.charges))
    return out.getvalue()


def _csv_line(f: Figures, is_total: bool, charges: bool) -> list[str]:
    def hours(seconds: Optional[float]) -> str:
        return "" if seconds is None else f"{seconds / 3600:.3f}"

    line = [
        "total" if is_total else f.key,
        "total" if is_total else _safe_cell(f.label),
        str(f.prints),
        str(f.done),
        str(f.failed),
        str(f.cancelled),
        "" if f.failure_rate is None else f"{f.failure_rate:.4f}",
        f"{f.hours:.3f}",
        f"{f.grams:.1f}",
        hours(f.wait_median_s),
        hours(f.wait_p90_s),
    ]
    if charges:
        line.append("" if f.cost is None else str(f.cost))
    return line


def _safe_cell(text: str) -> str:
    """A name a spreadsheet would run as a formula (=, +, -, @) is kept as text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
