"""The wire protocol: topics, round trips, and every way a payload can be wrong."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet import protocol as p
from fleet.geometry import Box
from fleet.lending import decode_lending


def test_topics_are_built_and_parsed_the_same_way():
    name = p.topic("mini-1", p.Channel.STATUS)
    assert name == "crowdfab/v1/printers/mini-1/status"
    assert p.parse_topic(name) == ("mini-1", p.Channel.STATUS)
    assert p.wildcard(p.Channel.ACK) == "crowdfab/v1/printers/+/ack"


@pytest.mark.parametrize(
    "name",
    [
        "crowdfab/v2/printers/mini-1/status",
        "crowdfab/v1/printers/mini-1",
        "crowdfab/v1/printers/mini-1/status/extra",
        "crowdfab/v1/printers/Mini_1/status",
        "crowdfab/v1/printers/mini-1/secrets",
        "crowdfab/v1/printers/+/status",
        "",
    ],
)
def test_foreign_topics_are_protocol_errors(name):
    with pytest.raises(p.ProtocolError):
        p.parse_topic(name)


def test_a_printer_id_that_could_escape_its_topic_is_refused():
    for bad in ("a/b", "#", "+", "", "x" * 49):
        with pytest.raises(p.ProtocolError):
            p.topic(bad, p.Channel.CMD)


STATUS = p.Status(
    state=p.NodeState.PRINTING,
    ts=1700000000.5,
    temperatures={"tool0": p.Temperature(210.1, 210.0), "bed": p.Temperature(59.8, 60.0)},
    progress=42.5,
    job_id=7,
    eta=1700003600.0,
    capabilities=p.Capabilities(Box.of_size(180, 180, 180), 0.4, "PLA"),
    message="",
)
COMMAND = p.Command(
    id="c-1",
    type=p.CommandType.DISPATCH,
    issued_at=100.0,
    expires_at=130.0,
    job_id=7,
    job=p.JobRef(
        7, "http://fleet:8080/api/v1/printers/mini-1/jobs/7/file", "a" * 64, 1234, "part.gcode", 600.0
    ),
)
ACK = p.Ack("c-1", p.AckStatus.DECLINED, 101.0, 7, "the printer is busy with a local print")
EVENT = p.Event(p.EventType.JOB_DONE, 102.0, 7, "")


@pytest.mark.parametrize(
    ("value", "encode", "decode"),
    [
        (STATUS, p.encode_status, p.decode_status),
        (COMMAND, p.encode_command, p.decode_command),
        (ACK, p.encode_ack, p.decode_ack),
        (
            p.Ack("c1", p.AckStatus.PENDING, 1.0, 7, "asking", answer_within_s=300.0),
            p.encode_ack,
            p.decode_ack,
        ),
        (EVENT, p.encode_event, p.decode_event),
    ],
)
def test_round_trips(value, encode, decode):
    payload = encode(value)
    assert json.loads(payload)["v"] == p.VERSION
    assert decode(payload) == value


def with_change(payload: bytes, **changes) -> bytes:
    data = json.loads(payload)
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("decode", "payload", "complaint"),
    [
        (p.decode_ack, with_change(p.encode_ack(ACK), answer_within_s=-1), "answer_within_s"),
        (p.decode_ack, with_change(p.encode_ack(ACK), answer_within_s=10**6), "answer_within_s"),
        (p.decode_ack, with_change(p.encode_ack(ACK), answer_within_s="soon"), "answer_within_s"),
        (p.decode_status, b"not json", "JSON"),
        (p.decode_status, b"\xff\xfe", "UTF-8"),
        (p.decode_status, b"[1, 2]", "object"),
        (p.decode_status, with_change(p.encode_status(STATUS), v=2), "version"),
        (p.decode_status, with_change(p.encode_status(STATUS), v=None), "version"),
        (p.decode_status, with_change(p.encode_status(STATUS), state="melting"), "state"),
        (p.decode_status, with_change(p.encode_status(STATUS), progress=150), "progress"),
        (p.decode_status, with_change(p.encode_status(STATUS), ts="now"), "ts"),
        (p.decode_status, with_change(p.encode_status(STATUS), job_id=True), "job_id"),
        (p.decode_status, with_change(p.encode_status(STATUS), temperatures=[1]), "temperatures"),
        (p.decode_command, with_change(p.encode_command(COMMAND), type="format_disk"), "type"),
        (p.decode_command, with_change(p.encode_command(COMMAND), id=""), "id"),
        (p.decode_command, with_change(p.encode_command(COMMAND), job=None), "job"),
        (
            p.decode_command,
            with_change(
                p.encode_command(COMMAND),
                job={**json.loads(p.encode_command(COMMAND))["job"], "url": "file:///etc/passwd"},
            ),
            "url",
        ),
        (
            p.decode_command,
            with_change(
                p.encode_command(COMMAND),
                job={**json.loads(p.encode_command(COMMAND))["job"], "sha256": "../x"},
            ),
            "sha256",
        ),
        (p.decode_ack, with_change(p.encode_ack(ACK), status="maybe"), "status"),
        (p.decode_event, with_change(p.encode_event(EVENT), type="exploded"), "type"),
        (p.decode_event, b"{" * 70000, "limit"),
    ],
)
def test_malformed_payloads_name_what_is_wrong(decode, payload, complaint):
    with pytest.raises(p.ProtocolError) as caught:
        decode(payload)
    assert complaint.lower() in caught.value.message.lower()


def test_availability_is_plain_text():
    assert p.decode_availability(b"online") is True
    assert p.decode_availability(b"offline") is False
    with pytest.raises(p.ProtocolError):
        p.decode_availability(b"maybe")


def test_command_expiry():
    assert not COMMAND.expired(129.9)
    assert COMMAND.expired(130.0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_no_bytes_crash_a_decoder(payload):
    for decode in (p.decode_status, p.decode_command, p.decode_ack, p.decode_event, p.decode_availability):
        with contextlib.suppress(p.ProtocolError):
            decode(payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "state",
                "ts",
                "temperatures",
                "progress",
                "job_id",
                "eta",
                "capabilities",
                "id",
                "type",
                "job",
                "status",
            ]
        ),
        json_values,
    )
)
def test_no_json_object_crashes_a_decoder(fields):
    payload = json.dumps({"v": 1, **fields}).encode()
    for decode in (p.decode_status, p.decode_command, p.decode_ack, p.decode_event):
        with contextlib.suppress(p.ProtocolError):
            decode(payload)


LENDING = {
    "time_zone": "Europe/Paris",
    "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "20:00", "end": "08:00"}],
    "materials": ["PETG", "PLA"],
}


def test_a_status_carries_the_owners_lending_terms_and_an_older_one_none():
    lent = replace(STATUS, lending=decode_lending(LENDING))
    assert p.decode_status(p.encode_status(lent)) == lent
    assert json.loads(p.encode_status(lent))["lending"] == LENDING
    assert "lending" not in json.loads(p.encode_status(STATUS))
    assert p.decode_status(p.encode_status(STATUS)).lending is None


@pytest.mark.parametrize(
    ("lending", "field"),
    [
        ({**LENDING, "time_zone": "Paris"}, "lending.time_zone"),
        (
            {**LENDING, "windows": [{"days": ["mon"], "start": "8pm", "end": "08:00"}]},
            "lending.windows[0].start",
        ),
        ("weeknights", "lending"),
    ],
)
def test_bad_lending_terms_are_a_protocol_error_naming_the_field(lending, field):
    with pytest.raises(p.ProtocolError) as raised:
        p.decode_status(with_change(p.encode_status(STATUS), lending=lending))
    assert raised.value.field == field
