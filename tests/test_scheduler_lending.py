"""Lent home printers in the scheduler: work only inside the owner's windows, only the owner's materials."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.geometry import Box
from fleet.lending import closing_at, decode_lending, is_open
from fleet.scheduler import JobInfo, PrinterInfo, WaitReason, fits, plan
from fleet.states import JobState, PrinterState

PARIS = ZoneInfo("Europe/Paris")
WEEKNIGHTS = decode_lending(
    {
        "time_zone": "Europe/Paris",
        "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "20:00", "end": "08:00"}],
        "materials": ["PLA", "PETG"],
    }
)


def at(*args: int) -> float:
    return datetime(*args, tzinfo=PARIS).timestamp()


def home(
    lending=WEEKNIGHTS, pid: str = "garage", state: PrinterState = PrinterState.IDLE, loaded: str = "PLA"
) -> PrinterInfo:
    return PrinterInfo(pid, state, Box.of_size(200, 200, 200), 0.4, loaded, lending=lending)


def job(jid: int = 1, material: str | None = None, now: float = 0.0, seconds: float = 3600.0) -> JobInfo:
    return JobInfo(jid, 1, JobState.QUEUED, now - 60, seconds, None, None, material)


def test_a_lent_printer_takes_work_inside_its_window_only() -> None:
    sunday_noon = at(2026, 12, 6, 12, 0)
    monday_night = at(2026, 12, 7, 21, 0)
    assert plan([home()], [job(now=sunday_noon)], usage={}, grants={}, now=sunday_noon).assignments == ()
    assert plan([home()], [job(now=monday_night)], usage={}, grants={}, now=monday_night).assignments == (
        (1, "garage"),
    )


def test_the_queue_says_when_the_lent_printer_opens() -> None:
    sunday_noon = at(2026, 12, 6, 12, 0)
    result = plan([home()], [job(now=sunday_noon)], usage={}, grants={}, now=sunday_noon)
    explanation = result.explanations[1]
    assert explanation.reason is WaitReason.NO_PRINTER_FREE
    assert explanation.estimated_start == at(2026, 12, 7, 20, 0)
    assert explanation.message == (
        "1st in line; waiting for a free printer that can print it: 1 compatible printer: 1 outside its "
        "owner's lending hours; expected to start in about 1 d 8 h; home printer garage is lent weeknights "
        "20:00-08:00 (Europe/Paris); next window opens Monday 20:00."
    )


def test_the_owner_names_the_materials_it_takes() -> None:
    assert fits(job(material="pla"), home(), {})
    # ABS is loaded (the owner's own print), but the owner lends it for PLA and PETG only.
    assert not fits(job(material="ABS"), home(loaded="ABS"), {})
    monday_night = at(2026, 12, 7, 21, 0)
    result = plan(
        [home(loaded="ABS")], [job(material="ABS", now=monday_night)], usage={}, grants={}, now=monday_night
    )
    assert result.assignments == ()
    assert result.explanations[1].reason is WaitReason.NO_COMPATIBLE_PRINTER
    assert result.explanations[1].message == (
        "1st in line; the printers that could print it are home printers whose owners do not lend them "
        "for ABS (garage takes PETG, PLA)."
    )


def test_a_local_print_keeps_the_printer_busy_even_in_its_window() -> None:
    """The node reports printing when the owner starts a print: the fleet sends nothing then."""
    monday_night = at(2026, 12, 7, 21, 0)
    busy = home(state=PrinterState.PRINTING)
    assert plan([busy], [job(now=monday_night)], usage={}, grants={}, now=monday_night).assignments == ()


def test_a_job_that_would_run_past_the_end_of_the_window_is_not_sent_and_the_queue_says_why() -> None:
    """Tuesday 07:30, half an hour before the weeknight window ends: a two-hour print waits, a
    twenty-minute one goes."""
    tuesday_morning = at(2026, 12, 8, 7, 30)
    long_one = job(1, now=tuesday_morning, seconds=2 * 3600.0)
    result = plan([home()], [long_one], usage={}, grants={}, now=tuesday_morning)
    assert result.assignments == ()
    explanation = result.explanations[1]
    assert explanation.reason is WaitReason.NO_PRINTER_FREE and explanation.estimated_start is None
    assert explanation.message == (
        "1st in line; home printer garage is free, but this print (about 2 h) would run past the end of the "
        "lending window at 08:00 (Europe/Paris); it waits for a printer free for that long, or for a longer "
        "window."
    )
    assert list(result.explanations.values()) == [explanation], "read one by one or all at once: the same"
    short_one = job(2, now=tuesday_morning, seconds=20 * 60.0)
    both = plan([home()], [long_one, short_one], usage={}, grants={}, now=tuesday_morning)
    assert both.assignments == ((2, "garage"),), "the short job behind it takes the printer"
    # A printer that is not lent takes the long job at once.
    plain = PrinterInfo("club", PrinterState.IDLE, Box.of_size(200, 200, 200), 0.4, "PLA")
    assert plan([home(), plain], [long_one], usage={}, grants={}, now=tuesday_morning).assignments == (
        (1, "club"),
    )


@settings(deadline=None, max_examples=200)
@given(
    st.integers(1_780_000_000, 1_850_000_000),
    st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Lord_Howe"]),
    st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), unique=True, max_size=3),
    st.sampled_from(["00:00", "02:30", "08:00", "20:00", "23:30"]),
    st.sampled_from(["01:00", "02:30", "08:00", "24:00"]),
)
def test_never_dispatches_outside_a_window(
    now: int, zone: str, days: list[str], start: str, end: str
) -> None:
    windows = [{"days": [day], "start": start, "end": end} for day in days] if start != end else []
    try:
        lending = decode_lending({"time_zone": zone, "windows": windows})
    except Exception:
        lending = decode_lending({"time_zone": zone, "windows": windows[:1]})
    printers = [
        home(lending, "lent"),
        PrinterInfo("plain", PrinterState.IDLE, Box.of_size(9, 9, 9), 0.4, "PLA"),
    ]
    jobs = [job(1, now=float(now)), job(2, now=float(now))]
    result = plan(printers, jobs, usage={}, grants={}, now=float(now))
    lent_taken = any(printer_id == "lent" for _, printer_id in result.assignments)
    ends = closing_at(lending, float(now))
    done_in_time = ends is None or float(now) + 3600.0 <= ends
    assert lent_taken == (is_open(lending, float(now)) and done_in_time)
    assert ("plain" in dict(map(reversed, result.assignments))) is True
