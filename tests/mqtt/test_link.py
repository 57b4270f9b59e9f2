"""MqttLink against a real Mosquitto: delivery, resilience, reconnects and the last will."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from fleet.errors import Invalid
from fleet.mqtt import READ_CHUNK, BrokerAddress, MqttLink

from ..brokers import TestBroker, free_port, wait_until
from ..conftest import REPO

FAST: dict[str, Any] = {"keepalive": 5, "min_backoff": 0.05, "max_backoff": 0.2}


class Inbox:
    """Collects what a handler receives; lets a test wait for it."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()

    def __call__(self, topic: str, payload: bytes) -> None:
        with self._cond:
            self.items.append((topic, payload))
            self._cond.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> list[tuple[str, bytes]]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.items) >= count, timeout):
                raise AssertionError(f"wanted {count} messages within {timeout} s, got {self.items}")
            return list(self.items)


def make_link(links: list[MqttLink], broker: TestBroker, client_id: str, **kw: Any) -> MqttLink:
    options = {**FAST, **kw}
    link = MqttLink(client_id, BrokerAddress.from_url(broker.url), **options)
    links.append(link)
    return link


# -- BrokerAddress ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://localhost", BrokerAddress("localhost")),
        ("mqtt://fleet:s3cret@broker.example:1884", BrokerAddress("broker.example", 1884, "fleet", "s3cret")),
        ("mqtts://broker.example", BrokerAddress("broker.example", 8883, tls=True)),
        ("mqtt://a%40b:p%3Aw%2Fd%40@h", BrokerAddress("h", 1883, "a@b", "p:w/d@")),
        ("mqtts://h:9000?ca_file=/etc/ca.pem", BrokerAddress("h", 9000, tls=True, ca_file="/etc/ca.pem")),
        ("mqtt://[::1]:1999/", BrokerAddress("::1", 1999)),
    ],
)
def test_address_from_url(url: str, expected: BrokerAddress) -> None:
    assert BrokerAddress.from_url(url) == expected


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://h", "scheme"),
        ("h:1883", "scheme"),
        ("mqtt://", "no host"),
        ("mqtt://h:notaport", "port"),
        ("mqtt://h:99999", "port"),
        ("mqtt://h/topic", "path"),
        ("mqtt://h?tls=1", "unknown option"),
        ("mqtt://h?ca_file=/x", "mqtts"),
        ("mqtt://:pw@h", "password without a username"),
    ],
)
def test_address_from_bad_url(url: str, complaint: str) -> None:
    with pytest.raises(Invalid) as caught:
        BrokerAddress.from_url(url)
    assert complaint in caught.value.message
    assert caught.value.field == "mqtt_url"


def test_address_never_shows_the_password() -> None:
    address = BrokerAddress.from_url("mqtt://fleet:hunter2@h:1884")
    assert address.redacted() == "mqtt://fleet:***@h:1884"
    assert "hunter2" not in repr(address)
    assert BrokerAddress("h").redacted() == "mqtt://h:1883"


# -- MqttLink ---------------------------------------------------------------------------------------


def test_round_trip_with_wildcards(mosquitto: TestBroker, links: list[MqttLink]) -> None:
    # Published from outside before the link subscribes: retained, so delivery does not race the SUBSCRIBE.
    assert mosquitto.pub("farm/p1/status", b'{"state":"idle"}', retain=True).returncode == 0
    everything, commands = Inbox(), Inbox()
    link = make_link(links, mosquitto, "fleet")
    link.subscribe("farm/#", everything)
    link.subscribe("farm/+/cmd", commands)
    link.start()
    assert link.wait_connected(5)
    assert everything.wait(1) == [("farm/p1/status", b'{"state":"idle"}')]

    watcher = mosquitto.sub("farm/#")
    link.publish("farm/p2/cmd", b"\x00\xffbinary")
    assert watcher.wait_for(lambda t, p: t == "farm/p2/cmd")[1] == b"\x00\xffbinary"
    assert everything.wait(2)[1] == ("farm/p2/cmd", b"\x00\xffbinary")
    # Only the filter that matches gets a message: the status never reached the cmd handler.
    assert commands.wait(1) == [("farm/p2/cmd", b"\x00\xffbinary")]


def test_malformed_filter_is_refused(mosquitto: TestBroker, links: list[MqttLink]) -> None:
    link = make_link(links, mosquitto, "fleet")
    for bad in ("a/#/b", "a/b+", "", "a/#x"):
        with pytest.raises(Invalid):
            link.subscribe(bad, Inbox())


