"""Lending on the owner's terms: the weekly windows a home printer is lent to the fleet, in the owner's zone.

Pure (the standard library's :mod:`zoneinfo` only), so the node and the fleet share it: the node sends
the terms in its status (see :mod:`fleet.protocol`), the fleet stores them, and the scheduler asks
:func:`is_open` and :func:`next_opening` of them at ``now``.

A window is a set of weekdays and a start and end wall-clock time in the owner's zone. It opens on each
of its days at ``start``; an ``end`` not after ``start`` ends on the next day (``20:00-08:00`` is a
night), and ``00:00-24:00`` is the whole day. Times are wall-clock: on the nights the clocks change, a
window still opens and closes at the times on the owner's clock (zoneinfo does the arithmetic).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import Invalid

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEK_MINUTES = 7 * 24 * 60
#: More windows than this is a malformed message, not a week.
MAX_WINDOWS = 28
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


@dataclass(frozen=True)
class Window:
    """Lent from ``start`` on each of ``days`` (0 is Monday) to ``end``; minutes after local midnight."""

    days: frozenset[int]
    start: int
    end: int

    @property
    def length(self) -> int:
        """Minutes the window lasts: an end not after the start is on the next day."""
        return self.end - self.start if self.end > self.start else self.end + 24 * 60 - self.start

    def spans(self) -> list[tuple[int, int]]:
        """The minutes of the week it covers, as [from, to) spans, cut where the week wraps."""
        found = []
        for day in sorted(self.days):
            begin = day * 24 * 60 + self.start
            stop = begin + self.length
            if stop <= WEEK_MINUTES:
                found.append((begin, stop))
            else:
                found += [(begin, WEEK_MINUTES), (0, stop - WEEK_MINUTES)]
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "days": [DAYS[d] for d in sorted(self.days)],
            "start": _clock(self.start),
            "end": _clock(self.end),
        }

    def describe(self) -> str:
        """'weeknights 20:00-08:00', 'sat, sun 00:00-24:00'."""
        days = sorted(self.days)
        if days == [0, 1, 2, 3, 4]:
            which = "weeknights" if self.end <= self.start else "weekdays"
        elif days == [5, 6]:
            which = "weekends"
        elif days == list(range(7)):
            which = "every day"
        else:
            which = ", ".join(DAY_NAMES[d] for d in days)
        return f"{which} {_clock(self.start)}-{_clock(self.end)}"


@dataclass(frozen=True)
class Lending:
    """When a home printer is lent, in which time zone, and which materials it takes (None: any)."""

    time_zone: str
    windows: tuple[Window, ...]
    materials: Optional[frozenset[str]] = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"time_zone": self.time_zone, "windows": [w.to_json() for w in self.windows]}
        if self.materials is not None:
            data["materials"] = sorted(self.materials)
        return data

    def describe(self) -> str:
        """'weeknights 20:00-08:00 and weekends 00:00-24:00' (the owner's zone is said by the caller)."""
        return " and ".join(w.describe() for w in self.windows) or "never"

    def takes(self, material: Optional[str]) -> bool:
        """Does the owner accept this material (casefolded)? A job that names none is taken."""
        if self.materials is None or material is None:
            return True
        return material.casefold() in {m.casefold() for m in self.materials}


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(value: Any, field: str) -> int:
    if not isinstance(value, str) or not _TIME_RE.match(value):
        raise Invalid(
            f"{field} must be a time such as 20:00 (00:00 to 24:00)", field=field, key="lending_time"
        )
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def decode_lending(data: Any, field: str = "lending") -> Lending:
    """Lending terms from their JSON form; :class:`Invalid` names the field that is wrong."""
    if not isinstance(data, Mapping):
        raise Invalid(
            f"{field} must be an object with time_zone and windows", field=field, key="lending_shape"
        )
    unknown = sorted(set(data) - {"time_zone", "windows", "materials"})
    if unknown:
        raise Invalid(
            f"{field}.{unknown[0]} is not a lending term", field=f"{field}.{unknown[0]}", key="lending_shape"
        )
    zone = data.get("time_zone")
    if not isinstance(zone, str) or not zone or len(zone) > 64:
        raise Invalid(
            f"{field}.time_zone must be a time zone such as Europe/Paris",
            field=f"{field}.time_zone",
            key="lending_zone_missing",
        )
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"{field}.time_zone: unknown time zone {zone!r} (use a name such as Europe/Paris)",
            field=f"{field}.time_zone",
            key="lending_zone_unknown",
            params={"zone": zone},
        ) from None
    raw = data.get("windows")
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)) or len(raw) > MAX_WINDOWS:
        raise Invalid(
            f"{field}.windows must be a list of at most {MAX_WINDOWS} windows",
            field=f"{field}.windows",
            key="lending_too_many",
            params={"max": MAX_WINDOWS},
        )
    windows = tuple(_window(w, f"{field}.windows[{i}]") for i, w in enumerate(raw))
    _check_overlaps(windows, f"{field}.windows")
    materials = data.get("materials")
    if materials is not None:
        if (
            not isinstance(materials, Sequence)
            or isinstance(materials, (str, bytes))
            or len(materials) > 32
            or not all(isinstance(m, str) and 0 < len(m) <= 32 for m in materials)
        ):
            raise Invalid(
                f"{field}.materials must be a list of material names such as PLA",
                field=f"{field}.materials",
                key="lending_materials",
            )
        materials = frozenset(m.upper() for m in materials)
    return Lending(zone, windows, materials)


