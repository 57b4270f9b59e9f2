"""The owner's lending terms in the plugin's settings, and in the status the node sends."""

from __future__ import annotations

import logging
from pathlib import Path

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
    ("windows", "zone", "materials", "words"),
    [
        (
            "sat,sun 08:00-24:00; mon-fri 25:00-08:00",
            "Europe/Paris",
            "",
            "lending hours: 'mon-fri 25:00-08:00': start must be a time such as 20:00 (00:00 to 24:00)",
        ),
        (
            "weeknights",
            "UTC",
            "",
            "lending hours: 'weeknights': 'weeknights' must read like 'mon-fri 20:00-08:00'",
        ),
        (
            "mon-fri 20:00-08:00",
            "Paris/Montmartre",
            "",
            "lending time zone: unknown time zone 'Paris/Montmartre' (use a name such as Europe/Paris)",
        ),
        ("mon-fri 20:00-08:00", "", "PLA", "lending time zone: must be a time zone such as Europe/Paris"),
        ("", "Paris/Montmartre", "", ""),
        ("mon-fri 20:00-08:00", "UTC", "PLA, PETG", ""),
    ],
)
def test_the_runtimes_status_says_what_is_wrong_with_the_terms(
    tmp_path: Path, windows: str, zone: str, materials: str, words: str
) -> None:
    """The settings page and the Fablab tab show it; the log alone is not where an owner looks."""
    settings = {"lending_windows": windows, "lending_time_zone": zone, "lending_materials": materials}
    read = PluginConfig.from_settings(lambda keys: settings.get(keys[0]), None)
    assert read.lending_error == words
    runtime = Runtime(read, None, tmp_path, lambda _: None)  # type: ignore[arg-type]
    assert runtime.status()["lending_error"] == words
