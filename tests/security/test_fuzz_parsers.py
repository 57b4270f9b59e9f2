"""Fuzzing every parser that takes input from outside: only the documented clear errors, never a crash.

The parsers: the MQTT payload decoders (fleet and node side), the G-code intake and analysis (header,
thumbnails, moves, safety rules), the serial line protocol (firmware replies and the resend window),
and the node's reading of the fleet's enrollment answer. Each property says what may come out: a
typed value a later step can use (JSON-serialisable, finite, storable), or the module's own error
with a message. Runs are reproducible (derandomised, no example database) and bounded in examples;
``CROWDFAB_FUZZ_SCALE=20`` multiplies the examples and draws fresh random ones, for a longer search.
"""

from __future__ import annotations

import io
import json
import math
import os
from typing import Any, Callable

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fleet import protocol as p
from fleet.api.serialize import iso, live_json
from fleet.errors import Invalid, TooLarge
from fleet.gcode import DEFAULT_RULES, SafetyRules, analyze_stream
from fleet.gcode.header import first_number, identify, length_mm, parse_duration, sum_numbers
from fleet.gcode.moves import split_command
from fleet.gcode.results import Analysis
from fleet.gcode.thumbnails import ThumbnailCollector
from fleet.models import LiveStatus
from fleet.node.enroll import FleetRequestError, parse_enrollment
from fleet.serial.lineproto import ReplyKind, parse_reply
from fleet.serial.window import LineLedger, ResendAction

SCALE = float(os.environ.get("CROWDFAB_FUZZ_SCALE", "1"))
#: Reproducible in CI: the same examples every run, nothing remembered between runs.
FUZZ = settings(
    deadline=None,
    derandomize=SCALE == 1,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz(examples: int) -> Callable[[Any], Any]:
    return settings(FUZZ, max_examples=max(1, int(examples * SCALE)))


def strict_json(value: Any) -> str:
    """What the API and the stores send on: no NaN or Infinity, which JSON does not have."""
    return json.dumps(value, allow_nan=False)


def clear(error: Exception) -> None:
    message = getattr(error, "message", str(error))
    assert isinstance(message, str) and message.strip(), f"{type(error).__name__} without a message"


# -- strategies ------------------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20))
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
TEXT_WITH_SURROGATES = st.text(
    alphabet=st.characters(blacklist_categories=(), min_codepoint=0, max_codepoint=0x10FFFF), max_size=20
)

BOX = {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 200, "max_y": 200, "max_z": 200}
JOB = {"job_id": 7, "url": "http://fleet/f", "sha256": "a" * 64, "size": 10, "filename": "a.gcode"}
VALID = {
    "status": {
        "v": 1,
        "state": "printing",
        "ts": 1.7e9,
        "temperatures": {"tool0": {"actual": 210.0, "target": 210.0}},
        "progress": 12.5,
        "job_id": 7,
        "eta": 1.7e9,
        "capabilities": {"volume": BOX, "nozzle_diameter": 0.4, "material": "PLA"},
        "message": "",
    },
    "command": {
        "v": 1,
        "id": "c1",
        "type": "dispatch",
        "issued_at": 1.7e9,
        "expires_at": 1.8e9,
        "job_id": 7,
        "job": JOB,
    },
    "ack": {"v": 1, "id": "c1", "status": "accepted", "ts": 1.7e9, "job_id": 7, "reason": ""},
    "event": {"v": 1, "type": "job_done", "ts": 1.7e9, "job_id": 7, "message": "done"},
}
DECODERS: dict[str, Callable[[bytes], Any]] = {
    "status": p.decode_status,
    "command": p.decode_command,
    "ack": p.decode_ack,
    "event": p.decode_event,
}
ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "status": p.encode_status,
    "command": p.encode_command,
    "ack": p.encode_ack,
    "event": p.encode_event,
}
#: Where a value can sit inside a message, to be replaced by anything: (kind, path).
SLOTS = [(kind, (key,)) for kind, body in VALID.items() for key in body] + [
    ("status", ("temperatures", "tool0")),
    ("status", ("temperatures", "tool0", "actual")),
    ("status", ("capabilities", "volume")),
    ("status", ("capabilities", "volume", "max_x")),
    ("status", ("capabilities", "material")),
    ("status", ("capabilities", "nozzle_diameter")),
    *[("command", ("job", key)) for key in JOB],
    ("command", ("job", "estimated_s")),
]


