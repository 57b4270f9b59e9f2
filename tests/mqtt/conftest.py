"""MQTT fixtures: a private Mosquitto per test (see :mod:`tests.brokers` to use it elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..brokers import TestBroker


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[TestBroker]:
    """A running anonymous broker on a free port, stopped after the test."""
    broker = TestBroker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.close()