def _window(data: Any, field: str) -> Window:
    if not isinstance(data, Mapping) or set(data) != {"days", "start", "end"}:
        raise Invalid(f"{field} must be an object with days, start and end", field=field, key="lending_shape")
    days = data["days"]
    if not isinstance(days, Sequence) or isinstance(days, (str, bytes)) or not days:
        raise Invalid(
            f'{field}.days must be a list of days such as ["mon", "tue"]',
            field=f"{field}.days",
            key="lending_shape",
        )
    found = set()
    for day in days:
        if day not in DAYS:
            raise Invalid(
                f"{field}.days: {day!r} is not one of {', '.join(DAYS)}",
                field=f"{field}.days",
                key="lending_day",
                params={"day": str(day)},
            )
        found.add(DAYS.index(day))
    start = _minutes(data["start"], f"{field}.start")
    end = _minutes(data["end"], f"{field}.end")
    if start == 24 * 60:
        raise Invalid(f"{field}.start must be before 24:00", field=f"{field}.start", key="lending_time")
    if start == end:
        raise Invalid(
            f"{field} is empty: start and end are both {_clock(start)}",
            field=field,
            key="lending_empty",
            params={"time": _clock(start)},
        )
    return Window(frozenset(found), start, end)


def _check_overlaps(windows: Sequence[Window], field: str) -> None:
    """Two windows that cover the same minute are a mistake the owner should see, not a merge."""
    seen: list[tuple[int, int, int]] = []
    for index, window in enumerate(windows):
        for begin, stop in window.spans():
            for other, (b, s) in ((i, (b, s)) for i, b, s in seen):
                if begin < s and b < stop:
                    raise Invalid(
                        f"{field}: windows {other} ({windows[other].describe()}) and {index} "
                        f"({window.describe()}) overlap",
                        field=field,
                        key="lending_overlap",
                        params={"first": other + 1, "second": index + 1},
                    )
        seen += [(index, b, s) for b, s in window.spans()]


def _minute_of_week(local: datetime) -> int:
    return local.weekday() * 24 * 60 + local.hour * 60 + local.minute


def is_open(lending: Lending, now: float) -> bool:
    """Is the printer lent at ``now`` (epoch seconds), by the owner's wall clock?"""
    minute = _minute_of_week(datetime.fromtimestamp(now, ZoneInfo(lending.time_zone)))
    return any(b <= minute < s for w in lending.windows for b, s in w.spans())


