"""Firmware dialects: their reply lines read right (table), and real slicer files stream through each
simulated dialect at every receive buffer size, every command executed once and in order."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import pytest
import serial

from fleet.serial.dialects import DIALECTS, dialect
from fleet.serial.learning import LADDER, WindowPolicy, level_for_bytes, start_level
from fleet.serial.lineproto import ErrorClass, ReplyKind, last_line_of, parse_reply
from fleet.serial.streamer import JobOutcome, StreamerConfig
from fleet.serial.window_memory import WindowMemory

from .conftest import FAST, commands_of, file_commands, segments

GCODE = Path(__file__).resolve().parents[2].parent / "shared" / "gcode"
VASE = GCODE / "vase_prusaslicer.gcode"

# (line as the firmware prints it, kind, line number or None, error class or None)
REPLIES = [
    ("ok", ReplyKind.OK, None, None),
    ("ok N1234 P15 B3", ReplyKind.OK, 1234, None),  # Marlin ADVANCED_OK
    ("ok T:210.0 /210.0 B:60.0 /60.0 T0:210.0 /210.0 @:40 B@:0", ReplyKind.OK, None, None),
    ("Resend: 57", ReplyKind.RESEND, 57, None),
    ("Resend:57", ReplyKind.RESEND, 57, None),  # OctoPrint's VirtualPrinter
    ("rs 57", ReplyKind.RESEND, 57, None),  # Smoothieware
    ("rs N57", ReplyKind.RESEND, 57, None),
    ("Error:checksum mismatch, Last Line: 56", ReplyKind.ERROR, None, ErrorClass.LINE),
    ("Error:Line Number is not Last Line Number+1, Last Line: 56", ReplyKind.ERROR, None, ErrorClass.LINE),
    ("Error:No Checksum with line number, Last Line: 56", ReplyKind.ERROR, None, ErrorClass.LINE),
    ("Error: No Line Number with checksum, Last Line: 56", ReplyKind.ERROR, None, ErrorClass.LINE),
    ("Error: expected line 57 got 59", ReplyKind.ERROR, None, ErrorClass.LINE),
    ("Error: Missing checksum", ReplyKind.ERROR, None, ErrorClass.LINE),
    ("Error:Printer halted. kill() called!", ReplyKind.ERROR, None, ErrorClass.FATAL),
    ("Error:Thermal Runaway, system stopped! Heater_ID: 0", ReplyKind.ERROR, None, ErrorClass.FATAL),
    ("echo:busy: processing", ReplyKind.BUSY, None, None),  # Marlin 1.1/2.x, Prusa
    ("echo:busy: paused for user", ReplyKind.BUSY, None, None),  # Prusa M0/M1, filament change
    ("busy:processing", ReplyKind.BUSY, None, None),
    ("wait", ReplyKind.WAIT, None, None),  # Marlin 1.1 idle
    ("start", ReplyKind.START, None, None),
    (" T:180.2 /215.0 B:60.0 /60.0 @:127 B@:0 W:?", ReplyKind.TEMPERATURE, None, None),  # M109 waiting
    ("T:180.2 E:0 W:?", ReplyKind.TEMPERATURE, None, None),  # Prusa M109 waiting
    ("Cap:ADVANCED_OK:1", ReplyKind.CAPABILITY, None, None),
]


def print_all(
    host: Any, device: Any, path: Path, expected: list[str], *, timeout: float, settle: float = 10
) -> Any:
    """Stream ``path`` to its end and check the device ran ``expected`` once each, in order."""
    host.start_job(path)
    result = host.wait_job(timeout=timeout)
    assert result is not None and result.outcome is JobOutcome.DONE, result
    assert device.wait_executed(len(expected), timeout=settle)
    assert file_commands(device.executed) == expected
    return result


@pytest.mark.parametrize(("text", "kind", "line", "error"), REPLIES, ids=[r[0][:40] for r in REPLIES])
def test_reply_lines_of_every_dialect(text: str, kind: ReplyKind, line: object, error: object) -> None:
    reply = parse_reply(text)
    assert reply.kind is kind
    if kind in (ReplyKind.OK, ReplyKind.RESEND):
        assert reply.line == line
    assert reply.error is error


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_each_dialect_names_itself_and_its_errors_carry_the_last_line(name: str) -> None:
    d = dialect(name)
    assert parse_reply(d.firmware_line).kind is ReplyKind.FIRMWARE
    for kind in ("checksum", "line_number", "no_checksum"):
        text = d.error(kind, 41)
        assert parse_reply(text).error is ErrorClass.LINE, text
        assert last_line_of(parse_reply(text).message) == 41
    assert parse_reply(d.resend.format(line=42)).line == 42


def test_unknown_dialect_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="marlin2"):
        dialect("teacup")


def test_the_window_starts_safe_widens_when_clean_and_narrows_on_corruption() -> None:
    policy = WindowPolicy(widen_after=3)
    policy.start(*start_level("Marlin 2.1.2", advanced_ok=False, remembered=None))
    assert policy.window().max_lines == 1
    for _ in range(3):
        policy.on_ok(window_was_full=True)
    assert policy.window().max_bytes == 64 and policy.on_trial
    for _ in range(3):
        policy.on_ok(window_was_full=True)
    assert policy.window().max_bytes == 128 and policy.held_bytes == 64
    assert policy.on_corruption(lines_in_flight=3)  # 128 failed on trial: the ceiling is 64
    assert policy.window().max_bytes == 64
    for _ in range(30):
        policy.on_ok(window_was_full=True)
    assert policy.window().max_bytes == 64 and policy.held_bytes == 64
    assert not policy.on_corruption(lines_in_flight=1)  # one line in flight: noise, not overflow
    assert level_for_bytes(100) == LADDER.index(64)
    assert start_level("Prusa-Firmware", advanced_ok=True, remembered=None) == (LADDER.index(128), True)
    assert start_level("Marlin", advanced_ok=False, remembered=0) == (0, False)
    fixed = WindowPolicy(fixed_bytes=256)
    assert fixed.window().max_bytes == 256 and not fixed.window().learned
    with pytest.raises(ValueError, match="16 bytes"):
        WindowPolicy(fixed_bytes=8)


def test_window_memory_keeps_what_held_per_port_and_firmware(tmp_path: Path) -> None:
    memory = WindowMemory(tmp_path / "sub" / "w.json")
    assert memory.recall("/dev/ttyACM0", "Marlin") is None
    memory.remember("/dev/ttyACM0", "Marlin", 128)
    memory.remember("/dev/ttyACM1", "Prusa-Firmware", 0)
    assert memory.recall("/dev/ttyACM0", "Marlin") == 128
    assert memory.recall("/dev/ttyACM0", "Klipper") is None
    (tmp_path / "sub" / "w.json").write_text("{not json", encoding="utf-8")
    assert memory.recall("/dev/ttyACM0", "Marlin") is None  # unreadable: start over, no error


BUFFERS = {"rx32": 32, "rx64": 64, "rx128": 128, "rx1024": 1024, "usb-cdc": 1 << 20}


@pytest.mark.skipif(not VASE.exists(), reason="the shared slicer files are not beside the checkout")
@pytest.mark.parametrize("buffer", list(BUFFERS))
@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_vase_streams_through_every_dialect_and_buffer(
    firmware, streamer, write_gcode, name: str, buffer: str
) -> None:
    expected = commands_of(VASE)[:2500]  # its start, heat-up and first layers: the suite stays short
    path = write_gcode(expected)
    advanced = name == "marlin2"
    device, port = firmware(
        speedup=math.inf, rx_buffer_bytes=BUFFERS[buffer], dialect=name, advanced_ok=advanced
    )
    # No ok is lost here. On a loaded machine one can come late: that only sends an M105, which waits
    # for room in the window, as every line stays counted until its ok (see test_streamer's late ok).
    host = streamer(port)
    print_all(host, device, path, expected, timeout=120, settle=10)


@pytest.mark.skipif(not VASE.exists(), reason="the shared slicer files are not beside the checkout")
# Not 32: this simulator answers ok when a command enters its queue, so a host's next line may meet a
# full queue and a 32-byte buffer cannot hold a 35-byte line whatever the host does (Marlin answers
# when the command leaves the queue). The instant matrix above covers 32 bytes.
@pytest.mark.parametrize("size", [64, 128, 1024])
def test_a_busy_board_with_a_small_buffer_is_learned_not_overrun(
    firmware, streamer, write_gcode, size: int
) -> None:
    # Moves take time, so its command queue fills and its receive buffer must hold what was sent ahead.
    lines = commands_of(VASE)[:1200]
    path = write_gcode(lines)
    device, port = firmware(speedup=400.0, rx_buffer_bytes=size, dialect="marlin1")
    host = streamer(port, replace(FAST, ok_timeout_s=0.5, widen_after=16), baud=115200)
    print_all(host, device, path, lines, timeout=120, settle=10)
    learned = host.learned_window
    assert learned is not None and learned >= 64  # it widened past one line in flight, and it held


def test_a_known_buffer_is_used_as_given(firmware, streamer, write_gcode) -> None:
    _, port = firmware(speedup=math.inf)
    host = streamer(port, StreamerConfig(rx_buffer_bytes=256, ok_timeout_s=0.5))
    assert host.window_bytes == 256


@pytest.mark.parametrize("name", ["rrf", "marlin2"], ids=["no-busy", "busy"])
def test_a_long_heat_up_and_homing_never_count_as_silence(firmware, streamer, write_gcode, name: str) -> None:
    # About 4.5 s of heating with only temperature reports (no busy on RepRapFirmware), against an ok
    # timeout of 1 s that fails the job at the first miss for any other command (long enough for
    # the simulator's instant answers on a loaded machine, four times shorter than the heating).
    lines = ["M104 S200", "M109 S200", "G28", "G1 X10 Y10 F3000", "G1 X20 E1"]
    path = write_gcode(lines)
    device, port = firmware(speedup=1.0, heat_rate_c_per_s=40.0, dialect=name, busy_interval_s=0.5)
    host = streamer(port, replace(FAST, ok_timeout_s=1.0, max_timeouts=0, rx_buffer_bytes=128))
    result = print_all(host, device, path, lines, timeout=30, settle=5)
    assert result.elapsed_s > 4 * 1.0  # it did wait for the heater, far longer than the ok timeout


def _read_until(port: serial.Serial, wanted: Callable[[list[str]], bool], timeout: float) -> list[str]:
    """Lines read from ``port`` until ``wanted(lines)`` holds; fails the test after ``timeout``."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while not wanted(lines):
        assert time.monotonic() < deadline, f"not seen within {timeout} s; read {lines}"
        raw = port.readline()
        if raw.strip():
            lines.append(raw.decode("latin-1").strip())
    return lines


