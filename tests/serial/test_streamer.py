"""The streamer against the simulated firmware on a real pty: noise, lost oks, kills, cancels, the window."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fleet.gcode.generate import generate_box
from fleet.serial.streamer import (
    JobOutcome,
    JobResult,
    PrinterUnreachable,
    SerialStreamer,
    StreamerSnapshot,
    StreamState,
    stream_file,
)
from tests.brokers import wait_until

from .conftest import FAST, commands_of, file_commands, segments

INSTANT = math.inf  # moves take no time


@pytest.fixture(scope="module")
def big_box(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gcode") / "box.gcode"
    path.write_text(generate_box(100.0, 100.0, 10.0, infill=True), encoding="ascii")
    return path


@pytest.mark.parametrize("advanced_ok", [False, True], ids=["plain-ok", "advanced-ok"])
def test_noisy_line_and_lost_oks_print_every_line_once_in_order(
    big_box: Path, firmware, streamer, advanced_ok: bool
) -> None:
    expected = commands_of(big_box)
    assert len(expected) > 20_000
    device, port = firmware(speedup=INSTANT, corrupt_rate=0.01, drop_ok_every=2000, advanced_ok=advanced_ok)
    host = streamer(port, replace(FAST, ok_timeout_s=0.2, lost_ok_s=0.5))
    host.start_job(big_box)
    result = host.wait_job(timeout=60)
    assert result is not None and result.outcome is JobOutcome.DONE, result
    assert result.lines_sent == len(expected)
    assert result.resends > 50  # the noise was there, and was recovered from
    # DONE comes with the last ok; the last few commands may still be running: let them finish.
    assert device.wait_executed(len(expected), timeout=5)
    assert file_commands(device.executed) == expected
    final = host.snapshot()
    assert (final.state, final.progress_bytes, final.sent_lines) == (StreamState.IDLE, 100.0, len(expected))


def test_thermal_runaway_stops_the_stream_at_once(firmware, streamer, write_gcode) -> None:
    lines = segments(1000)
    path = write_gcode(lines)
    finished: list[JobResult] = []

    class Listener:
        def on_snapshot(self, snapshot: StreamerSnapshot) -> None:
            pass

        def on_job_finished(self, result: JobResult) -> None:
            finished.append(result)

    # Lines N1..N3 are the streamer's M115, M105 and M155: the file starts at N4.
    runaway_at = 3 + int(0.4 * len(lines))
    device, port = firmware(speedup=INSTANT, thermal_runaway_at_line=runaway_at)
    # The receive buffer is given: a learning window's probe lines would shift the numbering.
    host = streamer(port, replace(FAST, rx_buffer_bytes=128), listener=Listener())
    host.start_job(path)
    result = host.wait_job(timeout=20)
    assert result is not None and result.outcome is JobOutcome.FAILED
    assert "Thermal Runaway, system stopped! Heater_ID: 0" in result.message
    # The listener hears of the end once the streamer has let go of its lock, an instant after
    # wait_job() can return.
    wait_until(lambda: bool(finished), 5, "the listener to hear that the job ended")
    assert finished == [result]
    executed = file_commands(device.executed)
    assert executed == lines[: runaway_at - 4]  # everything before the runaway line, nothing after
    # Only lines already in flight when the firmware stopped were sent: at most its command queue
    # (4) and its receive buffer (128 bytes) beyond the runaway line, and none after the error.
    shortest = min(len(line) for line in lines) + len(" N9999 *99\n")
    assert result.lines_sent <= len(executed) + 1 + 4 + 128 // shortest
    assert host.snapshot().sent_lines == result.lines_sent
    assert host.snapshot().state is StreamState.ERROR
    with pytest.raises(RuntimeError, match="error"):
        host.send("M104 S200")
    assert device.killed


def test_disconnect_fails_the_job_with_a_clear_message(firmware, streamer, write_gcode) -> None:
    path = write_gcode(segments(2000))
    _, port = firmware(speedup=INSTANT, disconnect_at_line=600)
    host = streamer(port)
    host.start_job(path)
    result = host.wait_job(timeout=20)
    assert result is not None and result.outcome is JobOutcome.FAILED
    assert result.message.startswith(f"lost the connection to the printer on {port}")
    assert host.snapshot().state is StreamState.ERROR


def test_cancel_stops_the_file_and_runs_the_cancel_gcode(firmware, streamer, write_gcode) -> None:
    lines = segments(3000, step=1.0, feed=6000)  # 10 ms a move: 30 s in all
    path = write_gcode(lines)
    device, port = firmware(speedup=1.0)
    host = streamer(port)
    host.start_job(path)
    assert device.wait_executed(200, timeout=10)
    host.cancel()
    result = host.wait_job(timeout=10)
    assert result is not None and result.outcome is JobOutcome.CANCELLED
    # The lines sent before the cancel still run (they are in the firmware's queue), then the cancel G-code.
    printed = result.lines_sent
    assert 200 <= printed < len(lines) - 100
    assert device.wait_executed(printed + len(FAST.cancel_gcode), timeout=10)
    assert file_commands(device.executed) == lines[:printed] + list(FAST.cancel_gcode)
    assert not device.wait_executed(printed + len(FAST.cancel_gcode) + 1, timeout=0.3)
    assert host.snapshot().state is StreamState.IDLE


def test_pause_stops_sending_and_resume_goes_on(firmware, streamer, write_gcode) -> None:
    lines = segments(600, step=1.0, feed=6000)
    path = write_gcode(lines)
    device, port = firmware(speedup=2.0)
    host = streamer(port, replace(FAST, pause_gcode=("M117 paused",)))
    host.start_job(path)
    assert device.wait_executed(100, timeout=10)
    host.pause()
    assert host.snapshot().state is StreamState.PAUSED
    sent = host.snapshot().sent_lines
    # Everything sent before the pause runs, then the pause G-code, then nothing more.
    assert device.wait_executed(sent + 1, timeout=10)
    assert not device.wait_executed(sent + 2, timeout=0.5)
    assert file_commands(device.executed) == [*lines[:sent], "M117 paused"]
    assert host.snapshot().sent_lines == sent
    host.resume()
    result = host.wait_job(timeout=30)
    assert result is not None and result.outcome is JobOutcome.DONE
    assert device.wait_executed(len(lines) + 1, timeout=5)
    assert file_commands(device.executed) == [*lines[:sent], "M117 paused", *lines[sent:]]


@pytest.mark.parametrize("busy", [True, False], ids=["with-busy", "without-busy"])
def test_busy_keeps_a_long_move_from_timing_out(firmware, streamer, write_gcode, busy: bool) -> None:
    lines = ["G90", "G1 X0 F6000", "G1 X100 F60", "G1 X0 F6000", "M400"]  # 100 s at 1 mm/s
    path = write_gcode(lines)
    device, port = firmware(speedup=50.0, busy_interval_s=0.1 if busy else 0.0)  # the move: 2 s
    # No second chance: a single ok timeout fails the job.
    host = streamer(port, replace(FAST, ok_timeout_s=0.5, max_timeouts=0))
    host.start_job(path)
    result = host.wait_job(timeout=10)
    assert result is not None
    if busy:
        assert result.outcome is JobOutcome.DONE, result
        assert device.wait_executed(len(lines), timeout=5)
        assert file_commands(device.executed) == lines
    else:
        assert result.outcome is JobOutcome.FAILED
        assert "has not answered" in result.message


@pytest.mark.parametrize("window", [128, 512], ids=["buffer-size", "too-big"])
def test_the_window_never_overflows_the_receive_buffer(firmware, streamer, write_gcode, window: int) -> None:
    lines = segments(1500)  # 0.2 mm at 20 mm/s: 10 ms a move, 1 ms with speedup 10
    path = write_gcode(lines)
    device, port = firmware(speedup=10.0, rx_buffer_bytes=128)
    host = streamer(port, replace(FAST, rx_buffer_bytes=window))
    host.start_job(path)
    result = host.wait_job(timeout=30)
    assert result is not None and result.outcome is JobOutcome.DONE, result
    assert device.wait_executed(len(lines), timeout=5)
    assert file_commands(device.executed) == lines
    if window == 128:
        assert result.resends == 0
    else:  # the control: a host that overfills the firmware's buffer loses bytes and needs resends
        assert result.resends > 0


def test_ping_pong_manual_commands_and_progress(firmware, streamer, write_gcode) -> None:
    lines = segments(300)
    path = write_gcode(lines)
    device, port = firmware(speedup=INSTANT, autoreport_temperature=False)
    snapshots: list[StreamerSnapshot] = []
    done = threading.Event()

    class Listener:
        def on_snapshot(self, snapshot: StreamerSnapshot) -> None:
            snapshots.append(snapshot)

        def on_job_finished(self, result: JobResult) -> None:
            done.set()

    host = streamer(port, replace(FAST, max_inflight=1, temperature_interval_s=0.05), listener=Listener())
    host.send("M117 hello ; a comment")
    host.start_job(path, line_times=[0.5] * len(lines))
    result = host.wait_job(timeout=20)
    assert result is not None and result.outcome is JobOutcome.DONE
    assert done.wait(5), "the listener heard that the job ended"  # told an instant after wait_job()
    assert device.wait_executed(len(lines) + 1, timeout=5)
    assert file_commands(device.executed) == ["M117 hello", *lines]
    final = host.snapshot()
    assert (final.progress_bytes, final.progress_time, final.total_lines) == (100.0, 100.0, len(lines))
    assert final.bytes_done == final.total_bytes == path.stat().st_size
    assert final.temperatures["T0"][0] is not None  # polled with M105: this firmware has no autoreport
    states = [snapshot.state for snapshot in snapshots]
    assert StreamState.PRINTING in states and states[-1] is StreamState.IDLE


def test_connect_reports_the_firmware(firmware, streamer) -> None:
    _, port = firmware(advanced_ok=True, firmware_name="Marlin 2.1.2 test")
    host = SerialStreamer(port, 115200, config=FAST)
    try:
        info = host.connect()
        assert info.name == "Marlin 2.1.2 test"
        assert info.advanced_ok and info.capabilities["AUTOREPORT_TEMP"]
        assert host.snapshot().state is StreamState.IDLE
    finally:
        host.close()
    assert host.snapshot().state is StreamState.DISCONNECTED


def test_no_answer_is_a_clear_error(tmp_path: Path) -> None:
    import os
    import tty

    master, slave = os.openpty()  # a port with nobody behind it
    tty.setraw(slave)
    try:
        host = SerialStreamer(os.ttyname(slave), 115200, config=replace(FAST, connect_timeout_s=0.5))
        with pytest.raises(PrinterUnreachable, match="no answer from the printer"):
            host.connect()
        result = stream_file("/dev/does-not-exist", 115200, tmp_path / "x.gcode", config=FAST)
        assert result.outcome is JobOutcome.FAILED
        assert "cannot open the serial port /dev/does-not-exist" in result.message
    finally:
        os.close(master)
        os.close(slave)


def test_stream_file(firmware, write_gcode) -> None:
    lines = segments(500)
    path = write_gcode(lines)
    device, port = firmware(speedup=INSTANT)
    seen: list[StreamerSnapshot] = []
    result = stream_file(port, 115200, path, config=FAST, on_progress=seen.append)
    assert result.outcome is JobOutcome.DONE
    assert device.wait_executed(len(lines), timeout=5)
    assert file_commands(device.executed) == lines
    assert any(snapshot.state is StreamState.PRINTING for snapshot in seen)
    assert seen[-1].state is StreamState.DISCONNECTED  # stream_file closes the port when done


def test_a_reply_with_no_end_keeps_memory_bounded_and_the_link_working() -> None:
    """A firmware (or line noise) sending megabytes without a newline must not grow the reader's buffer."""
    import os
    import tracemalloc
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    noise_sent = threading.Event()
    stop = threading.Event()

    def firmware() -> None:  # answers every line with ok, after a flood of noise with no line end
        pending = b""
        while not stop.is_set():
            try:
                pending += os.read(master, 4096)
            except OSError:
                return
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if not noise_sent.is_set():
                    for _ in range(64):
                        os.write(master, b"\x07" * 65536)  # 4 MiB with no newline
                    noise_sent.set()
                    os.write(master, b" tail of the noise\n")
                reply = b"FIRMWARE_NAME:Noisy 1.0\nok\n" if b"M115" in line else b"ok\n"
                os.write(master, reply)

    thread = threading.Thread(target=firmware, daemon=True)
    thread.start()
    tracemalloc.start()
    host = SerialStreamer(os.ttyname(slave), 115200, config=replace(FAST, connect_timeout_s=20))
    try:
        info = host.connect()
        _, peak = tracemalloc.get_traced_memory()
        assert noise_sent.is_set()
        assert info.name == "Noisy 1.0"  # the lines after the noise were read as usual
        assert peak < 2 * 1024 * 1024, f"the reader held {peak} bytes for 4 MiB of noise"
    finally:
        tracemalloc.stop()
        host.close()
        stop.set()
        os.close(slave)
        os.close(master)
        thread.join(timeout=5)