def test_handler_exception_does_not_stop_deliveries(
    mosquitto: TestBroker, links: list[MqttLink], caplog: pytest.LogCaptureFixture
) -> None:
    seen = Inbox()

    def fragile(topic: str, payload: bytes) -> None:
        seen(topic, payload)
        if payload == b"boom":
            raise RuntimeError("handler bug")

    link = make_link(links, mosquitto, "fleet")
    link.subscribe("t/#", fragile)
    link.start()
    assert link.wait_connected(5)
    with caplog.at_level(logging.ERROR, logger="fleet.mqtt"):
        link.publish("t/a", b"boom")
        link.publish("t/b", b"fine")
        assert seen.wait(2) == [("t/a", b"boom"), ("t/b", b"fine")]
    failures = [r for r in caplog.records if r.exc_info]
    assert len(failures) == 1 and "t/a" in failures[0].getMessage()
    assert link.connected


def test_resubscribes_after_the_broker_restarts(mosquitto: TestBroker, links: list[MqttLink]) -> None:
    inbox = Inbox()
    downs = threading.Event()
    link = make_link(links, mosquitto, "fleet", on_disconnect=downs.set)
    link.subscribe("t/#", inbox)
    link.start()
    assert link.wait_connected(5)

    mosquitto.stop()
    assert downs.wait(5)
    assert not link.connected
    mosquitto.start()
    assert link.wait_connected(5)
    # The broker forgot the clean session's subscription; only a fresh SUBSCRIBE brings this back.
    link.publish("t/after", b"1")
    assert inbox.wait(1) == [("t/after", b"1")]
    # And an outside publisher's message too (retained, so it cannot race the SUBSCRIBE).
    assert mosquitto.pub("t/outside", b"2", retain=True).returncode == 0
    assert inbox.wait(2)[1] == ("t/outside", b"2")


def test_start_returns_at_once_and_connects_when_the_broker_appears(
    tmp_path: Path, links: list[MqttLink]
) -> None:
    broker = TestBroker(tmp_path / "late")  # configured, not running yet
    try:
        connects = threading.Event()
        link = make_link(links, broker, "node", on_connect=connects.set)
        began = time.monotonic()
        link.start()
        assert time.monotonic() - began < 0.5
        assert not link.connected
        link.publish("t/queued", b"sent while offline")  # QoS 1: queued, sent after connecting

        broker.start()
        assert link.wait_connected(5)
        assert connects.is_set()
        sub = broker.sub("t/#")
        link.publish("t/live", b"x")
        assert sub.wait_for(lambda t, p: t == "t/live")
        # The message queued while offline went out after the connect (the log shows it arrive).
        wait_until(lambda: "'t/queued'" in broker.log_path.read_text(), 5, "the queued message")
    finally:
        broker.close()


def test_connection_failures_are_logged_once(links: list[MqttLink], caplog: pytest.LogCaptureFixture) -> None:
    # A port that accepts and hangs up at once: each retry is a real, countable connection attempt.
    attempts = 0
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def serve() -> None:
        nonlocal attempts
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            attempts += 1
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        with caplog.at_level(logging.INFO, logger="fleet.mqtt"):
            link = MqttLink("node", BrokerAddress("127.0.0.1", port, "fleet", "pw-secret"), **FAST)
            links.append(link)
            link.start()
            wait_until(lambda: attempts >= 4, 5, "four connection attempts")
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, warnings
        assert f"127.0.0.1:{port}" in warnings[0]
        assert all("pw-secret" not in r.getMessage() for r in caplog.records)
    finally:
        server.close()


LINK_SCRIPT = """
import sys
from fleet.mqtt import READ_CHUNK, BrokerAddress, MqttLink
url, topic = sys.argv[1], sys.argv[2]
link = MqttLink("node-p1", BrokerAddress.from_url(url), will=(topic, b"offline", True), keepalive=2,
                on_connect=lambda: link.publish(topic, b"online", retain=True))
link.start()
assert link.wait_connected(5)
print("ready", flush=True)
sys.stdin.read()
"""


