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


def config(lending: object) -> PluginConfig:
    settings = {"lending": lending}
    return PluginConfig.from_settings(lambda keys: settings.get(keys[0]), None)


def test_no_terms_lend_it_whenever_idle_and_terms_are_read() -> None:
    assert config(None).lending is None
    assert config(TERMS).lending == decode_lending(TERMS)


def test_terms_that_do_not_parse_lend_it_never_and_the_log_says_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        lending = config({**TERMS, "time_zone": "Paris/Montmartre"}).lending
    assert lending == NOT_LENT and not is_open(lending, 1_800_000_000.0)
    assert "unknown time zone 'Paris/Montmartre'" in caplog.text


def test_the_status_carries_the_terms_to_the_fleet() -> None:
    terms = decode_lending(TERMS)
    status = build_status(PrinterSnapshot(operational=True), None, p.Capabilities(), 1_800_000_000.0, terms)
    assert p.decode_status(p.encode_status(status)).lending == terms
