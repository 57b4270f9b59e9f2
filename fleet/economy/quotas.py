"""Quotas: limits per member and per membership group, what a member used, and whether a job fits.

A group's limits apply to each of its members; a member's own limit for a period and a measure
replaces the group's for that period and measure. Limits per period (day, week, month, in the lab's
time zone) cover printer-hours, grams and cost; ``jobs_at_once`` counts the jobs a member has on
printers at the same time, whatever the period.

:class:`QuotaGate` is what the scheduler's pass asks, job by job in queue order: a job fits when
what its member used, plus what this pass already gave them, plus the job itself stays within every
limit; a job a manager lifted the limits for always fits (and still counts as used).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any, Optional

from ..errors import Invalid
from .money import check_price, to_minor
from .periods import Period, check_period

#: The largest limit a quota may set, per measure (sanity bounds).
MAX_HOURS = Decimal(100000)
MAX_GRAMS = Decimal(10_000_000)
MAX_JOBS_AT_ONCE = 1000
MAX_PRIORITY = 100


class Measure(str, Enum):
    PRINTER_HOURS = "printer_hours"
    GRAMS = "grams"
    COST = "cost"
    JOBS_AT_ONCE = "jobs_at_once"


@dataclass(frozen=True)
class Limits:
    """Limits of one period; None: no limit on that measure."""

    printer_hours: Optional[Decimal] = None
    grams: Optional[Decimal] = None
    #: In the lab's currency's minor units.
    cost_minor: Optional[int] = None
    jobs_at_once: Optional[int] = None

    def over(self, other: Limits) -> Limits:
        """These limits, with ``other``'s where these set none."""
        return Limits(
            printer_hours=other.printer_hours if self.printer_hours is None else self.printer_hours,
            grams=other.grams if self.grams is None else self.grams,
            cost_minor=other.cost_minor if self.cost_minor is None else self.cost_minor,
            jobs_at_once=other.jobs_at_once if self.jobs_at_once is None else self.jobs_at_once,
        )

    @property
    def empty(self) -> bool:
        return (
            self.printer_hours is None
            and self.grams is None
            and self.cost_minor is None
            and (self.jobs_at_once is None)
        )


@dataclass(frozen=True)
class Quota:
    """One period's limits, for a group or for one member."""

    period: Period
    limits: Limits


def check_limit(value: Any, measure: Measure, currency: str) -> Optional[Any]:
    """One limit as a quota stores it; None (no limit) stays None. Negative or absurd values are refused."""
    if value is None:
        return None
    where = measure.value
    if measure is Measure.JOBS_AT_ONCE:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_JOBS_AT_ONCE:
            raise Invalid(f"{where} must be a whole number from 0 to {MAX_JOBS_AT_ONCE}", field=where)
        return value
    amount = check_price(value, where)
    if measure is Measure.COST:
        return to_minor(amount, currency)
    ceiling = MAX_HOURS if measure is Measure.PRINTER_HOURS else MAX_GRAMS
    if amount > ceiling:
        raise Invalid(f"{where} must be at most {ceiling}", field=where)
    return amount


def make_quota(data: Any, currency: str) -> Quota:
    """A quota from its JSON form: ``{"period": "month", "printer_hours": "10", "cost": "20.00", ...}``."""
    if not isinstance(data, dict):
        raise Invalid("a quota must be a JSON object")
    allowed = {"period"} | {m.value for m in Measure}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise Invalid(f"unknown quota entry: {', '.join(unknown)}", field=unknown[0])
    period = check_period(data.get("period"))
    limits = Limits(
        printer_hours=check_limit(data.get("printer_hours"), Measure.PRINTER_HOURS, currency),
        grams=check_limit(data.get("grams"), Measure.GRAMS, currency),
        cost_minor=check_limit(data.get("cost"), Measure.COST, currency),
        jobs_at_once=check_limit(data.get("jobs_at_once"), Measure.JOBS_AT_ONCE, currency),
    )
    if limits.empty:
        raise Invalid(
            "a quota sets at least one limit: printer_hours, grams, cost or jobs_at_once", field="period"
        )
    return Quota(period, limits)


def check_priority(value: Any, field: str = "priority") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -MAX_PRIORITY <= value <= MAX_PRIORITY:
        raise Invalid(f"{field} must be a whole number from -{MAX_PRIORITY} to {MAX_PRIORITY}", field=field)
    return value


def effective(group: Sequence[Quota], own: Sequence[Quota]) -> dict[Period, Limits]:
    """A member's limits per period: their own, measure by measure, over their group's."""
    result: dict[Period, Limits] = {}
    for quota in group:
        result[quota.period] = quota.limits
    for quota in own:
        result[quota.period] = quota.limits.over(result.get(quota.period, Limits()))
    return {period: limits for period, limits in result.items() if not limits.empty}


