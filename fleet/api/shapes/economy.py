"""The lab's economy: the price list, costs and the ledger, membership groups and quotas.

Money goes out as decimal text in the lab's currency (``"12.50"``) beside the exact count of its minor
unit (``1250``); prices come in as decimal text, never as JSON numbers (a float is not exact).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Optional

from pydantic import BeforeValidator, ConfigDict, Field

from ...app.quotas import check_group_name
from ...economy.ledger import LedgerEntry
from ...economy.money import major, plain
from ...economy.periods import check_month
from ...economy.pricing import Charge, ChargeLine, PriceList
from ...economy.quotas import MAX_PRIORITY, Cap, Measure, check_priority
from ...store.economy import Group as GroupRecord
from ...store.economy import HeldQuota
from .base import IdCursor, InputModel, Maybe, OutputModel, PageLimit, Timestamp

#: A price or limit as the API takes it: decimal text such as "0.03".
DecimalText = Annotated[str, Field(max_length=40, description='Decimal text such as "0.03"; not negative')]


class Line(OutputModel):
    """One line of a cost: material grams at a price per gram, printer-hours at a rate, a top-up."""

    kind: str = Field(description="material, machine, minimum or unfinished")
    description: str
    quantity: str = Field(description="Grams, printer-hours or a share, as decimal text")
    unit: str
    unit_price: str
    amount: str = Field(description="In the lab's currency, decimal text")
    amount_minor: int = Field(description="The same amount in the currency's minor unit (cents)")

    @classmethod
    def of(cls, line: ChargeLine, currency: str) -> Line:
        return cls(
            kind=line.kind.value,
            description=line.description,
            quantity=plain(line.quantity),
            unit=line.unit,
            unit_price=plain(line.unit_price),
            amount=str(major(line.amount_minor, currency)),
            amount_minor=line.amount_minor,
        )


class Cost(OutputModel):
    """A cost line by line; the total is the sum of the lines."""

    currency: str
    total: str = Field(description="Decimal text in the currency")
    total_minor: int
    lines: list[Line]

    @classmethod
    def of(cls, charge: Charge) -> Cost:
        currency = charge.currency
        return cls(
            currency=currency,
            total=str(major(charge.total_minor, currency)),
            total_minor=charge.total_minor,
            lines=[Line.of(line, currency) for line in charge.lines],
        )


class PriceClass(OutputModel):
    per_hour: str
    printers: list[str]


class Prices(OutputModel):
    """The lab's price list, public to every member."""

    id: Optional[int] = Field(description="This version of the list; null before a manager set one")
    currency: str
    per_gram: dict[str, str] = Field(description="Material -> price per gram")
    free_materials: list[str]
    printer_rates: dict[str, str] = Field(description="Printer id -> rate per printer-hour")
    classes: dict[str, PriceClass] = Field(description="Class name -> its rate and printers")
    default_per_hour: str
    minimum: str = Field(description="The least a finished print costs")
    unfinished: str = Field(description="What a failed or cancelled print costs: free, share or full")

    @classmethod
    def of(cls, prices: PriceList, list_id: Optional[int], currency: str) -> Prices:
        return cls.model_validate({**prices.to_dict(), "id": list_id, "currency": currency})


class PriceClassBody(InputModel):
    per_hour: DecimalText
    printers: list[Annotated[str, Field(max_length=64)]] = Field(max_length=500)


class PricesBody(InputModel):
    """``PUT /prices``: the whole new price list (what it leaves out is free or zero)."""

    noun: ClassVar[str] = "price list entry"

    per_gram: dict[Annotated[str, Field(max_length=32)], DecimalText] = Field(default={}, max_length=500)
    free_materials: list[Annotated[str, Field(max_length=32)]] = Field(default=[], max_length=500)
    printer_rates: dict[Annotated[str, Field(max_length=64)], DecimalText] = Field(default={}, max_length=500)
    classes: dict[Annotated[str, Field(max_length=32)], PriceClassBody] = Field(default={}, max_length=100)
    default_per_hour: DecimalText = "0"
    minimum: DecimalText = "0"
    unfinished: str = Field(default="share", pattern="^(free|share|full)$")

    def value(self) -> PriceList:
        return PriceList.from_dict(self.model_dump())


class LedgerLine(OutputModel):
    """A job's charge, fixed when it ended."""

    id: int
    job_id: int
    member_id: int
    at: Timestamp
    outcome: str
    price_list_id: Optional[int]
    cost: Cost

    @classmethod
    def of(cls, entry: LedgerEntry) -> LedgerLine:
        return cls(
            id=entry.id,
            job_id=entry.job_id,
            member_id=entry.member_id,
            at=entry.at,
            outcome=entry.outcome,
            price_list_id=entry.price_list_id,
            cost=Cost.of(entry.charge),
        )


