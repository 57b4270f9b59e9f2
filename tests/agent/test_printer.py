"""SerialPrinter against a simulated firmware on a real pty: what the node hears, and what it remembers."""

from __future__ import annotations

import math
import stat
from pathlib import Path

import pytest

from fleet.agent import SerialPrinter
from fleet.gcode.generate import generate_box
from fleet.node import PrinterError, PrintOutcome
from fleet.serial.lineproto import strip_comment
from fleet.serial.streamer import StreamerConfig
from tests.brokers import wait_until

FAST = StreamerConfig(ok_timeout_s=5.0, connect_timeout_s=5.0, temperature_interval_s=0.2)


def commands(text: str) -> list[str]:
    return [c for c in (strip_comment(line) for line in text.splitlines()) if c]


def in_order(wanted: list[str], executed: list[str]) -> bool:
    """Every wanted command was executed, in order (the streamer's own polls may sit between them)."""
    rest = iter(executed)
    return all(any(done == command for done in rest) for command in wanted)


@pytest.fixture
def part(tmp_path: Path) -> Path:
    source = tmp_path / "part.gcode"
    source.write_text(generate_box(8, 8, 0.4, origin=(30.0, 30.0)))
    return source


def connected(device: str, data_dir: Path, recorder) -> SerialPrinter:
    printer = SerialPrinter(device, 115200, data_dir, config=FAST, notify_interval_s=0.05)
    printer.bind(recorder)
    printer.connect()
    return printer


def test_a_small_print_is_started_and_done_and_remembered_after_a_restart(
    simulator, recorder, tmp_path, part
):
    firmware, device = simulator(speedup=math.inf)
    printer = connected(device, tmp_path / "agent", recorder)
    try:
        assert printer.snapshot().operational and not printer.snapshot().busy
        stored = printer.store_file(7, "7-part.gcode", part)
        assert stored == tmp_path / "agent" / "crowdfab" / "7-part.gcode"
        assert stored.read_text() == part.read_text()

        printer.start(stored)
        with pytest.raises(PrinterError):
            printer.start(stored)  # one job at a time
        recorder.wait_for("done", 30)
        assert [m for m, _ in recorder.calls] == ["started", "done"]
        assert {name for _, name in recorder.calls} == {str(stored)}
        assert in_order(commands(part.read_text()), firmware.executed)
        assert printer.last_result(stored) is PrintOutcome.DONE
        wait_until(lambda: not printer.snapshot().busy, 5, "the printer to be idle again")
        assert recorder.changes > 0
    finally:
        printer.close()
    # A new agent on the same data dir knows how that print ended.
    again = SerialPrinter(device, 115200, tmp_path / "agent")
    assert again.last_result(stored) is PrintOutcome.DONE
    assert again.last_result(stored.with_name("other.gcode")) is None
    assert not again.snapshot().operational  # not connected yet


def test_thermal_runaway_fails_the_print_with_the_firmwares_message(simulator, recorder, tmp_path, part):
    _, device = simulator(speedup=math.inf, thermal_runaway_at_line=12)
    printer = connected(device, tmp_path / "agent", recorder)
    try:
        stored = printer.store_file(3, "3-part.gcode", part)
        printer.start(stored)
        recorder.wait_for("failed", 30)
        assert [m for m, _ in recorder.calls] == ["started", "failed"]
        assert printer.last_result(stored) is PrintOutcome.FAILED
        result = printer.last_print(stored)
        assert result is not None and "runaway" in result.message.lower()
        assert recorder.reasons == [result.message]  # the node hears why, for the fleet's history
        snapshot = printer.snapshot()
        assert not snapshot.busy
    finally:
        printer.close()


def test_cancel_stops_a_running_print(simulator, recorder, tmp_path):
    firmware, device = simulator(speedup=5.0)
    long_part = tmp_path / "long.gcode"
    long_part.write_text(generate_box(60, 60, 4.0, origin=(30.0, 30.0), temperatures=(0, 0)))
    printer = connected(device, tmp_path / "agent", recorder)
    try:
        stored = printer.store_file(4, "4-long.gcode", long_part)
        printer.start(stored)
        recorder.wait_for("started", 5)
        assert firmware.wait_executed(10, 20)
        assert printer.snapshot().printing
        printer.cancel()
        recorder.wait_for("cancelled", 30)
        assert [m for m, _ in recorder.calls] == ["started", "cancelled"]
        assert printer.last_result(stored) is PrintOutcome.CANCELLED
        assert len(firmware.executed) < len(commands(long_part.read_text()))
    finally:
        printer.close()


def test_a_missing_device_is_a_printer_error(tmp_path):
    printer = SerialPrinter(str(tmp_path / "ttyACM9"), 115200, tmp_path / "agent", config=FAST)
    with pytest.raises(PrinterError, match="could not connect"):
        printer.connect()
    assert not printer.connected


def test_credentials_are_saved_for_the_owner_only(tmp_path):
    from fleet.agent import load_credentials, save_credentials
    from fleet.node.enroll import BrokerAddress, EnrollmentAnswer

    enrollment = EnrollmentAnswer("mini-1", "cfp_secret", BrokerAddress("127.0.0.1", 18830, "mini-1", "pw"))
    path = save_credentials(tmp_path, enrollment)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_credentials(tmp_path) == enrollment
    assert load_credentials(tmp_path / "elsewhere") is None


def test_a_usb_device_that_disappears_fails_the_job_and_asks_for_a_reconnect(
    simulator, recorder, tmp_path, part
):
    # The board vanishes at its line 20 (the streamer's M115, M105 and M155 come first).
    _, device = simulator(speedup=math.inf, disconnect_at_line=20)
    printer = connected(device, tmp_path / "agent", recorder)
    try:
        printer.start(printer.store_file(3, "3-part.gcode", part))
        recorder.wait_for("failed", 30)
        assert not printer.connected  # Agent.run opens the port again once it is back
        result = printer.last_print(tmp_path / "agent" / "crowdfab" / "3-part.gcode")
        assert result is not None and "lost the connection" in result.message
        assert recorder.reasons == [result.message]
    finally:
        printer.close()
