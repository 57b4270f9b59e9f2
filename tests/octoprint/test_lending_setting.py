"""The owner's lending terms in the plugin's settings, and in the status the node sends."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fleet import protocol as p
from fleet.lending import decode_lending, is_open
from fleet.node.printer import PrinterSnapshot
from fleet.node.rules import build_status
from octoprint_crowdfab.runtime import NOT_LENT, PluginConfig, Runtime

TERMS = {
    "time_zone": "Europe/Paris",
    "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "20:00", "end": "08:00"}],
    "materials": ["PLA"],
}


def config(windows: str, zone: str = "Europe/Paris", materials: str = "PLA") -> PluginConfig:
    settings = {"lending_windows": windows, "lending_time_zone": zone, "lending_materials": materials}
    return PluginConfig.from_settings(lambda keys: settings.get(keys[0]), None)


def test_no_windows_lend_it_whenever_idle_and_terms_are_read_as_the_owner_types_them() -> None:
    assert config("").lending is None
    assert config("mon-fri 20:00-08:00").lending == decode_lending(TERMS)
    both = config("mon-fri 20:00-08:00; sat,sun 08:00-24:00", materials="").lending
    assert both is not None and both.materials is None
    assert both.describe() == "weeknights 20:00-08:00 and weekends 08:00-24:00"


@pytest.mark.parametrize(
    ("windows", "zone", "words"),
    [
        ("mon-fri 20:00-08:00", "Paris/Montmartre", "unknown time zone 'Paris/Montmartre'"),
        ("mon-fri 20:00-08:00", "", "lending.time_zone must be a time zone such as Europe/Paris"),
        ("weeknights", "UTC", "must read like 'mon-fri 20:00-08:00'"),
        ("mon-fri 8pm-08:00", "UTC", "lending.windows[0].start must be a time such as 20:00"),
        ("mon-fri 20:00-08:00; fri 07:00-09:00", "UTC", "overlap"),
    ],
)
def test_terms_that_do_not_parse_lend_it_never_and_the_log_says_why(
    caplog: pytest.LogCaptureFixture, windows: str, zone: str, words: str
) -> None:
    with caplog.at_level(logging.ERROR):
        lending = config(windows, zone).lending
    assert lending == NOT_LENT and not is_open(lending, 1_800_000_000.0)
    assert words in caplog.text


def test_the_status_carries_the_terms_to_the_fleet() -> None:
    terms = decode_lending(TERMS)
    status = build_status(PrinterSnapshot(operational=True), None, p.Capabilities(), 1_800_000_000.0, terms)
    assert p.decode_status(p.encode_status(status)).lending == terms


@pytest.mark.parametrize(
    ("windows", "zone", "materials", "words", "problem"),
    [
        (
            "sat,sun 08:00-24:00; mon-fri 25:00-08:00",
            "Europe/Paris",
            "",
            "lending hours: 'mon-fri 25:00-08:00': start must be a time such as 20:00 (00:00 to 24:00)",
            {"setting": "windows", "piece": "mon-fri 25:00-08:00", "key": "lending_time", "params": {}},
        ),
        (
            "weeknights",
            "UTC",
            "",
            "lending hours: 'weeknights': 'weeknights' must read like 'mon-fri 20:00-08:00'",
            {"setting": "windows", "piece": "weeknights", "key": "lending_shape", "params": {}},
        ),
        (
            "mon-fri 20:00-08:00",
            "Paris/Montmartre",
            "",
            "lending time zone: unknown time zone 'Paris/Montmartre' (use a name such as Europe/Paris)",
            {
                "setting": "time_zone",
                "piece": "",
                "key": "lending_zone_unknown",
                "params": {"zone": "Paris/Montmartre"},
            },
        ),
        (
            "mon-fri 20:00-08:00",
            "",
            "PLA",
            "lending time zone: must be a time zone such as Europe/Paris",
            {"setting": "time_zone", "piece": "", "key": "lending_zone_missing", "params": {}},
        ),
        (
            "mon-fri 20:00-08:00; fri 07:00-09:00",
            "UTC",
            "",
            "lending hours: windows 0 (weeknights 20:00-08:00) and 1 (Friday 07:00-09:00) overlap",
            {
                "setting": "windows",
                "piece": "",
                "key": "lending_overlap",
                "params": {"first": 1, "second": 2},
            },
        ),
        ("", "Paris/Montmartre", "", "", None),
        ("mon-fri 20:00-08:00", "UTC", "PLA, PETG", "", None),
    ],
)
def test_the_runtimes_status_says_what_is_wrong_with_the_terms(
    tmp_path: Path, windows: str, zone: str, materials: str, words: str, problem: dict[str, object] | None
) -> None:
    """The settings page and the Fablab tab show it (from the key and values, in the page's language);
    the log alone is not where an owner looks."""
    settings = {"lending_windows": windows, "lending_time_zone": zone, "lending_materials": materials}
    read = PluginConfig.from_settings(lambda keys: settings.get(keys[0]), None)
    assert read.lending_error == words
    runtime = Runtime(read, None, tmp_path, lambda _: None)  # type: ignore[arg-type]
    assert runtime.status()["lending_error"] == words
    assert runtime.status()["lending_problem"] == problem


def test_the_tab_hears_the_valid_terms_and_whether_they_lend_the_printer_now(tmp_path: Path) -> None:
    settings = {"lending_windows": "mon-fri 20:00-08:00", "lending_time_zone": "Europe/Paris"}
    read = PluginConfig.from_settings(lambda keys: settings.get(keys[0]), None)
    monday_night = datetime(2026, 12, 7, 21, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
    runtime = Runtime(read, None, tmp_path, lambda _: None, clock=lambda: monday_night)  # type: ignore[arg-type]
    lent = runtime.status()["lending"]
    assert lent["windows"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "20:00", "end": "08:00"}
    ]
    assert (lent["time_zone"], lent["lent_now"], lent["next"]) == ("Europe/Paris", True, None)
    assert (lent["until"]["weekday"], lent["until"]["time"]) == (1, "08:00")  # Tuesday morning
    sunday = monday_night - 86400 - 9 * 3600
    later = Runtime(read, None, tmp_path, lambda _: None, clock=lambda: sunday)  # type: ignore[arg-type]
    closed = later.status()["lending"]
    assert (closed["lent_now"], closed["until"], closed["next"]["weekday"], closed["next"]["time"]) == (
        False,
        None,
        0,
        "20:00",
    )
    assert Runtime(config(""), None, tmp_path, lambda _: None).status()["lending"] is None  # type: ignore[arg-type]
    assert Runtime(config("weeknights"), None, tmp_path, lambda _: None).status()["lending"] is None  # type: ignore[arg-type]