def test_will_is_published_when_the_link_dies(mosquitto: TestBroker) -> None:
    topic = "crowdfab/v1/printers/p1/availability"
    watcher = mosquitto.sub(topic)
    node = subprocess.Popen(
        [sys.executable, "-c", LINK_SCRIPT, mosquitto.url, topic],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert node.stdout is not None and node.stdout.readline().strip() == "ready"
        watcher.wait_for(lambda t, p: p == b"online")
        node.send_signal(signal.SIGKILL)
        node.wait(5)
        # Within 1.5 times the keepalive (2 s) at worst; usually at once, as the kernel closes the socket.
        watcher.wait_for(lambda t, p: p == b"offline", timeout=4)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    # Retained: a newcomer learns the node is offline.
    assert mosquitto.sub(topic).wait_for(timeout=2) == (topic, b"offline")


def test_clean_close_does_not_send_the_will(mosquitto: TestBroker) -> None:
    topic = "crowdfab/v1/printers/p1/availability"
    watcher = mosquitto.sub([topic, "barrier"])
    link = MqttLink("node-p1", BrokerAddress.from_url(mosquitto.url), will=(topic, b"offline", True), **FAST)
    link.start()
    assert link.wait_connected(5)
    link.close()
    link.close()  # idempotent
    assert not link.connected
    assert mosquitto.pub("barrier", b"b").returncode == 0
    watcher.wait_for(lambda t, p: t == "barrier")
    assert all(t != topic for t, _ in watcher.messages)


def test_close_without_a_broker_is_quick(links: list[MqttLink]) -> None:
    link = MqttLink("node", BrokerAddress("127.0.0.1", free_port()), **FAST)
    link.start()
    began = time.monotonic()
    link.close(timeout=1)
    assert time.monotonic() - began < 2.5


def test_offline_queue_is_bounded(
    tmp_path: Path, links: list[MqttLink], caplog: pytest.LogCaptureFixture
) -> None:
    broker = TestBroker(tmp_path / "late")
    try:
        link = make_link(links, broker, "node", max_queued=2)
        link.start()
        with caplog.at_level(logging.WARNING, logger="fleet.mqtt"):
            for n in range(5):
                link.publish(f"q/{n}", b"x", retain=True)
        assert [r.getMessage() for r in caplog.records if "queue full" in r.getMessage()] == [
            "MQTT node: offline queue full; dropping messages until reconnected"
        ]
        broker.start()
        assert link.wait_connected(5)
        sub = broker.sub("q/#")
        for name in ("q/0", "q/1"):  # retained or live, whichever the timing gives
            sub.wait_for(lambda t, p, name=name: t == name)
        assert broker.pub("q/live", b"barrier").returncode == 0  # delivered after the retained batch
        sub.wait_for(lambda t, p: t == "q/live")
        assert sorted(t for t, _ in sub.messages) == ["q/0", "q/1", "q/live"]
    finally:
        broker.close()


@pytest.mark.parametrize("mqtt5", [False, True], ids=["mqtt311", "mqtt5"])
def test_a_burst_is_read_a_chunk_at_a_time_every_message_in_order(
    mosquitto: TestBroker, links: list[MqttLink], monkeypatch: pytest.MonkeyPatch, mqtt5: bool
) -> None:
    # Thousands of small messages in bursts, one larger than a chunk, and after each burst nothing:
    # every one arrives, in order, the last of a burst too (no later traffic wakes the reader: the
    # keepalive is a minute away), and the socket is read far fewer times than there are messages.
    reads: dict[int, int] = {}
    real_recv = paho.Client._sock_recv

    def counted(self: paho.Client, bufsize: int) -> bytes:
        reads[id(self)] = reads.get(id(self), 0) + 1
        return real_recv(self, bufsize)

    monkeypatch.setattr(paho.Client, "_sock_recv", counted)
    inbox = Inbox()
    reader = make_link(links, mosquitto, "reader", keepalive=60, mqtt5=mqtt5)
    reader.subscribe("burst/#", inbox)
    reader.start()
    writer = make_link(links, mosquitto, "writer", keepalive=60, max_queued=10_000)
    writer.start()
    assert reader.wait_connected(5) and writer.wait_connected(5)
    big = bytes(range(256)) * (3 * READ_CHUNK // 256 + 7)
    sent = [(f"burst/{i % 50}", b"x" * (i % 300) if i != 1500 else big) for i in range(3000)]
    # In bursts of 200: the broker holds at most 1,000 messages for a client that reads more slowly
    # than the writer writes (max_queued_messages), and drops the rest.
    for start in range(0, len(sent), 200):
        for topic, payload in sent[start : start + 200]:
            writer.publish(topic, payload)
        inbox.wait(start + 200, timeout=30)
    assert inbox.items == sent
    assert reads[id(reader._client)] < len(sent) / 4, reads
    assert not reader.behind, "everything read: the last read took less than a whole chunk"


@pytest.mark.parametrize("mqtt5", [False, True], ids=["mqtt311", "mqtt5"])
def test_a_receive_buffer_is_fixed_on_every_connection_and_left_to_the_kernel_otherwise(
    mosquitto: TestBroker, links: list[MqttLink], mqtt5: bool
) -> None:
    # Linux reports twice the size asked for (its bookkeeping) and, once it is set, stops growing it.
    def receive_buffer(link: MqttLink) -> int:
        sock = link._client.socket()
        assert sock is not None
        return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    downs = threading.Event()
    bounded = make_link(
        links, mosquitto, "bounded", receive_buffer=96 * 1024, mqtt5=mqtt5, on_disconnect=downs.set
    )
    free = make_link(links, mosquitto, "free", mqtt5=mqtt5)
    bounded.start()
    free.start()
    assert bounded.wait_connected(5) and free.wait_connected(5)
    assert receive_buffer(bounded) == 2 * 96 * 1024
    assert receive_buffer(free) != 2 * 96 * 1024

    mosquitto.stop()
    assert downs.wait(5)
    mosquitto.start()
    assert bounded.wait_connected(5)
    assert receive_buffer(bounded) == 2 * 96 * 1024
