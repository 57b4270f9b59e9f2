"""The owner's lending terms in the plugin's settings, and in the status the node sends."""

from __future__ import annotations

import logging

import pytest

from fleet import protocol as p
from fleet.lending import decode_lending, is_open
from fleet.node.printer import PrinterSnapshot
from fleet.node.rules import build_status
from octoprint_crowdfab.runtime import NOT_LENT, PluginConfig

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
