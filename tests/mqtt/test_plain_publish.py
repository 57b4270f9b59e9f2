"""The link's own reading of a plain PUBLISH (``fleet.mqtt.plain_publish``): the same as paho's for every
packet it takes, None for every packet it leaves to paho, and, against a real Mosquitto, every message in
order whichever of the two read it."""

from __future__ import annotations

import threading
from typing import Any, Optional

import paho.mqtt.client as paho
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleet.mqtt import BrokerAddress, MqttLink, PlainPublish, plain_publish

from ..brokers import TestBroker


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def properties(expiry: Optional[int], user: Optional[tuple[str, str]]) -> bytes:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if expiry is not None:
        props.MessageExpiryInterval = expiry
    if user is not None:
        props.UserProperty = user
    packed: bytes = props.pack()  # type: ignore[no-untyped-call]
    return packed


def publish_packet(
    topic: bytes, payload: bytes, *, qos: int = 0, mid: int = 0, props: Optional[bytes] = None, flags: int = 0
) -> bytes:
    """A PUBLISH as the MQTT 3.1.1 and 5 specifications lay it out; ``props`` (MQTT 5) with its length."""
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += mid.to_bytes(2, "big")
    if props is not None:
        body += props
    body += payload
    return bytes([0x30 | qos << 1 | flags]) + varint(len(body)) + body


def paho_reads(packet: bytes, mqtt5: bool) -> Any:
    rest = packet[1:]
    while rest[0] & 128:
        rest = rest[1:]
    protocol = MQTTProtocolVersion.MQTTv5 if mqtt5 else MQTTProtocolVersion.MQTTv311
    return _packet.decode_publish(packet[0], rest[1:], protocol)


@settings(max_examples=300, deadline=None)
@given(
    topic=st.text(min_size=1, max_size=80),
    payload=st.one_of(st.binary(max_size=300), st.binary(min_size=16_400, max_size=16_500)),
    qos=st.integers(0, 2),
    mid=st.integers(1, 65535),
    mqtt5=st.booleans(),
    expiry=st.none() | st.integers(0, 2**32 - 1),
    user=st.none() | st.tuples(st.text(max_size=10), st.text(max_size=10)),
    flags=st.sampled_from([0, 1, 8, 9]),  # retain, dup
    prefix=st.binary(max_size=20),
    suffix=st.binary(max_size=20),
)
def test_a_plain_publish_reads_as_paho_reads_it_and_anything_else_is_left_to_paho(
    topic: str,
    payload: bytes,
    qos: int,
    mid: int,
    mqtt5: bool,
    expiry: Optional[int],
    user: Optional[tuple[str, str]],
    flags: int,
    prefix: bytes,
    suffix: bytes,
) -> None:
    props = (properties(expiry, user) if mqtt5 else None) if (expiry, user) != (None, None) else None
    if mqtt5 and props is None:
        props = b"\x00"  # no properties: their length alone
    packet = publish_packet(topic.encode(), payload, qos=qos, mid=mid, props=props, flags=flags)
    read = plain_publish(prefix + packet + suffix, len(prefix), mqtt5)
    if qos == 2 or (props is not None and props != b"\x00"):
        assert read is None
        return
    theirs = paho_reads(packet, mqtt5)
    assert read == PlainPublish(topic, payload, mid if qos else 0, qos, len(prefix) + len(packet))
    assert (read.topic.encode(), read.payload, read.mid, read.qos) == (
        theirs.topic,
        theirs.payload,
        theirs.mid,
        theirs.qos,
    )
    # Cut anywhere by the end of what was read: left for paho, which waits for the rest.
    for cut in (1, 2, len(packet) // 2, len(packet) - 1):
        assert plain_publish(prefix + packet[:cut], len(prefix), mqtt5) is None


@pytest.mark.parametrize(
    "data",
    [
        bytes([0x40, 2, 0, 1]) + b"\x00",  # PUBACK
        bytes([0xD0, 0]) + b"\x00\x00\x00",  # PINGRESP
        bytes([0x90, 3, 0, 1, 0]) + b"\x00\x00",  # SUBACK
        bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]) + b"x" * 10,  # a remaining length of five bytes
        bytes([0x30, 8, 0, 200]) + b"a/b/c/de",  # the topic runs past the packet
        bytes([0x30, 4, 0, 0]) + b"ab",  # no topic
        bytes([0x32, 5, 0, 1]) + b"a\x00\x00",  # QoS 1 with packet identifier 0
        bytes([0x30, 5, 0, 2]) + b"\xff\xfeok",  # a topic that is not UTF-8
        bytes([0x36, 5, 0, 1]) + b"a\x00\x01",  # QoS 3 does not exist
    ],
    ids=[
        "puback",
        "pingresp",
        "suback",
        "length-too-long",
        "topic-past-end",
        "empty-topic",
        "mid-0",
        "not-utf8",
        "qos3",
    ],
)
def test_other_packets_and_malformed_ones_are_left_to_paho(data: bytes) -> None:
    assert plain_publish(data, 0, mqtt5=False) is None
    assert plain_publish(data, 0, mqtt5=True) is None