def test_a_command_after_a_long_idle_gets_its_whole_ok_timeout(firmware, streamer) -> None:
    # With temperatures reported on their own nothing is answered while idle; the ok timeout of the next
    # line counts from when it was written, not from the last answer long before.
    device, port = firmware(speedup=INSTANT, usb_latency_s=0.05)
    host = streamer(port, replace(FAST, ok_timeout_s=0.3, max_timeouts=0))
    assert host.snapshot().state is StreamState.IDLE
    idle_until = time.monotonic() + 4 * FAST.ok_timeout_s
    wait_until(lambda: time.monotonic() > idle_until, 5, "an idle spell longer than the ok timeout")
    before = len(device.executed)
    host.send("M117 after a rest")
    assert device.wait_executed(before + 1, timeout=5)
    assert device.executed[-1] == "M117 after a rest"
    wait_until(lambda: host.snapshot().temperatures, 5, "a temperature report")
    assert host.snapshot().state is StreamState.IDLE, host.snapshot().error


def prints_every_line_once_without_overrun(host, device, path, lines: list[str]) -> JobResult:
    """Print ``path``: done, every line once and in order, not a byte dropped by the firmware, no resend."""
    host.start_job(path)
    result = host.wait_job(timeout=30)
    assert result is not None and result.outcome is JobOutcome.DONE, result
    assert device.wait_executed(len(lines), timeout=5)
    assert file_commands(device.executed) == lines
    assert (device.overrun_bytes, result.resends) == (0, 0)
    return result