@st.composite
def mistyped_messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid message with one to three values replaced by arbitrary JSON (or removed)."""
    kind = draw(st.sampled_from(sorted(VALID)))
    body = json.loads(json.dumps(VALID[kind]))
    slots = [path for k, path in SLOTS if k == kind]
    for path in draw(st.lists(st.sampled_from(slots), min_size=1, max_size=3)):
        holder = body
        for key in path[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if not isinstance(holder, dict):
            continue
        if draw(st.booleans()) and path[-1] != "v":
            holder[path[-1]] = draw(JSON_VALUES | TEXT_WITH_SURROGATES)
        else:
            holder.pop(path[-1], None)
    return kind, json.dumps(body).encode("utf-8")


def check_decoded(kind: str, payload: bytes) -> None:
    """Decode; a message that passes must survive what the receiver does with it next."""
    try:
        message = DECODERS[kind](payload)
    except p.ProtocolError as exc:
        clear(exc)
        return
    # It encodes again (strict JSON) and decodes to the same value: sender and receiver agree.
    again = ENCODERS[kind](message)
    assert DECODERS[kind](again) == message
    for text in (getattr(message, "message", ""), getattr(message, "reason", "")):
        text.encode("utf-8")  # storable: no unpaired surrogates
        assert "\0" not in text
    if isinstance(message, p.Status):
        # The fleet shows it: times as dates, all of it as strict JSON.
        iso(message.ts)
        live = LiveStatus(
            node_state=message.state.value,
            temperatures={n: (t.actual, t.target) for n, t in message.temperatures.items()},
            progress=message.progress,
            eta=message.eta,
            job_id=message.job_id,
            last_seen=message.ts,
            message=message.message,
        )
        strict_json(live_json(live))
    if isinstance(message, p.Command):
        iso(message.issued_at)
        iso(message.expires_at)


# -- MQTT payloads ---------------------------------------------------------------------------------


@fuzz(900)
@given(kind=st.sampled_from(sorted(DECODERS)), payload=st.binary(max_size=300))
@example(kind="status", payload=b"[" * 60_000)  # nesting deep enough to exhaust the parser's stack
@example(kind="command", payload=b'{"v": 1, "id": "x", "type": "pause", "issued_at": NaN, "expires_at": 1}')
@example(kind="event", payload=b"\xff\xfe{}")
def test_mqtt_payloads_of_any_bytes(kind: str, payload: bytes) -> None:
    check_decoded(kind, payload)


@fuzz(900)
@given(kind=st.sampled_from(sorted(DECODERS)), value=JSON_VALUES)
def test_mqtt_payloads_of_any_json(kind: str, value: Any) -> None:
    check_decoded(kind, json.dumps(value).encode("utf-8"))
    if isinstance(value, dict):
        check_decoded(kind, json.dumps({**value, "v": 1}).encode("utf-8"))


@fuzz(1800)
@given(message=mistyped_messages())
@example(message=("status", json.dumps({**VALID["status"], "eta": 1e300}).encode()))
@example(message=("status", json.dumps({**VALID["status"], "ts": 10**400}).encode()))
@example(
    message=(
        "status",
        json.dumps({**VALID["status"], "capabilities": {"volume": {**BOX, "max_x": 10**400}}}).encode(),
    )
)
@example(message=("event", json.dumps({**VALID["event"], "message": "\ud800"}).encode()))
@example(message=("ack", json.dumps({**VALID["ack"], "job_id": 10**30}).encode()))
def test_mqtt_payloads_with_wrong_types(message: tuple[str, bytes]) -> None:
    check_decoded(*message)


@fuzz(600)
@given(payload=st.binary(max_size=40) | st.sampled_from([b"online", b"offline", b" online\n"]))
def test_availability_payloads(payload: bytes) -> None:
    try:
        assert p.decode_availability(payload) in (True, False)
    except p.ProtocolError as exc:
        clear(exc)


@fuzz(600)
@given(name=st.text(max_size=60) | st.builds(lambda s: f"crowdfab/v1/printers/{s}", st.text(max_size=30)))
def test_topics(name: str) -> None:
    try:
        printer_id, channel = p.parse_topic(name)
    except p.ProtocolError as exc:
        clear(exc)
        return
    assert p.topic(printer_id, channel) == name


# -- G-code ----------------------------------------------------------------------------------------

NUMBER_TEXT = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e4, 1e4, allow_nan=False).map(lambda f: f"{f:.3f}"),
    st.sampled_from(
        ["1e400", "-1e400", "nan", "inf", "5e-324", "1e-320", "0", "-0", ".", "+", "-", "", "1" + "0" * 400]
    ),
    st.integers(300, 5000).map(lambda n: "9" * n),
)
COMMANDS = ["G0", "G1", "G2", "G3", "G4", "G20", "G21", "G28", "G90", "G91", "G92", "M82", "M83", "M104"]
COMMANDS += ["M109", "M140", "M190", "M201", "M203", "M204", "M205", "M500", "M600", "T0", "N12 G1", "G01"]
WORDS = list("XYZEFIJRSPT")


@st.composite
def gcode_lines(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 9))
    if choice <= 4:  # a command with words, sometimes glued, with a comment or checksum
        command = draw(st.sampled_from(COMMANDS))
        words = draw(st.lists(st.tuples(st.sampled_from(WORDS), NUMBER_TEXT), max_size=5))
        glue = draw(st.sampled_from([" ", ""]))
        line = command + "".join(f"{glue or ' ' if i == 0 else glue}{w}{n}" for i, (w, n) in enumerate(words))
        return line + draw(st.sampled_from(["", " ; note", "*71", " ;TYPE:Skirt"]))
    if choice == 5:  # a header comment a slicer writes, with a value of any shape
        key = draw(
            st.sampled_from(
                [
                    "estimated printing time (normal mode) = ",
                    "TIME:",
                    "filament used [mm] = ",
                    "Filament used: ",
                    "filament_diameter = ",
                    "nozzle_diameter = ",
                    "layer_height = ",
                    "filament_type = ",
                    "Material#1 Used: ",
                    "filament_length_m = ",
                    "total filament used [g] = ",
                    "filament_density = ",
                    "generated by ",
                    "GENERATOR.NAME:",
                    "GENERATOR.VERSION:",
                    "model printing time: 1h; total estimated time: ",
                ]
            )
        )
        value = draw(NUMBER_TEXT | st.text(max_size=15).map(lambda t: t.replace("\n", " ")))
        return f";{key}{value}{draw(st.sampled_from(['', 'm', 'mm', 'h 2m', ' d']))}"
    if choice == 6:  # thumbnail blocks, whole or damaged
        size = draw(NUMBER_TEXT)
        return draw(
            st.sampled_from(
                [
                    f"; thumbnail begin {size}x{size} {size}",
                    f"; thumbnail_JPG begin 16x16 {size}",
                    "; iVBORw0KGgo=",
                    "; !!notbase64",
                    "; thumbnail end",
                    "; thumbnail_JPG end",
                ]
            )
        )
    if choice == 7:  # markers that switch the model region
        return draw(
            st.sampled_from([";LAYER:1", ";TYPE:WALL-OUTER", ";TYPE:Custom", ";TIME_ELAPSED:5", "; layer 2"])
        )
    if choice == 8:
        return draw(st.text(max_size=40).map(lambda t: t.replace("\n", " ")))
    return ""


def check_analysis(data: bytes, rules: SafetyRules = DEFAULT_RULES) -> None:
    try:
        analysis = analyze_stream(io.BytesIO(data), total_size=len(data), rules=rules, max_bytes=1 << 20)
    except (Invalid, TooLarge) as exc:
        clear(exc)
        return
    body = analysis.to_dict()
    strict_json(body)  # what the API answers and the store keeps
    assert Analysis.from_dict(json.loads(json.dumps(body))) == analysis
    assert analysis.line_count >= 1 and all(f.message for f in analysis.findings)


@fuzz(750)
@given(data=st.binary(max_size=2000))
@example(data=b"GCDE\x01\x00")
@example(data=b"\x89PNG\r\n\x1a\n....")
@example(data=b"G1 X1 Y1 E1\n\x00")
@example(data=b"\xef\xbb\xbfG28\n")
def test_gcode_of_any_bytes(data: bytes) -> None:
    check_analysis(data)


@fuzz(600)
@given(lines=st.lists(gcode_lines(), min_size=1, max_size=25), newline=st.sampled_from(["\n", "\r\n"]))
@example(lines=["G1 X0 Y0 F1e-320", "G1 X10 Y0 E1"], newline="\n")
@example(lines=["G1 F5e-324", "G1 X10 Y0 E1"], newline="\n")
@example(lines=["G1 X1e400 Y1 E1"], newline="\n")
@example(lines=["G1 X0 Y0", "G2 X" + "9" * 200 + " Y0 I" + "9" * 200 + " E1"], newline="\n")
@example(lines=["G" + "1" * 5000 + " X1"], newline="\n")
@example(lines=["; thumbnail begin " + "1" * 5000 + "x2 3", "; thumbnail end", "G28"], newline="\n")
@example(lines=["; filament_diameter = 1" + "0" * 200, "G1 X1 Y1 E1"], newline="\n")
@example(lines=["M203 X5e-324", "G1 X10 Y10 E1"], newline="\n")
def test_gcode_lines(lines: list[str], newline: str) -> None:
    check_analysis(newline.join(lines).encode("utf-8"))


@fuzz(180)
@given(lines=st.lists(gcode_lines(), min_size=1, max_size=10))
def test_gcode_with_a_short_line_limit(lines: list[str]) -> None:
    check_analysis("\n".join(lines).encode("utf-8"), SafetyRules(max_line_length=256))


@fuzz(900)
@given(text=st.text(max_size=60) | NUMBER_TEXT)
def test_header_values(text: str) -> None:
    for read in (parse_duration, first_number, length_mm, sum_numbers):
        value = read(text)
        assert value is None or math.isfinite(value), (read.__name__, text, value)
    slicer = identify(text)
    assert slicer is None or isinstance(slicer.name, str)


@fuzz(900)
@given(code=st.binary(max_size=60) | st.text(alphabet="GMTN0123456789.XYZE -*;", max_size=40).map(str.encode))
def test_command_words(code: bytes) -> None:
    command, params = split_command(code)
    assert isinstance(command, str) and all(isinstance(v, float) for v in params.values())


@fuzz(600)
@given(
    comments=st.lists(
        st.binary(max_size=60) | gcode_lines().map(lambda s: s.lstrip("; ").encode()), max_size=12
    )
)
def test_thumbnail_blocks(comments: list[bytes]) -> None:
    collector = ThumbnailCollector(max_count=2, max_base64=64)
    for comment in comments:
        if collector.active:
            collector.feed(comment)
        else:
            collector.begin(comment)
    assert len(collector.thumbnails) <= 2
    for thumb in collector.thumbnails:
        strict_json(thumb.to_dict())


@fuzz(900)
@given(value=JSON_VALUES)
@example(value={"max_hotend_c": 10**400})
@example(value={"material_limits": {"PLA": {"bed_max_c": float("nan")}}})
@example(value={"also_refuse": ["M" + "9" * 5000]})
def test_lab_rules(value: Any) -> None:
    try:
        rules = SafetyRules.from_dict(value)
    except Invalid as exc:
        clear(exc)
        return
    strict_json(rules.to_dict())
    assert SafetyRules.from_dict(rules.to_dict()) == rules


# -- serial line protocol --------------------------------------------------------------------------

REPLIES = st.one_of(
    st.binary(max_size=80),
    st.text(max_size=60),
    st.builds(
        lambda head, n: f"{head}{n}",
        st.sampled_from(["ok ", "ok N", "ok N12 P", "Resend: ", "rs N", "T:", "ok T:", "B:", "Cap:X:"]),
        NUMBER_TEXT,
    ),
    st.sampled_from(["ok", "wait", "start", "!! kill", "Error:checksum mismatch", "echo:busy: processing"]),
)


@fuzz(600)
@given(raw=REPLIES)
@example(raw="Resend: " + "1" * 5000)
@example(raw="ok " + "2" * 5000)
@example(raw="ok N1 P" + "3" * 5000 + " B4")
@example(raw="T:" + "9" * 400 + " /210 B:60")
def test_firmware_replies(raw: Any) -> None:
    reply = parse_reply(raw)
    assert isinstance(reply.kind, ReplyKind)
    for value in (reply.line, reply.planner_free, reply.buffer_free):
        assert value is None or (isinstance(value, int) and value >= 0)
    for actual, target in reply.temperatures.values():
        assert actual is not None and math.isfinite(actual)
        assert target is None or math.isfinite(target)


@fuzz(750)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("send"), st.sampled_from(["G1 X1", "M105", "G28", "M400"])),
            st.tuples(st.just("reply"), REPLIES),
            st.tuples(st.just("resend"), st.integers(-5, 40)),
            st.tuples(st.just("reset"), st.integers(0, 30)),
            st.tuples(st.just("timeout"), st.none()),
        ),
        max_size=60,
    ),
    history=st.integers(1, 8),
)
def test_resend_window(steps: list[tuple[str, Any]], history: int) -> None:
    """Drive a ledger as the streamer does (a pending resend goes first) with any firmware answers."""
    ledger = LineLedger(rx_buffer_bytes=64, history=history, resend_limit=3)
    failed = False

    def pump() -> None:
        while True:
            pending = ledger.pending_resend()
            if pending is None:
                return
            number, data = pending
            # A resend re-sends the very bytes that line was numbered with.
            assert data.startswith(f"N{number} ".encode()), (number, data)
            if not ledger.fits(len(data)):
                return
            ledger.sent(number, len(data))

    for action, value in steps:
        if failed:
            break
        if action == "send" and ledger.pending_resend() is None:
            data = ledger.preview(value)
            if ledger.fits(len(data)):
                number, data = ledger.number(value)
                ledger.sent(number, len(data), asks_temperature=value == "M105")
        elif action == "reply":
            reply = parse_reply(value)
            if reply.kind is ReplyKind.OK:
                ledger.acknowledge(reply)
            elif reply.kind is ReplyKind.RESEND and reply.line is not None:
                decision = ledger.request_resend(reply.line)
                failed = decision.action is ResendAction.FAILED
                assert not failed or decision.message
        elif action == "resend":
            decision = ledger.request_resend(value)
            failed = decision.action is ResendAction.FAILED
            assert not failed or decision.message
        elif action == "reset" and ledger.pending_resend() is None:
            number, data = ledger.reset(value)
            ledger.sent(number, len(data))
        elif action == "timeout":
            ledger.forget_oldest()
        pump()
        assert ledger.in_flight_bytes >= 0 and ledger.in_flight >= 0


# -- the node's side -------------------------------------------------------------------------------

ENROLLMENT = {
    "printer_id": "prusa-mk4",
    "token": "cfp_x",
    "mqtt": {"host": "fleet.lab", "port": 18830, "username": "prusa-mk4", "password": "pw", "tls": False},
}


@fuzz(900)
@given(
    answer=JSON_VALUES
    | st.builds(
        lambda key, value: {**ENROLLMENT, key: value}, st.sampled_from(sorted(ENROLLMENT)), JSON_VALUES
    )
    | st.builds(
        lambda key, value: {**ENROLLMENT, "mqtt": {**ENROLLMENT["mqtt"], key: value}},
        st.sampled_from(sorted(ENROLLMENT["mqtt"])),
        JSON_VALUES,
    )
)
@example(answer=ENROLLMENT)
def test_enrollment_answers(answer: Any) -> None:
    """What a node makes of the fleet's answer (or of whatever answers at the fleet's address)."""
    try:
        enrollment = parse_enrollment(answer)
    except FleetRequestError as exc:
        clear(exc)
        return
    assert p.PRINTER_ID_RE.match(enrollment.printer_id)
    mqtt = enrollment.mqtt
    assert isinstance(mqtt.host, str) and mqtt.host and 1 <= mqtt.port <= 65535
    assert isinstance(enrollment.token, str) and isinstance(mqtt.tls, bool)
    assert all(v is None or isinstance(v, str) for v in (mqtt.username, mqtt.password))


def test_the_strategies_reach_valid_messages() -> None:
    """The wrong-type fuzzing starts from messages that decode: otherwise it tests nothing."""
    for kind, body in VALID.items():
        message = DECODERS[kind](json.dumps(body).encode())
        assert DECODERS[kind](ENCODERS[kind](message)) == message
    assert parse_enrollment(ENROLLMENT).printer_id == "prusa-mk4"