def test_plain_and_other_publishes_arrive_complete_and_in_order_and_paho_reads_only_the_others(
    mosquitto: TestBroker, links: list[MqttLink], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An MQTT 5 writer sends, in bursts, plain QoS 0 and 1 messages and messages with properties (a user
    # property, an expiry) on one topic: the reader gets each one once, in order, and paho's own decoding
    # runs for those with properties and for few of the plain ones (the first of a read, and any a
    # read cut in two).
    decoded: list[bytes] = []
    real = paho.Client._handle_publish

    def counted(self: paho.Client) -> Any:
        decoded.append(bytes(self._in_packet["packet"]))
        return real(self)

    monkeypatch.setattr(paho.Client, "_handle_publish", counted)
    got: list[bytes] = []
    cond = threading.Condition()

    def take(topic: str, payload: bytes) -> None:
        with cond:
            got.append(payload)
            cond.notify_all()

    reader = MqttLink("reader", BrokerAddress.from_url(mosquitto.url), mqtt5=True, keepalive=60)
    links.append(reader)
    reader.subscribe("mixed/one", take, qos=1)
    reader.start()
    assert reader.wait_connected(5)
    writer = paho.Client(CallbackAPIVersion.VERSION2, client_id="writer", protocol=paho.MQTTv5)
    writer.max_queued_messages_set(0)
    writer.connect(mosquitto.host, mosquitto.port)
    writer.loop_start()
    try:
        sent: list[bytes] = []
        marked = 0
        for i in range(3000):
            payload = f"message {i} ".encode() + b"x" * (i % 200)
            props = None
            if i % 97 == 0:
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.UserProperty = ("n", str(i))
                marked += 1
            elif i % 89 == 0:
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.MessageExpiryInterval = 3600
                marked += 1
            writer.publish("mixed/one", payload, qos=i % 2, properties=props)
            sent.append(payload)
            if i % 200 == 199:
                with cond:
                    assert cond.wait_for(lambda: len(got) >= len(sent), 30), f"{len(got)} of {len(sent)}"
        with cond:
            assert cond.wait_for(lambda: len(got) >= len(sent), 30), f"{len(got)} of {len(sent)}"
    finally:
        writer.loop_stop()
        writer.disconnect()
    # MQTT orders a topic's messages of one QoS (QoS 0 ones may pass QoS 1 ones held in flight).
    for qos in (0, 1):
        assert [m for m in got if int(m.split()[1]) % 2 == qos] == [
            m for m in sent if int(m.split()[1]) % 2 == qos
        ]
    assert sorted(got) == sorted(sent)
    assert len(decoded) >= marked
    assert len(decoded) < marked + len(sent) / 4, f"paho decoded {len(decoded)} of {len(sent)}"
