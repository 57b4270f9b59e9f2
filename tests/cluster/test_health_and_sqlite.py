"""One fleet process: its health check (database, broker, draining), and SQLite refusing a second one."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from fleet.config import FleetConfig
from fleet.errors import Unavailable
from fleet.server import FleetRuntime, LinkOptions
from tests.brokers import TestBroker, wait_until


def health(runtime: FleetRuntime) -> requests.Response:
    return requests.get(f"{runtime.url}/api/v1/health", timeout=10)


def test_health_names_what_is_down_and_sqlite_serves_one_process(
    tmp_path: Path, mosquitto: TestBroker
) -> None:
    config = FleetConfig(data_dir=tmp_path / "data", port=0)
    first = FleetRuntime(config, LinkOptions(mqtt_url=mosquitto.url))
    first.start()
    try:
        wait_until(lambda: health(first).status_code == 200, 10, "the fleet to be healthy")
        # SQLite: this one process holds every once-only duty.
        assert health(first).json() == {
            "status": "ok",
            "database": "up",
            "broker": "up",
            "duties": ["dispatch", "notify-scan", "sweeps"],
        }

        second = FleetRuntime(config, LinkOptions(mqtt_url=mosquitto.url))
        with pytest.raises(Unavailable) as refused:
            second.start()
        message = refused.value.message
        assert str(config.data_dir / "fleet.db") in message
        assert "one fleet process at a time" in message and "PostgreSQL" in message

        mosquitto.stop()
        wait_until(lambda: health(first).status_code == 503, 15, "the health check to see the broker gone")
        problem = health(first).json()
        assert problem["details"] == {"database": "up", "broker": "down"}
        assert "broker" in problem["message"]
        mosquitto.start()
        wait_until(lambda: health(first).status_code == 200, 20, "the health check to see the broker back")

        first.app.health.drain()  # what SIGTERM does first: the load balancer moves on
        draining = health(first)
        assert draining.status_code == 503 and "stopping" in draining.json()["message"]
    finally:
        first.close()
    # The lock went with the process that held it: the file can be served again.
    again = FleetRuntime(config, LinkOptions(mqtt_url=mosquitto.url))
    again.start()
    again.close()