def next_opening(lending: Lending, now: float) -> Optional[float]:
    """When the printer is next lent after ``now`` (epoch seconds); ``now`` if it is lent; None if never."""
    if is_open(lending, now):
        return now
    zone = ZoneInfo(lending.time_zone)
    local = datetime.fromtimestamp(now, zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    best: Optional[float] = None
    for offset in range(8):
        day = (midnight + timedelta(days=offset)).replace(tzinfo=zone)
        for window in lending.windows:
            if day.weekday() in window.days:
                start = day.replace(hour=window.start // 60, minute=window.start % 60)
                at = start.timestamp()
                # A start in the hour the clocks skip is read by zoneinfo as before the change; the
                # window then opens at the first minute that exists after it.
                if at > now and (best is None or at < best) and is_open(lending, at):
                    best = at
    return best


def closing_at(lending: Lending, now: float) -> Optional[float]:
    """When the lent stretch that holds ``now`` ends (epoch seconds): windows that meet run on as one
    (weeknights 20:00-08:00 then weekends from 08:00). None when it never ends (lent all week), and
    ``now`` itself when the printer is not lent at ``now``."""
    zone = ZoneInfo(lending.time_zone)
    local = datetime.fromtimestamp(now, zone)
    minute = _minute_of_week(local)
    spans = [span for w in lending.windows for span in w.spans()]
    reach = minute
    while True:
        # The span holding ``reach`` (taken modulo the week), followed to its end; spans that touch chain.
        at = reach % WEEK_MINUTES
        ends = [stop for begin, stop in spans if begin <= at < stop]
        if not ends:
            break
        reach += max(ends) - at
        if reach - minute >= WEEK_MINUTES:
            return None
    if reach == minute:
        return now
    # Wall-clock arithmetic in the owner's zone, as the windows are read (zoneinfo places the result).
    start = local.replace(second=0, microsecond=0)
    return (start + timedelta(minutes=reach - minute)).timestamp()


def clock_words(lending: Lending, at: float) -> str:
    """'08:00', in the owner's zone."""
    return f"{datetime.fromtimestamp(at, ZoneInfo(lending.time_zone)):%H:%M}"


def opening_words(lending: Lending, at: float) -> str:
    """'Monday 20:00', in the owner's zone."""
    local = datetime.fromtimestamp(at, ZoneInfo(lending.time_zone))
    return f"{DAY_NAMES[local.weekday()]} {local:%H:%M}"


def parse_windows(text: str, field: str = "lending.windows") -> list[dict[str, Any]]:
    """Windows as an owner types them: ``mon-fri 20:00-08:00; sat,sun 08:00-24:00`` → their JSON form.

    Windows are separated by ``;`` or new lines; days are names or ranges (``fri-mon`` wraps the week).
    """
    found: list[dict[str, Any]] = []
    for part in (piece.strip() for piece in re.split(r"[;\n]", text)):
        if not part:
            continue
        where = f"{field}[{len(found)}]"
        words = part.split()
        if len(words) != 2 or "-" not in words[1]:
            raise Invalid(
                f"{where}: {part!r} must read like 'mon-fri 20:00-08:00'", field=where, key="lending_shape"
            )
        days: list[str] = []
        for item in words[0].lower().split(","):
            first, _, last = item.partition("-")
            for day in (first, last or first):
                if day not in DAYS:
                    raise Invalid(
                        f"{where}.days: {day!r} is not one of {', '.join(DAYS)}",
                        field=f"{where}.days",
                        key="lending_day",
                        params={"day": day},
                    )
            a, b = DAYS.index(first), DAYS.index(last or first)
            days += [DAYS[(a + k) % 7] for k in range((b - a) % 7 + 1) if DAYS[(a + k) % 7] not in days]
        start, _, end = words[1].partition("-")
        found.append({"days": days, "start": start, "end": end})
    return found