def test_a_late_ok_never_overruns_the_receive_buffer(firmware, streamer, write_gcode) -> None:
    # Moves of 0.25 s behind a full command queue (4): the ok of each line comes only when a move ends,
    # long after the 0.1 s ok timeout, while the lines sent ahead wait in the 128-byte receive buffer.
    # Taking such an ok for lost sent lines into bytes the firmware still held (some 400 dropped).
    lines = segments(16, step=5.0)  # 5 mm at 20 mm/s
    path = write_gcode(lines)
    device, port = firmware(speedup=1.0, rx_buffer_bytes=128, busy_interval_s=0.0)
    host = streamer(port, replace(FAST, rx_buffer_bytes=128, ok_timeout_s=0.1, lost_ok_s=2.0))
    prints_every_line_once_without_overrun(host, device, path, lines)


@pytest.mark.parametrize(
    ("max_inflight", "drop_ok_every", "waits"),
    # Ping-pong: each lost ok (2) blocks the one line in flight. Four lines: every fourth lost ok (8)
    # blocks them all (a slow moment's ok timeout may send the M105 sooner: one wait is certain).
    [(1, 70, 2), (4, 25, 1)],
    ids=["ping-pong", "four-lines"],
)
def test_lost_oks_that_fill_the_window_count_as_lost_after_lost_ok_s(
    firmware, streamer, write_gcode, max_inflight: int, drop_ok_every: int, waits: int
) -> None:
    lines = segments(200)
    path = write_gcode(lines)
    # Moves take no time: every line in flight whose ok was lost has long been answered.
    device, port = firmware(speedup=INSTANT, rx_buffer_bytes=512, drop_ok_every=drop_ok_every)
    config = replace(FAST, rx_buffer_bytes=512, max_inflight=max_inflight, ok_timeout_s=0.1, lost_ok_s=1.0)
    result = prints_every_line_once_without_overrun(streamer(port, config), device, path, lines)
    # Not even the M105 fitted: each of those waits lasted lost_ok_s before the oldest line counted done.
    assert result.elapsed_s >= waits * config.lost_ok_s
