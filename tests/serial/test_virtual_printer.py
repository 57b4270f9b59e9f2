"""Real slicer files through OctoPrint's bundled VirtualPrinter on a pty: a peer firmware simulation.

At its defaults it keeps a 64-byte receive buffer and drops what does not fit, so a host that streams
ahead of its oks without knowing that cuts and merges lines. Its simulated errors (``resend``,
``missing_lineno`` with no Resend and no ok, ``checksum_mismatch``) come every few hundred lines.
Time-compressed (moves, dwells and heat-ups take no time) except where a test slows its moves so
that its buffers fill.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from fleet.serial.lineproto import unframe
from fleet.serial.streamer import JobOutcome, SerialStreamer, StreamerConfig
from fleet.serial.window_memory import WindowMemory

from .conftest import commands_of, file_commands
from .vp_bridge import VirtualPrinterOnPty

GCODE = Path(__file__).resolve().parents[2].parent / "shared" / "gcode"
VASE = GCODE / "vase_prusaslicer.gcode"
KINDS = ("resend", "missing_lineno", "checksum_mismatch")

pytestmark = pytest.mark.skipif(
    not VASE.exists(), reason="the shared slicer files are not beside the checkout"
)


def every_few_hundred(total: int, step: int = 300) -> list[str]:
    return [f"{line}:{KINDS[index % 3]}" for index, line in enumerate(range(step, total, step))]


@pytest.fixture
def virtual_printer(tmp_path: Path) -> Iterator[Callable[..., tuple[VirtualPrinterOnPty, str]]]:
    started: list[VirtualPrinterOnPty] = []

    def start(**settings: object) -> tuple[VirtualPrinterOnPty, str]:
        bridge = VirtualPrinterOnPty(tmp_path / f"vp{len(started)}", **settings)  # type: ignore[arg-type]
        started.append(bridge)
        return bridge, bridge.start()

    yield start
    for bridge in started:
        bridge.stop()


def print_file(port: str, path: Path, config: StreamerConfig, timeout: float = 240) -> SerialStreamer:
    host = SerialStreamer(port, 115200, config=config)
    try:
        info = host.connect()
        assert info.name == "Virtual Marlin 1.0"
        host.start_job(path)
        result = host.wait_job(timeout=timeout)
        assert result is not None and result.outcome is JobOutcome.DONE, result
        assert result.lines_sent == len(commands_of(path))
    finally:
        host.close()
    return host


def assert_executed_once_in_order(bridge: VirtualPrinterOnPty, path: Path) -> None:
    expected = commands_of(path)
    assert bridge.wait_executed(len(expected), timeout=10)
    assert file_commands(bridge.executed) == expected


@pytest.mark.parametrize("errors", [False, True], ids=["defaults", "simulated-errors"])
def test_vase_prints_on_the_virtual_printer(virtual_printer, errors: bool) -> None:
    # Its default error list also holds resend_with_timeout, which drops a line no host can recover
    # (its own host loses it too): the errors it does simulate come every few hundred lines instead.
    bridge, port = virtual_printer(simulated_errors=every_few_hundred(8000) if errors else [])
    print_file(port, VASE, StreamerConfig())
    assert_executed_once_in_order(bridge, VASE)


def test_a_busy_virtual_printer_teaches_the_window_its_64_bytes(virtual_printer, tmp_path: Path) -> None:
    # Moves take 2 ms: its 4-slot command buffer fills, its receive buffer then holds what was sent.
    bridge, port = virtual_printer(move_s=0.002, simulated_errors=every_few_hundred(8000, 900))
    memory = tmp_path / "window.json"
    host = print_file(port, VASE, StreamerConfig(window_memory=memory))
    assert_executed_once_in_order(bridge, VASE)
    assert host.learned_window == 64  # widened past 64 once, saw the corruption, came back
    assert WindowMemory(memory).recall(port, "Virtual Marlin 1.0") == 64


def test_benchy_prints_on_the_virtual_printer_with_errors(virtual_printer) -> None:
    benchy = GCODE / "benchy_prusaslicer.gcode"
    bridge, port = virtual_printer(simulated_errors=every_few_hundred(66000, 2000))
    print_file(port, benchy, StreamerConfig(), timeout=600)
    assert_executed_once_in_order(bridge, benchy)


def test_a_firmware_reset_mid_print_fails_the_job_and_never_resumes(virtual_printer, write_gcode) -> None:
    # Its debug command resets it as a power glitch would: "start" again, line numbers forgotten.
    head = commands_of(VASE)[:300]
    path = write_gcode([*head, "!!DEBUG:reset", *commands_of(VASE)[300:600]])
    bridge, port = virtual_printer(simulated_errors=[])
    host = SerialStreamer(port, 115200, config=StreamerConfig())
    try:
        host.connect()
        host.start_job(path)
        result = host.wait_job(timeout=60)
    finally:
        host.close()
    assert result is not None and result.outcome is JobOutcome.FAILED
    assert "restarted during the print" in result.message
    assert bridge.wait_executed(len(head), timeout=5)
    executed = file_commands(bridge.executed)
    assert executed[: len(head)] == head
    assert len(executed) <= len(head) + 8  # at most what was already in flight, nothing sent after


def test_vase_finishes_on_the_virtual_printer_at_its_very_defaults(virtual_printer) -> None:
    # Its own default error list puts four errors within 15 lines (resend at 100, resend_with_timeout
    # at 105, missing_lineno at 110, checksum_mismatch at 115). resend_with_timeout marks line 105 as
    # received without running it, so that command is lost whatever the host does (OctoPrint's own
    # host loses it too). Nothing else may be lost: a resend must not be sent into a 64-byte buffer
    # that still holds cut lines, where it would arrive garbled and its firmware would skip it.
    bridge, port = virtual_printer()
    assert len(bridge.settings["simulated_errors"]) == 4
    print_file(port, VASE, StreamerConfig())
    expected = commands_of(VASE)
    assert bridge.wait_executed(len(expected) - 1, timeout=10)
    executed = file_commands(bridge.executed)
    line_105 = next(line for line in bridge.written if line.startswith(b"N105 "))
    dropped = unframe(line_105 + b"\n")
    pairs = enumerate(zip(expected, [*executed, ""]))
    lost = next((index for index, (want, got) in pairs if want != got), None)
    assert lost is not None, "every command ran, N105's too: its simulated error did not happen"
    around = [line.decode(errors="replace") for line in bridge.written if line[:3] in (b"N9", b"N10", b"N11")]
    assert expected[lost] == dropped, f"lost {expected[lost]!r}, not N105's {dropped!r}; host wrote {around}"
    assert executed == expected[:lost] + expected[lost + 1 :]
