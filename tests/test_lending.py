"""Lending windows: parsing with clear errors, and when a printer is lent, across midnight and DST."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.errors import Invalid
from fleet.lending import clock_words, closing_at, decode_lending, is_open, next_opening, opening_words

PARIS = ZoneInfo("Europe/Paris")
WEEKNIGHTS = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "20:00", "end": "08:00"}
#: From Saturday morning, when Friday night's window ends (windows may not overlap).
WEEKENDS = {"days": ["sat", "sun"], "start": "08:00", "end": "24:00"}


def at(*args: int, zone: ZoneInfo = PARIS) -> float:
    return datetime(*args, tzinfo=zone).timestamp()


def terms(*windows: dict, zone: str = "Europe/Paris", **more: object):
    return decode_lending({"time_zone": zone, "windows": list(windows), **more})


def test_weeknights_and_weekends_read_as_the_owner_says_them() -> None:
    lending = terms(WEEKNIGHTS, WEEKENDS)
    assert lending.describe() == "weeknights 20:00-08:00 and weekends 08:00-24:00"
    assert decode_lending(lending.to_json()) == lending


@pytest.mark.parametrize(
    ("when", "lent"),
    [
        ((2026, 12, 7, 19, 59), False),  # Monday evening, before the window
        ((2026, 12, 7, 20, 0), True),
        ((2026, 12, 8, 7, 59), True),  # Tuesday morning: Monday night's window
        ((2026, 12, 8, 8, 0), False),
        ((2026, 12, 7, 3, 0), False),  # Monday 03:00: Sunday's window is not a weeknight
        ((2026, 12, 12, 3, 0), True),  # Saturday 03:00: Friday night's, then the weekend's
        ((2026, 12, 13, 3, 0), False),  # Sunday 03:00: Saturday's ended at midnight
        ((2026, 12, 13, 23, 59), True),  # Sunday night
    ],
)
def test_a_window_that_crosses_midnight_ends_the_next_morning(when: tuple[int, ...], lent: bool) -> None:
    assert is_open(terms(WEEKNIGHTS, WEEKENDS), at(*when)) is lent


def test_the_next_window_is_named_in_the_owners_words() -> None:
    lending = terms(WEEKNIGHTS)
    sunday_noon = at(2026, 12, 6, 12, 0)
    opens = next_opening(lending, sunday_noon)
    assert opens == at(2026, 12, 7, 20, 0)
    assert opening_words(lending, opens) == "Monday 20:00"
    assert next_opening(lending, at(2026, 12, 7, 21, 0)) == at(2026, 12, 7, 21, 0)  # lent now


def test_windows_keep_the_owners_wall_clock_across_daylight_saving() -> None:
    lending = terms({"days": ["sat"], "start": "20:00", "end": "08:00"})
    # Europe/Paris moves to summer time on 2027-03-28 at 02:00: the night is an hour shorter.
    assert is_open(lending, at(2027, 3, 28, 7, 59))
    assert not is_open(lending, at(2027, 3, 28, 8, 0))
    assert next_opening(lending, at(2027, 3, 22, 12, 0)) == at(2027, 3, 27, 20, 0)
    # And back on 2027-10-31: the night is an hour longer, still 20:00 to 08:00 on the wall.
    assert is_open(lending, at(2027, 10, 31, 7, 59))
    assert not is_open(lending, at(2027, 10, 31, 8, 0))


def test_weeknights_and_whole_weekends_overlap_on_saturday_morning_and_say_so() -> None:
    whole = {"days": ["sat", "sun"], "start": "00:00", "end": "24:00"}
    with pytest.raises(
        Invalid, match=r"windows 0 \(weeknights 20:00-08:00\) and 1 \(weekends 00:00-24:00\) overlap"
    ):
        terms(WEEKNIGHTS, whole)


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (
            {"time_zone": "Mars/Olympus", "windows": []},
            "lending.time_zone",
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            {"time_zone": "UTC", "windows": [{**WEEKNIGHTS, "start": "25:00"}]},
            "lending.windows[0].start",
            "20:00",
        ),
        (
            {"time_zone": "UTC", "windows": [{**WEEKNIGHTS, "days": ["monday"]}]},
            "lending.windows[0].days",
            "'monday'",
        ),
        ({"time_zone": "UTC", "windows": [{**WEEKNIGHTS, "end": "20:00"}]}, "lending.windows[0]", "empty"),
        ({"time_zone": "UTC", "windows": [{"days": ["mon"]}]}, "lending.windows[0]", "days, start and end"),
        ({"time_zone": "UTC", "windows": "mon 20-08"}, "lending.windows", "a list"),
        ({"time_zone": "UTC", "windows": [], "material": ["PLA"]}, "lending.material", "not a lending term"),
        ({"time_zone": "UTC", "windows": [], "materials": "PLA"}, "lending.materials", "a list"),
        (
            {
                "time_zone": "UTC",
                "windows": [WEEKNIGHTS, {"days": ["tue"], "start": "07:00", "end": "09:00"}],
            },
            "lending.windows",
            "windows 0 (weeknights 20:00-08:00) and 1 (Tuesday 07:00-09:00) overlap",
        ),
        (
            {
                "time_zone": "UTC",
                "windows": [
                    {"days": ["sun"], "start": "22:00", "end": "02:00"},
                    {"days": ["mon"], "start": "01:00", "end": "03:00"},
                ],
            },
            "lending.windows",
            "overlap",  # Sunday night runs into Monday, across the week's end
        ),
    ],
)
def test_bad_terms_name_what_is_wrong(data: dict, field: str, words: str) -> None:
    with pytest.raises(Invalid) as raised:
        decode_lending(data)
    assert raised.value.field == field and words in raised.value.message


def test_materials_the_owner_takes() -> None:
    lending = terms(WEEKENDS, materials=["pla", "PETG"])
    assert lending.takes("PLA") and lending.takes("petg") and lending.takes(None)
    assert not lending.takes("ABS")
    assert terms(WEEKENDS).takes("ABS")


ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "UTC", "Asia/Kolkata"]
TIMES = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]


@st.composite
def lendings(draw: st.DrawFn):
    windows = []
    for day in draw(
        st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), unique=True, max_size=3)
    ):
        start, end = draw(st.sampled_from(TIMES)), draw(st.sampled_from([*TIMES, "24:00"]))
        if start != end:
            windows.append({"days": [day], "start": start, "end": end})
    try:
        return decode_lending({"time_zone": draw(st.sampled_from(ZONES)), "windows": windows})
    except Invalid:
        return decode_lending({"time_zone": "UTC", "windows": windows[:1]})


@settings(deadline=None, max_examples=200)
@given(lendings(), st.integers(1_780_000_000, 1_850_000_000))
def test_the_next_opening_is_lent_and_nothing_between_is(lending, now: int) -> None:
    opens = next_opening(lending, float(now))
    if not lending.windows:
        assert opens is None and not is_open(lending, float(now))
        return
    assert opens is not None and opens >= now and is_open(lending, opens)
    # Every minute from now to the opening is outside every window (checked at minute steps).
    step = 60.0
    t = float(now)
    while t + step < opens:
        t += step
        assert not is_open(lending, t), "lent before the opening said it would be"


@pytest.mark.parametrize(
    ("when", "ends"),
    [
        ((2026, 12, 7, 21, 30), (2026, 12, 8, 8, 0)),  # Monday night: Tuesday 08:00
        ((2026, 12, 12, 3, 0), (2026, 12, 13, 0, 0)),  # Friday night runs on into the weekend's window
        ((2026, 12, 13, 23, 59), (2026, 12, 14, 0, 0)),  # Sunday's ends at midnight
        ((2026, 12, 7, 12, 0), (2026, 12, 7, 12, 0)),  # not lent now: ends now
    ],
)
def test_a_lent_stretch_ends_where_its_windows_stop_meeting(
    when: tuple[int, ...], ends: tuple[int, ...]
) -> None:
    assert closing_at(terms(WEEKNIGHTS, WEEKENDS), at(*when)) == at(*ends)


def test_a_printer_lent_all_week_never_closes_and_the_end_is_said_in_the_owners_clock() -> None:
    always = terms(
        {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "24:00"}
    )
    assert closing_at(always, at(2026, 12, 9, 10, 0)) is None
    nights = terms(WEEKNIGHTS)
    assert clock_words(nights, closing_at(nights, at(2026, 12, 7, 21, 30))) == "08:00"
    # The night the clocks go back (Paris, 25 October 2026): the window still ends at 08:00 on the wall.
    sunday_night = terms({"days": ["sat"], "start": "20:00", "end": "08:00"})
    assert closing_at(sunday_night, at(2026, 10, 24, 22, 0)) == at(2026, 10, 25, 8, 0)
