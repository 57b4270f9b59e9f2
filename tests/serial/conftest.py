"""Fixtures for the serial tests: a simulated firmware on a real pty, G-code files, a connected streamer."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Callable

import pytest

from fleet.serial.lineproto import strip_comment
from fleet.serial.simulator import SimulatedFirmware, SimulatorOptions
from fleet.serial.streamer import HOUSEKEEPING, SerialStreamer, StreamerConfig

#: Timings small enough for tests; the production defaults are in StreamerConfig. An ok counts as lost
#: after 3 s, well before the 7.8 s of silence (26 ok timeouts) that fail the job, as with the defaults.
FAST = StreamerConfig(ok_timeout_s=0.3, lost_ok_s=3.0, connect_timeout_s=5.0, hello_interval_s=0.3)


def commands_of(path: Path) -> list[str]:
    """The commands the firmware should run for ``path``: no comments, no blank lines."""
    with path.open(encoding="ascii") as stream:
        return [command for command in (strip_comment(line) for line in stream) if command]


def file_commands(executed: Iterable[str]) -> list[str]:
    """What a firmware executed, without the streamer's own housekeeping (M105, M110, M115, M155)."""
    return [command for command in executed if command.split(" ", 1)[0] not in HOUSEKEEPING]


def segments(count: int, *, step: float = 0.2, feed: int = 1200) -> list[str]:
    """``count`` short extruding G1 moves, zig-zagging along X (our own small-segment file)."""
    lines = ["G90", "M83", f"G1 X10.000 Y10.000 F{feed}"]
    x = 10.0
    for index in range(count):
        x += step if (index // 500) % 2 == 0 else -step
        lines.append(f"G1 X{x:.3f} Y{10 + (index % 7) * 0.01:.3f} E0.0125")
    return lines


@pytest.fixture
def write_gcode(tmp_path: Path) -> Callable[[Iterable[str]], Path]:
    def write(lines: Iterable[str], name: str = "job.gcode") -> Path:
        path = tmp_path / name
        path.write_text("; written for a test\n" + "\n".join(lines) + "\n", encoding="ascii")
        return path

    return write


@pytest.fixture
def firmware() -> Iterator[Callable[..., tuple[SimulatedFirmware, str]]]:
    """Start simulated firmwares with the given options, as (device, its pty path); all are stopped
    at the end of the test."""
    started: list[SimulatedFirmware] = []

    def start(**options: object) -> tuple[SimulatedFirmware, str]:
        device = SimulatedFirmware(SimulatorOptions(**options))  # type: ignore[arg-type]
        path = device.start()
        started.append(device)
        return device, path

    yield start
    for device in started:
        device.stop()


@pytest.fixture
def streamer() -> Iterator[Callable[..., SerialStreamer]]:
    """Connect streamers to a port; all are closed at the end of the test."""
    opened: list[SerialStreamer] = []

    def connect(port: str, config: StreamerConfig = FAST, baud: int = 115200, **kw: object) -> SerialStreamer:
        host = SerialStreamer(port, baud, config=config, **kw)  # type: ignore[arg-type]
        opened.append(host)
        host.connect()
        return host

    yield connect
    for host in opened:
        host.close()
