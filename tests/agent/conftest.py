"""Agent fixtures: simulated firmwares on real ptys, and a recorder of what a printer tells its node."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Callable

import pytest

from fleet.serial.simulator import SimulatedFirmware, SimulatorOptions


class Recorder:
    """Stands in for the node: records each print callback as (method, file) in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.reasons: list[str] = []  # the reason of each on_print_failed, in order
        self.changes = 0
        self._cond = threading.Condition()

    def _add(self, method: str, name: str) -> None:
        with self._cond:
            self.calls.append((method, name))
            self._cond.notify_all()

    def printer_changed(self) -> None:
        with self._cond:
            self.changes += 1

    def on_print_started(self, name: str) -> None:
        self._add("started", name)

    def on_print_done(self, name: str) -> None:
        self._add("done", name)

    def on_print_failed(self, name: str, reason: str = "") -> None:
        self.reasons.append(reason)
        self._add("failed", name)

    def on_print_cancelled(self, name: str) -> None:
        self._add("cancelled", name)

    def on_print_paused(self, name: str) -> None:
        self._add("paused", name)

    def on_print_resumed(self, name: str) -> None:
        self._add("resumed", name)

    def wait_for(self, method: str, timeout: float) -> tuple[str, str]:
        with self._cond:
            found = self._cond.wait_for(lambda: any(m == method for m, _ in self.calls), timeout)
            assert found, f"no {method} callback within {timeout} s; saw {self.calls}"
            return next(c for c in self.calls if c[0] == method)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def simulator() -> Iterator[Callable[..., tuple[SimulatedFirmware, str]]]:
    """``simulator(**options)`` starts a simulated firmware and returns it with its device path."""
    started: list[SimulatedFirmware] = []

    def start(**options: object) -> tuple[SimulatedFirmware, str]:
        firmware = SimulatedFirmware(SimulatorOptions(**options))  # type: ignore[arg-type]
        started.append(firmware)
        return firmware, firmware.start()

    yield start
    for firmware in started:
        firmware.stop()