class Ledger(OutputModel):
    """One page of charges, oldest first; ``next_cursor`` fetches the next (null on the last page)."""

    charges: list[LedgerLine]
    next_cursor: Optional[str] = Field(description="Send as ?cursor= for the next page; null: no more")


def _month(value: Any) -> Any:
    check_month(value)
    return value


Month = Annotated[str, BeforeValidator(_month), Field(description="YYYY-MM, in the lab's time zone")]


class LedgerQuery(PageLimit):
    """Whose charges (a manager may name anyone; left out: your own, or for a manager everyone's) and when."""

    model_config = ConfigDict(strict=False, extra="ignore", frozen=True)

    cursor: IdCursor = None
    member_id: Optional[int] = Field(default=None, ge=1, le=2**53)
    month: Optional[Month] = None


class MonthQuery(InputModel):
    model_config = ConfigDict(strict=False, extra="ignore", frozen=True)
    month: Month


class JobCost(OutputModel):
    """A job's estimated cost at today's prices and, once it ended, its charge."""

    job_id: int
    estimate: Cost
    charge: Optional[LedgerLine] = Field(description="Null until the job ends (or if it never printed)")


class Group(OutputModel):
    id: int
    name: str
    priority: int = Field(description="Added to the priority of every job of the group's members")
    created_at: Timestamp

    @classmethod
    def of(cls, group: GroupRecord) -> Group:
        return cls.copied(group)


class Groups(OutputModel):
    groups: list[Group]


GroupName = Annotated[str, BeforeValidator(check_group_name), Field(max_length=64)]
GroupPriority = Annotated[int, BeforeValidator(check_priority), Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)]


class NewGroup(InputModel):
    name: GroupName
    priority: GroupPriority = 0


class GroupChanges(InputModel):
    noun: ClassVar[str] = "group field"
    name: Maybe[GroupName] = None
    priority: Maybe[GroupPriority] = None


class MemberGroup(InputModel):
    """A member's group: its id, or null for none."""

    group_id: Optional[Annotated[int, Field(ge=1, le=2**53)]]


class MemberGroupAnswer(OutputModel):
    member_id: int
    group: Optional[Group]


class QuotaBody(InputModel):
    """One period's limits; a limit left out is none. Replaces what the holder had for that period."""

    noun: ClassVar[str] = "quota entry"

    period: str = Field(description="day, week or month")
    printer_hours: Maybe[DecimalText] = None
    grams: Maybe[DecimalText] = None
    cost: Maybe[DecimalText] = Field(default=None, description="In the lab's currency")
    jobs_at_once: Maybe[Annotated[int, Field(ge=0, le=1000)]] = None

    def data(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class Quota(OutputModel):
    group_id: Optional[int]
    member_id: Optional[int]
    period: str
    printer_hours: Optional[str]
    grams: Optional[str]
    cost: Optional[str] = Field(description="In the lab's currency")
    jobs_at_once: Optional[int]

    @classmethod
    def of(cls, held: HeldQuota, currency: str) -> Quota:
        limits = held.quota.limits
        return cls(
            group_id=held.group_id,
            member_id=held.member_id,
            period=held.quota.period.value,
            printer_hours=None if limits.printer_hours is None else plain(limits.printer_hours),
            grams=None if limits.grams is None else plain(limits.grams),
            cost=None if limits.cost_minor is None else str(major(limits.cost_minor, currency)),
            jobs_at_once=limits.jobs_at_once,
        )


class Quotas(OutputModel):
    quotas: list[Quota]


class Standing(OutputModel):
    """One limit of a member, with what they used of it."""

    measure: str = Field(description="printer_hours, grams, cost or jobs_at_once")
    period: Optional[str] = Field(description="day, week or month; null for jobs_at_once")
    limit: str
    used: str
    renews: Optional[date] = Field(description="The local date the period renews")

    @classmethod
    def of(cls, cap: Cap, currency: str) -> Standing:
        def shown(value: float) -> str:
            if cap.measure is Measure.PRINTER_HOURS:
                return f"{value / 3600:.2f}"
            if cap.measure is Measure.COST:
                return str(major(round(value), currency))
            if cap.measure is Measure.GRAMS:
                return f"{value:.2f}"
            return str(int(value))

        return cls(
            measure=cap.measure.value,
            period=None if cap.period is None else cap.period.value,
            limit=shown(cap.limit),
            used=shown(cap.used),
            renews=cap.renews,
        )


class MemberQuota(OutputModel):
    """A member's limits (their group's, or their own where set) and what they used this period."""

    member_id: int
    group: Optional[Group]
    caps: list[Standing]


class LiftAnswer(OutputModel):
    job_id: int
    state: str
    quota_lifted: bool
