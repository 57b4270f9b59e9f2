"""The serial line protocol: framing, replies from real firmwares, and the send window's bookkeeping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.serial.lineproto import (
    ErrorClass,
    ReplyKind,
    checksum,
    frame,
    parse_reply,
    parse_temperatures,
    strip_comment,
)
from fleet.serial.stream_core import OkTimeout, on_ok_timeout
from fleet.serial.stream_types import StreamerConfig
from fleet.serial.window import LineLedger, ResendAction

from .conftest import FAST

# --- framing ---------------------------------------------------------------------------------------


def test_frame_matches_the_checksum_firmwares_compute() -> None:
    # M110's reset line as hosts send it; the XOR of "N0 M110 N0" is 125.
    assert frame(0, "M110 N0") == b"N0 M110 N0*125\n"
    body = b"N12 G1 X10 Y20"
    assert frame(12, "G1 X10 Y20") == body + b"*" + str(checksum(body)).encode() + b"\n"


def test_strip_comment() -> None:
    assert strip_comment("  G1 X1 ; move\n") == "G1 X1"
    assert strip_comment("; only a comment") == ""


# --- replies: lines as real firmwares print them ---------------------------------------------------

OK_LINES = [
    # (line, line number, planner free, buffer free, temperatures)
    ("ok", None, None, None, {}),  # Marlin, Prusa, Klipper, RepRapFirmware
    ("ok ", None, None, None, {}),
    ("ok N12 P15 B3", 12, 15, 3, {}),  # Marlin ADVANCED_OK
    ("ok P15 B3", None, 15, 3, {}),  # ADVANCED_OK after an un-numbered line
    ("ok 12", 12, None, None, {}),  # Repetier: the line number it took
    (
        "ok T:210.00 /210.00 B:60.00 /60.00 @:127 B@:0",  # Marlin M105
        None,
        None,
        None,
        {"T0": (210.0, 210.0), "B": (60.0, 60.0)},
    ),
    (
        "ok T:19.57 /0.00 B:20.62 /30.00 @:0 B@:127",  # Marlin 1.1.9, from a Printrun log
        None,
        None,
        None,
        {"T0": (19.57, 0.0), "B": (20.62, 30.0)},
    ),
    (
        "ok T:214.9 /215.0 B:60.1 /60.0 T0:214.9 /215.0 @:47 B@:21 P:36.4 A:40.2",  # Prusa MK3 M105
        None,
        None,
        None,
        {"T0": (214.9, 215.0), "B": (60.1, 60.0), "P": (36.4, None), "A": (40.2, None)},
    ),
    (
        "ok B:60.0 /60.0 T0:210.0 /210.0",  # Klipper's pseudo-tty M105
        None,
        None,
        None,
        {"B": (60.0, 60.0), "T0": (210.0, 210.0)},
    ),
    (
        "ok T:23.8 /0.0 B:23.4 /0.0 T0:23.8 /0.0 T1:24.1 /0.0 @:0 B@:0 @0:0 @1:0",  # two extruders
        None,
        None,
        None,
        {"T0": (23.8, 0.0), "T1": (24.1, 0.0), "B": (23.4, 0.0)},
    ),
]


@pytest.mark.parametrize(("line", "number", "planner", "buffer", "temperatures"), OK_LINES)
def test_ok_lines(line: str, number, planner, buffer, temperatures) -> None:
    reply = parse_reply(line)
    assert reply.kind is ReplyKind.OK
    assert (reply.line, reply.planner_free, reply.buffer_free) == (number, planner, buffer)
    assert dict(reply.temperatures) == temperatures
    assert reply.advanced_ok is (buffer is not None)


@pytest.mark.parametrize(
    ("line", "number"),
    [
        ("Resend: 12", 12),  # Marlin, Prusa
        ("Resend:12", 12),
        ("rs 12", 12),  # Repetier, RepRapFirmware
        ("rs N12", 12),
        ("RESEND: 7", 7),
    ],
)
def test_resend_requests(line: str, number: int) -> None:
    reply = parse_reply(line)
    assert (reply.kind, reply.line) == (ReplyKind.RESEND, number)


@pytest.mark.parametrize(
    ("line", "kind", "message"),
    [
        ("echo:busy: processing", ReplyKind.BUSY, "processing"),  # Marlin HOST_KEEPALIVE
        ("echo:busy: paused for user", ReplyKind.BUSY, "paused for user"),
        ("busy: processing", ReplyKind.BUSY, "processing"),
        ("wait", ReplyKind.WAIT, ""),  # Marlin/Repetier when idle
        ("start", ReplyKind.START, ""),  # Marlin after a reset
        ("echo:Marlin 2.1.2", ReplyKind.ECHO, "Marlin 2.1.2"),
        ('echo:Unknown command: "G999"', ReplyKind.ECHO, 'Unknown command: "G999"'),
        ("echo:  M92 X80.00 Y80.00 Z4000.00 E100.47", ReplyKind.ECHO, "M92 X80.00 Y80.00 Z4000.00 E100.47"),
        ("// Klipper state: Ready", ReplyKind.ECHO, "Klipper state: Ready"),
        ("Unified Bed Leveling System v1.01 active.", ReplyKind.OTHER, ""),
        ("", ReplyKind.OTHER, ""),
    ],
)
def test_status_lines(line: str, kind: ReplyKind, message: str) -> None:
    reply = parse_reply(line)
    assert reply.kind is kind
    assert reply.message == message


@pytest.mark.parametrize(
    ("line", "temperatures"),
    [
        # Marlin M155 autoreport and the reports while M109 waits (W: is a timer, E: an index).
        (" T:210.00 /210.00 B:60.00 /60.00 @:0 B@:0", {"T0": (210.0, 210.0), "B": (60.0, 60.0)}),
        (" T:150.12 E:0 W:?", {"T0": (150.12, None)}),
        ("T:185.4 E:0 B:59.8", {"T0": (185.4, None), "B": (59.8, None)}),
        # RepRapFirmware's Marlin-style report
        ("T:25.3 /0.0 B:24.1 /0.0", {"T0": (25.3, 0.0), "B": (24.1, 0.0)}),
        # Klipper: bed first, tools numbered; chamber
        (
            "B:60.0 /60.0 T0:210.0 /210.0 C:35.0 /0.0",
            {"B": (60.0, 60.0), "T0": (210.0, 210.0), "C": (35.0, 0.0)},
        ),
        (" T:-15.00 /0.00 B:20.00 /0.00", {"T0": (-15.0, 0.0), "B": (20.0, 0.0)}),
    ],
)
def test_temperature_reports(line: str, temperatures) -> None:
    reply = parse_reply(line)
    assert reply.kind is ReplyKind.TEMPERATURE
    assert dict(reply.temperatures) == temperatures


def test_a_named_tool_wins_over_the_active_tool() -> None:
    # Marlin with two extruders prints T (the active tool, here T1) and T0/T1.
    assert parse_temperatures("T:200.0 /200.0 T0:180.0 /0.0 T1:200.0 /200.0") == {
        "T0": (180.0, 0.0),
        "T1": (200.0, 200.0),
    }


def test_m115_firmware_and_capabilities() -> None:
    marlin = parse_reply(
        "FIRMWARE_NAME:Marlin bugfix-2.1.x (Jun  1 2023 12:00:00) "
        "SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin PROTOCOL_VERSION:1.0 "
        "MACHINE_TYPE:3D Printer EXTRUDER_COUNT:1 UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff"
    )
    assert marlin.kind is ReplyKind.FIRMWARE
    assert marlin.firmware["FIRMWARE_NAME"] == "Marlin bugfix-2.1.x (Jun  1 2023 12:00:00)"
    assert marlin.firmware["MACHINE_TYPE"] == "3D Printer"
    assert marlin.firmware["EXTRUDER_COUNT"] == "1"
    rrf = parse_reply(
        "FIRMWARE_NAME: RepRapFirmware for Duet 2 WiFi/Ethernet FIRMWARE_VERSION: 3.4.5 "
        "ELECTRONICS: Duet WiFi 1.02 or later FIRMWARE_DATE: 2022-11-30 19:36:12"
    )
    assert rrf.firmware["FIRMWARE_NAME"] == "RepRapFirmware for Duet 2 WiFi/Ethernet"
    assert rrf.firmware["FIRMWARE_VERSION"] == "3.4.5"
    klipper = parse_reply("ok FIRMWARE_NAME:Klipper FIRMWARE_VERSION:v0.12.0-85-gd785b396")
    assert klipper.kind is ReplyKind.OK
    assert klipper.firmware == {"FIRMWARE_NAME": "Klipper", "FIRMWARE_VERSION": "v0.12.0-85-gd785b396"}
    assert parse_reply("Cap:AUTOREPORT_TEMP:1").capability == ("AUTOREPORT_TEMP", True)
    assert parse_reply("Cap:ADVANCED_OK:0").capability == ("ADVANCED_OK", False)


ERROR_LINES = [
    # Garbled lines: the firmware asks for a resend next.
    ("Error:checksum mismatch, Last Line: 11", ErrorClass.LINE),
    ("Error:Line Number is not Last Line Number+1, Last Line: 11", ErrorClass.LINE),
    ("Error:No Checksum with line number, Last Line: 11", ErrorClass.LINE),
    ("Error:No Line Number with checksum, Last Line: 11", ErrorClass.LINE),
    ("Error:expected line 12 got 14", ErrorClass.LINE),
    # Refused commands: the firmware carries on.
    ('Error:Unknown command: "M999X"', ErrorClass.COMMAND),
    ("Error: Bad command: G999", ErrorClass.COMMAND),
    ("Error:volume.init failed", ErrorClass.COMMAND),
    # The firmware has stopped.
    ("Error:Thermal Runaway, system stopped! Heater_ID: 0", ErrorClass.FATAL),
    ("Error:Thermal Runaway, system stopped! Heater_ID: bed", ErrorClass.FATAL),
    ("Error:Printer halted. kill() called!", ErrorClass.FATAL),
    ("Error:MINTEMP triggered, system stopped! Heater_ID: 0", ErrorClass.FATAL),
    ("Error:MAXTEMP triggered, system stopped! Heater_ID: bed", ErrorClass.FATAL),
    ("Error:Heating failed, system stopped! Heater_ID: 0", ErrorClass.FATAL),
    ("Error:0", ErrorClass.FATAL),  # Prusa prints the kill reason on the next line
    (
        "Error: Heater 1 fault: temperature rising much more slowly than the expected 1.8°C/sec",
        ErrorClass.FATAL,
    ),
    ("!! Shutdown due to heater extruder not heating at expected rate", ErrorClass.FATAL),  # Klipper
    ("!! MCU 'mcu' shutdown: Timer too close", ErrorClass.FATAL),
]


@pytest.mark.parametrize(("line", "error"), ERROR_LINES)
def test_error_lines(line: str, error: ErrorClass) -> None:
    reply = parse_reply(line)
    assert reply.kind is ReplyKind.ERROR
    assert reply.error is error
    assert reply.fatal is (error is ErrorClass.FATAL)
    assert reply.message and not reply.message.startswith(("Error", ":", "!"))


def test_bytes_and_line_endings() -> None:
    assert parse_reply(b"ok\r\n").kind is ReplyKind.OK
    assert parse_reply(b"Resend: 3\n").line == 3
    assert parse_reply(b"\xff\xfeok").kind is ReplyKind.OTHER  # noise before the ok: not an ok


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_no_line_crashes_the_parser(raw) -> None:
    reply = parse_reply(raw)
    assert isinstance(reply.kind, ReplyKind)


@given(st.text(alphabet="okNPBT:/ 0123456789.-@ERrsendbusyCap!", max_size=60))
def test_protocol_looking_noise_parses(raw: str) -> None:
    reply = parse_reply(raw)
    if reply.kind is ReplyKind.RESEND:
        assert reply.line is not None and reply.line >= 0


# --- the ledger: numbering, window, resends --------------------------------------------------------


def send(ledger: LineLedger, command: str, **kw) -> int:
    number, data = ledger.number(command)
    ledger.sent(number, len(data), **kw)
    return number


def test_byte_window_counts_every_line_until_its_ok() -> None:
    ledger = LineLedger(rx_buffer_bytes=60)
    assert ledger.fits(1000)  # nothing in flight: one line may always go
    first = send(ledger, "G1 X1.000 Y1.000")
    size = len(ledger.preview("G1 X2.000 Y2.000"))
    assert size == len(frame(first + 1, "G1 X2.000 Y2.000")) == 23
    assert ledger.fits(size)
    send(ledger, "G1 X2.000 Y2.000")
    assert ledger.in_flight_bytes == 46
    assert not ledger.fits(size)  # 69 bytes would overfill a 60-byte buffer
    assert ledger.fits(60 - 46)
    ledger.acknowledge(parse_reply("ok"))
    assert ledger.in_flight == 1
    assert ledger.fits(size)


def test_ping_pong() -> None:
    ledger = LineLedger(max_inflight=1)
    send(ledger, "G28")
    assert not ledger.fits(5)
    ledger.acknowledge(parse_reply("ok"))
    assert ledger.fits(5)


def test_resend_once_per_error_burst() -> None:
    ledger = LineLedger(rx_buffer_bytes=1000)
    for index in range(5):
        send(ledger, f"G1 X{index}")
    # Line 3 was garbled: 3, 4 and 5 are each refused with "Resend: 3" and an ok.
    ledger.acknowledge(parse_reply("ok"))
    ledger.acknowledge(parse_reply("ok"))
    assert ledger.request_resend(3).action is ResendAction.RESEND
    ledger.acknowledge(parse_reply("ok"))
    assert ledger.request_resend(3).action is ResendAction.IGNORED
    ledger.acknowledge(parse_reply("ok"))
    assert ledger.request_resend(3).action is ResendAction.IGNORED
    resent = []
    while (pending := ledger.pending_resend()) is not None:
        number, data = pending
        resent.append(number)
        assert data == frame(number, f"G1 X{number - 1}")
        ledger.sent(number, len(data))
    assert resent == [3, 4, 5]
    assert ledger.resends == 1
    assert ledger.next_number == 6  # nothing numbered twice
    # The last of the first burst's oks, then the resent line 3 is garbled again: a new burst.
    ledger.acknowledge(parse_reply("ok"))
    assert ledger.request_resend(3).action is ResendAction.RESEND
    assert ledger.resends == 2


def test_after_a_resend_request_lines_go_one_at_a_time_until_the_last_is_answered() -> None:
    ledger = LineLedger(rx_buffer_bytes=1000)
    for index in range(4):
        send(ledger, f"G1 X{index}")
    assert ledger.request_resend(2).action is ResendAction.RESEND
    ledger.acknowledge(parse_reply("ok"))  # line 1
    # Lines 2 to 4 are still in flight: their bytes may still be in the firmware's buffer.
    assert ledger.recovering and not ledger.fits(5)
    for _ in range(3):
        ledger.acknowledge(parse_reply("ok"))
    for number in (2, 3, 4):
        assert ledger.fits(20)
        pending = ledger.pending_resend()
        assert pending is not None and pending[0] == number
        ledger.sent(number, len(pending[1]))
        assert not ledger.fits(5)  # one line in flight while recovering
        ledger.acknowledge(parse_reply("ok"))
    assert not ledger.recovering and ledger.pending_resend() is None
    send(ledger, "G1 X9")
    assert ledger.fits(20)  # the window is back


def test_a_request_past_the_line_asked_for_before_it_went_again_rewinds_to_it() -> None:
    ledger = LineLedger(rx_buffer_bytes=1000)
    for index in range(4):
        send(ledger, f"G1 X{index}")
    assert ledger.request_resend(2).action is ResendAction.RESEND
    # Line 3 arrived cut inside its checksum; a firmware that counts it as received asks for 4.
    decision = ledger.request_resend(4)
    assert (decision.action, decision.line) == (ResendAction.REWIND, 2)
    assert ledger.rewind(2) == ["G1 X1", "G1 X2", "G1 X3"]
    assert ledger.pending_resend() is None and ledger.in_flight == 0


def test_a_given_buffer_size_resends_at_its_window() -> None:
    ledger = LineLedger(rx_buffer_bytes=1000)
    ledger.careful_resends = False
    for index in range(4):
        send(ledger, f"G1 X{index}")
    assert ledger.request_resend(2).action is ResendAction.RESEND
    assert not ledger.recovering and ledger.fits(20)


def test_the_same_line_again_and_again_fails() -> None:
    ledger = LineLedger(resend_limit=3)
    send(ledger, "G1 X1")
    for _ in range(3):
        assert ledger.request_resend(1).action is ResendAction.RESEND
        number, data = ledger.pending_resend()  # type: ignore[misc]
        ledger.acknowledge(parse_reply("ok"))
        ledger.sent(number, len(data))
    decision = ledger.request_resend(1)
    assert decision.action is ResendAction.FAILED
    assert "line 1 4 times in a row" in decision.message


def test_a_line_older_than_the_history_fails() -> None:
    ledger = LineLedger(history=3, rx_buffer_bytes=1000)
    for index in range(6):
        send(ledger, f"G1 X{index}")
    assert ledger.request_resend(4).action is ResendAction.RESEND
    decision = ledger.request_resend(2)
    assert decision.action is ResendAction.FAILED
    assert "only the last 3 lines" in decision.message


def test_a_resend_for_a_line_not_sent_is_ignored() -> None:
    ledger = LineLedger()
    send(ledger, "G1 X1")
    assert ledger.request_resend(2).action is ResendAction.IGNORED


def test_numbered_ok_and_temperature_ok_resynchronise_after_a_lost_ok() -> None:
    ledger = LineLedger(rx_buffer_bytes=1000)
    for index in range(4):
        send(ledger, f"G1 X{index}")
    # The ok for line 1 was lost; ADVANCED_OK's next ok names line 2.
    ledger.acknowledge(parse_reply("ok N2 P10 B3"))
    assert ledger.in_flight == 2
    assert ledger.free_slots == 3
    send(ledger, "M105", asks_temperature=True)
    ledger.acknowledge(parse_reply("ok T:20.0 /0.0 B:20.0 /0.0 @:0 B@:0"))
    assert ledger.in_flight == 0 and ledger.idle


def test_reset_renumbers_and_keeps_the_m110_for_resends() -> None:
    ledger = LineLedger(rx_buffer_bytes=1000)
    send(ledger, "G1 X1")
    send(ledger, "G1 X2")
    assert ledger.request_resend(1).action is ResendAction.RESEND
    # Cancelling mid-resend: renumber past the lines the firmware still wants.
    number, data = ledger.reset(3)
    assert (number, data) == (3, frame(3, "M110 N3"))
    assert ledger.pending_resend() is None
    ledger.sent(number, len(data))
    # The line sent before the reset is refused once more: part of the old burst.
    assert ledger.request_resend(1).action is ResendAction.IGNORED
    ledger.acknowledge(parse_reply("ok"))
    ledger.acknowledge(parse_reply("ok"))
    # The M110 itself garbled: the firmware still wants line 1, and gets the M110 again.
    decision = ledger.request_resend(1)
    assert (decision.action, decision.line) == (ResendAction.RESEND, 3)
    assert ledger.pending_resend() == (3, data)
    assert ledger.number("M115")[0] == 4


def test_first_reset_line() -> None:
    assert LineLedger().reset(0) == (0, b"N0 M110 N0*125\n")


def test_window_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_inflight"):
        LineLedger(max_inflight=0)
    with pytest.raises(ValueError, match="rx_buffer_bytes"):
        LineLedger(rx_buffer_bytes=4)


# --- the ok timeout --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeouts", "quiet_s", "action"),
    [
        (1, 2.0, OkTimeout.PROBE),  # late or lost: ask, every line in flight still counted
        (9, 19.9, OkTimeout.PROBE),  # one long move can keep every ok this late
        (10, 20.0, OkTimeout.LOST),
        (25, 50.0, OkTimeout.LOST),  # and again at each timeout, while nothing answers
        (26, 52.0, OkTimeout.GONE),
    ],
)
def test_an_ok_counts_as_lost_only_after_lost_ok_s(timeouts: int, quiet_s: float, action: OkTimeout) -> None:
    assert on_ok_timeout(StreamerConfig(), timeouts, quiet_s) is action


@pytest.mark.parametrize("config", [StreamerConfig(), FAST], ids=["defaults", "tests"])
def test_an_ok_counts_as_lost_before_the_printer_counts_as_gone(config: StreamerConfig) -> None:
    # Silent from the start: the n-th timeout comes n ok timeouts after the last answer.
    actions = [on_ok_timeout(config, n, n * config.ok_timeout_s) for n in range(1, config.max_timeouts + 2)]
    assert actions[0] is OkTimeout.PROBE and actions[-1] is OkTimeout.GONE
    assert OkTimeout.LOST in actions[:-1]


def test_the_probe_waits_for_room_while_late_oks_keep_their_lines_counted() -> None:
    ledger = LineLedger(rx_buffer_bytes=75)
    for index in range(3):
        send(ledger, f"G1 X{index}.500 Y{index}.250")
    probe = len(ledger.preview("M105"))
    assert (ledger.in_flight_bytes, probe) == (69, 11)
    assert not ledger.fits(probe)  # the firmware may still hold all three lines
    ledger.acknowledge(parse_reply("ok"))  # late, not lost
    assert ledger.fits(probe)
    send(ledger, "M105", asks_temperature=True)
    # The ok of the second line is lost after all: the M105's answer takes both lines off.
    ledger.acknowledge(parse_reply("ok T:20.0 /0.0 B:20.0 /0.0 @:0 B@:0"))
    assert ledger.in_flight == 0 and ledger.idle
