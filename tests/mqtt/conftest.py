"""What the MQTT tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleet.mqtt import MqttLink


@pytest.fixture
def links() -> Iterator[list[MqttLink]]:
    """The links a test makes: each is closed at its end, whatever happens."""
    made: list[MqttLink] = []
    yield made
    for link in made:
        link.close()