def _count(lines: list[str], kind: ReplyKind, message: Optional[str] = None) -> int:
    replies = [parse_reply(line) for line in lines]
    return sum(1 for r in replies if r.kind is kind and (message is None or r.message == message))


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_each_simulated_dialect_says_wait_when_idle_and_paused_while_waiting_for_the_user(
    firmware, name: str
) -> None:
    d = dialect(name)
    device, path = firmware(dialect=name, idle_wait_s=0.1, busy_interval_s=0.1)
    with serial.Serial(path, 115200, timeout=0.05) as port:
        if d.wait_when_idle:  # Marlin 1.1: idle with an empty queue, it says so every NO_TIMEOUTS
            _read_until(port, lambda lines: _count(lines, ReplyKind.WAIT) >= 2, 5)
        port.write(b"M0\n")
        assert device.wait_paused(5)
        if d.paused is not None:
            seen = _read_until(port, lambda lines: _count(lines, ReplyKind.BUSY, "paused for user") >= 2, 5)
            assert _count(seen, ReplyKind.WAIT) == 0 or d.wait_when_idle  # never while the queue holds M0
        assert device.executed == []  # it waits for the click
        assert device.press_button()
        _read_until(port, lambda lines: "ok" in lines, 5)
        assert device.executed == ["M0"]
        assert not device.press_button()  # nothing waits now


