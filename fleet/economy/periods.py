"""A quota's period (day, week, month) in the lab's time zone: when it began and when it renews."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ..errors import Invalid


class Period(str, Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


PERIODS = ", ".join(p.value for p in Period)


def check_period(value: Any, field: str = "period") -> Period:
    """A period by name; anything else is refused with the names that exist."""
    try:
        return Period(value)
    except ValueError:
        shown = str(value)[:40]
        raise Invalid(f"there is no quota period {shown!r}: use one of {PERIODS}", field=field) from None


def check_time_zone(value: Any, field: str = "time_zone") -> str:
    """An IANA time zone name such as Europe/Paris (zoneinfo's database)."""
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise Invalid(f"{field} must be a time zone name such as Europe/Paris or UTC", field=field)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(  # noqa: B904 - zoneinfo's error says less than this
            f"{field}: there is no time zone {value!r}; use a name such as Europe/Paris", field=field
        )
    if value not in available_timezones() and value != "UTC":
        raise Invalid(
            f"{field}: there is no time zone {value!r}; use a name such as Europe/Paris", field=field
        )
    return value


def _midnight(day: date, zone: ZoneInfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def first_day(period: Period, day: date) -> date:
    """The first calendar day of the period holding ``day`` (weeks start on Monday)."""
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_first_day(period: Period, start: date) -> date:
    """The first day of the period after the one starting on ``start``."""
    if period is Period.DAY:
        return start + timedelta(days=1)
    if period is Period.WEEK:
        return start + timedelta(days=7)
    return date(start.year + 1, 1, 1) if start.month == 12 else date(start.year, start.month + 1, 1)


def bounds(period: Period, now: float, time_zone: str) -> tuple[float, float]:
    """The current period as epoch seconds ``[start, end)``: local midnights, so DST days are 23 or 25 h."""
    zone = ZoneInfo(time_zone)
    start = first_day(period, datetime.fromtimestamp(now, zone).date())
    return _midnight(start, zone), _midnight(next_first_day(period, start), zone)


def renewal_day(period: Period, now: float, time_zone: str) -> date:
    """The local date on which the current period's quota renews."""
    zone = ZoneInfo(time_zone)
    return next_first_day(period, first_day(period, datetime.fromtimestamp(now, zone).date()))


def month_bounds(year: int, month: int, time_zone: str) -> tuple[float, float]:
    """A calendar month in the lab's time zone, as epoch seconds ``[start, end)``."""
    if not 1 <= month <= 12 or not 1970 <= year <= 9998:
        raise Invalid(f"there is no month {year}-{month:02d}", field="month")
    zone = ZoneInfo(time_zone)
    start = date(year, month, 1)
    return _midnight(start, zone), _midnight(next_first_day(Period.MONTH, start), zone)


def check_month(value: Any, field: str = "month") -> tuple[int, int]:
    """'2026-11' as (2026, 11)."""
    if isinstance(value, str) and len(value) == 7 and value[4] == "-":
        year, month = value[:4], value[5:]
        if year.isdigit() and month.isdigit() and 1 <= int(month) <= 12 and int(year) >= 1970:
            return int(year), int(month)
    raise Invalid(f"{field} must be a month written YYYY-MM, such as 2026-11", field=field)
