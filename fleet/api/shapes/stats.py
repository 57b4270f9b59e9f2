"""The lab's statistics: a period's breakdown by member, group, printer or material, and its totals."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import ClassVar, Optional

from pydantic import ConfigDict, Field

from ... import statistics
from .base import InputModel, OutputModel


class StatsQuery(InputModel):
    """Which breakdown over which days (the lab's clock); unknown query parameters are ignored."""

    model_config = ConfigDict(strict=False, extra="ignore", frozen=True, populate_by_name=True)
    messages: ClassVar[dict[str, str]] = {
        "by": "by must be one of: " + ", ".join(d.value for d in statistics.Dimension),
        "from": "from must be a date as YYYY-MM-DD",
        "to": "to must be a date as YYYY-MM-DD",
    }

    by: statistics.Dimension = Field(default=statistics.Dimension.MEMBER, description="What to group by")
    first: Optional[str] = Field(
        default=None,
        alias="from",
        max_length=10,
        description="First day, YYYY-MM-DD (default: 30 days before the last)",
    )
    last: Optional[str] = Field(
        default=None, alias="to", max_length=10, description="Last day, included, YYYY-MM-DD (default: today)"
    )


class Figures(OutputModel):
    """What one member, group, printer or material (or the whole lab) printed in the period."""

    key: str = Field(description="The member's id, the printer's id, the material or the group; '' for none")
    label: str
    prints: int = Field(description="Jobs that started in the period, whatever came of them")
    done: int
    failed: int
    cancelled: int
    failure_rate: Optional[float] = Field(description="failed / (done + failed); null when neither")
    hours: float
    grams: float
    wait_median_s: Optional[float] = Field(description="Median wait from submission to start")
    wait_p90_s: Optional[float] = Field(description="90th percentile of the wait from submission to start")
    cost: Optional[Decimal] = Field(
        description="Charged, in the lab's currency; null where nothing is charged"
    )

    @classmethod
    def of(cls, f: statistics.Figures) -> Figures:
        return cls.copied(f, failure_rate=f.failure_rate, hours=f.hours)


class Period(OutputModel):
    first: datetime.date = Field(serialization_alias="from")
    last: datetime.date = Field(serialization_alias="to")
    time_zone: str


class StatsReport(OutputModel):
    """A period's breakdown as the caller may see it (a member: only their own row by member)."""

    period: Period
    by: statistics.Dimension
    rows: list[Figures]
    totals: Figures = Field(description="The whole lab")

    @classmethod
    def of(cls, report: statistics.Report) -> StatsReport:
        p = report.period
        return cls(
            period=Period(first=p.first, last=p.last, time_zone=p.time_zone),
            by=report.by,
            rows=[Figures.of(f) for f in report.rows],
            totals=Figures.of(report.totals),
        )