def test_marlin_1_waits_recover_lost_oks_long_before_the_ok_timeout(firmware, streamer, write_gcode) -> None:
    # Every 150th ok is lost; only Marlin 1.1's idle "wait" can tell the host, as the ok timeout (30 s)
    # is longer than the whole test allows.
    lines = segments(600)
    path = write_gcode(lines)
    device, port = firmware(speedup=math.inf, dialect="marlin1", drop_ok_every=150, idle_wait_s=0.2)
    host = streamer(port, replace(FAST, ok_timeout_s=30.0))
    print_all(host, device, path, lines, timeout=20, settle=5)


@pytest.mark.parametrize(("name", "pause"), [("prusa", "M0"), ("prusa", "M600"), ("marlin1", "M1")])
def test_a_long_pause_for_the_user_never_counts_as_silence(
    firmware, streamer, write_gcode, name: str, pause: str
) -> None:
    lines = ["G28", "G1 X10 Y10 F3000", pause, "G1 X20 E1", "G1 X30 E1"]
    path = write_gcode(lines)
    device, port = firmware(speedup=math.inf, dialect=name, busy_interval_s=0.2, idle_wait_s=0.2)
    host = streamer(port, replace(FAST, ok_timeout_s=0.3, max_timeouts=0, slow_timeout_s=0.8))
    host.start_job(path)
    assert device.wait_paused(10)
    # Paused for 2 s, more than twice the silence that fails a job: only "paused for user" keeps it.
    assert host.wait_job(timeout=2.0) is None, host.wait_job(timeout=0)
    assert file_commands(device.executed) == lines[:2]
    assert device.press_button()
    result = host.wait_job(timeout=10)
    assert result is not None and result.outcome is JobOutcome.DONE, result
    assert device.wait_executed(len(lines), timeout=5)
    assert file_commands(device.executed) == lines