@dataclass(frozen=True)
class Used:
    """What a member used in one period (jobs still printing count by their estimate)."""

    seconds: float = 0.0
    grams: float = 0.0
    cost_minor: int = 0


@dataclass(frozen=True)
class Cap:
    """One limit of one member, with what was used against it before this pass."""

    measure: Measure
    #: None for jobs at once, which has no period.
    period: Optional[Period]
    #: In seconds for printer-hours, grams, minor units, or jobs.
    limit: float
    used: float
    #: The local date the period renews (None for jobs at once).
    renews: Optional[date] = None


@dataclass(frozen=True)
class Allowance:
    """Every limit of one member; group and priority are for the explanations."""

    caps: tuple[Cap, ...] = ()
    group: Optional[str] = None


def allowance(
    limits: Mapping[Period, Limits],
    used: Mapping[Period, Used],
    active_jobs: int,
    renews: Mapping[Period, date],
    group: Optional[str] = None,
) -> Allowance:
    """A member's caps from their limits and what they used in each period."""
    caps: list[Cap] = []
    at_once: Optional[int] = None
    for period in sorted(limits, key=list(Period).index):
        lim = limits[period]
        spent = used.get(period, Used())
        when = renews.get(period)
        if lim.printer_hours is not None:
            caps.append(
                Cap(Measure.PRINTER_HOURS, period, float(lim.printer_hours) * 3600, spent.seconds, when)
            )
        if lim.grams is not None:
            caps.append(Cap(Measure.GRAMS, period, float(lim.grams), spent.grams, when))
        if lim.cost_minor is not None:
            caps.append(Cap(Measure.COST, period, float(lim.cost_minor), float(spent.cost_minor), when))
        if lim.jobs_at_once is not None:
            at_once = lim.jobs_at_once if at_once is None else min(at_once, lim.jobs_at_once)
    if at_once is not None:
        caps.append(Cap(Measure.JOBS_AT_ONCE, None, float(at_once), float(active_jobs)))
    return Allowance(tuple(caps), group)


@dataclass(frozen=True)
class Need:
    """What one job would take: printer-seconds, grams, cost in minor units (and one job at once)."""

    seconds: float = 0.0
    grams: float = 0.0
    cost_minor: int = 0

    def of(self, measure: Measure) -> float:
        if measure is Measure.PRINTER_HOURS:
            return self.seconds
        if measure is Measure.GRAMS:
            return self.grams
        if measure is Measure.COST:
            return float(self.cost_minor)
        return 1.0


@dataclass(frozen=True)
class Hold:
    """Why a job waits on a quota: the cap it would break, and how much of it jobs ahead took."""

    cap: Cap
    need: float
    #: What this pass already gave the member's jobs ahead in line.
    ahead: float


#: Where each measure's amount sits in the tuple :meth:`QuotaGate.admit_amounts` takes.
SLOT = {Measure.PRINTER_HOURS: 0, Measure.GRAMS: 1, Measure.COST: 2, Measure.JOBS_AT_ONCE: 3}


@dataclass
class QuotaGate:
    """A pass's running account of every member's caps: asked once per job, in queue order."""

    allowances: Mapping[int, Allowance]
    _left: dict[int, list[float]] = field(default_factory=dict)
    _slots: dict[int, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        limited = {member: a.caps for member, a in self.allowances.items() if a.caps}
        self._left = {member: [cap.limit - cap.used for cap in caps] for member, caps in limited.items()}
        self._slots = {member: [SLOT[cap.measure] for cap in caps] for member, caps in limited.items()}

    def limited(self) -> frozenset[int]:
        """Members with at least one cap (the others always fit)."""
        return frozenset(self._left)

    def admit(self, member: int, need: Need, lifted: bool = False) -> Optional[Hold]:
        """None when the job fits (its need is then counted), else the :class:`Hold` that stops it."""
        return self.admit_amounts(member, (need.seconds, need.grams, float(need.cost_minor), 1.0), lifted)

    def admit_amounts(
        self, member: int, amounts: tuple[float, float, float, float], lifted: bool = False
    ) -> Optional[Hold]:
        """:meth:`admit` with the need as (seconds, grams, cost in minor units, 1): the pass's hot path."""
        left = self._left.get(member)
        if left is None:
            return None
        slots = self._slots[member]
        if not lifted:
            for k, slot in enumerate(slots):
                if amounts[slot] > left[k] + 1e-9:
                    cap = self.allowances[member].caps[k]
                    return Hold(cap, amounts[slot], cap.limit - cap.used - left[k])
        for k, slot in enumerate(slots):
            left[k] -= amounts[slot]
        return None
