"""Against a real Mosquitto: fleet processes split printer messages through an MQTT 5 shared
subscription, and a fleet that falls behind handles a printer's newest status, not every one."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet import protocol as p
from fleet.app import FleetApp, build
from fleet.app.base import Change, ChangeKind
from fleet.fleetlink import FleetLink
from fleet.mqtt import BrokerAddress, MqttLink
from fleet.store import BlobStore, open_store

from ..brokers import TestBroker, wait_until
from ..fleetlink.conftest import add_printer

FAST = {"keepalive": 5, "min_backoff": 0.05, "max_backoff": 0.2}


def connected(links: list[MqttLink], broker: TestBroker, client_id: str, **kw: object) -> MqttLink:
    link = MqttLink(client_id, BrokerAddress.from_url(broker.url), **{**FAST, **kw})  # type: ignore[arg-type]
    links.append(link)
    return link


def test_two_subscribers_of_one_share_group_split_the_messages(
    mosquitto: TestBroker, links: list[MqttLink]
) -> None:
    got: Counter[str] = Counter()
    by: dict[str, list[str]] = {"one": [], "two": []}
    lock = threading.Lock()
    for name in by:

        def handler(topic: str, payload: bytes, name: str = name) -> None:
            with lock:
                got[payload.decode()] += 1
                by[name].append(payload.decode())

        link = connected(links, mosquitto, f"fleet-{name}", mqtt5=True)
        link.subscribe(p.shared(p.wildcard(p.Channel.EVENTS), "crowdfab"), handler)
        link.start()
        assert link.wait_connected(5)
    sender = connected(links, mosquitto, "sender")
    sender.start()
    assert sender.wait_connected(5)
    time.sleep(0.2)  # both SUBSCRIBEs are sent before their links count as connected; let them land
    sent = [f"m{i}" for i in range(200)]
    for i, text in enumerate(sent):
        sender.publish(p.topic(f"printer-{i % 7}", p.Channel.EVENTS), text.encode())
    wait_until(lambda: sum(got.values()) >= len(sent), 10, "every message at one subscriber")
    time.sleep(0.2)
    assert sorted(got) == sorted(sent) and set(got.values()) == {1}, "each message reached exactly one"
    assert abs(len(by["one"]) - len(by["two"])) <= len(sent) * 0.2, {k: len(v) for k, v in by.items()}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FleetApp]:
    store = open_store(None, tmp_path / "data")
    yield build(store, BlobStore(tmp_path / "files"))
    store.close()


def test_a_fleet_that_falls_behind_handles_each_printers_newest_status_and_every_other_message(
    mosquitto: TestBroker, links: list[MqttLink], service: FleetApp
) -> None:
    add_printer(service, "mk4")
    seen: list[str] = []
    busy, release = threading.Event(), threading.Event()

    def slow_page(change: Change) -> None:
        # The first live update holds the ingest thread, as an overloaded fleet would be held.
        if change.kind is ChangeKind.LIVE and change.printer_id == "mk4":
            live = service.reports.live("mk4")
            seen.append(live.message if live else "")
            busy.set()
            release.wait(10)

    service.hooks.on_change(slow_page)
    mqtt = connected(links, mosquitto, "fleet")
    fleetlink = FleetLink(service, mqtt, base_url="http://fleet", tick_interval_s=None, queued=True)
    fleetlink.start()
    mqtt.start()
    node = connected(links, mosquitto, "node-mk4")
    node.start()
    assert mqtt.wait_connected(5) and node.wait_connected(5)
    time.sleep(0.2)

    def status(n: int) -> None:
        payload = p.encode_status(p.Status(p.NodeState.IDLE, time.time(), message=f"n={n}"))
        node.publish(p.topic("mk4", p.Channel.STATUS), payload, qos=0)

    try:
        status(0)
        assert busy.wait(5), "the first status reached the fleet"
        for n in range(1, 101):
            status(n)
        node.publish(p.topic("mk4", p.Channel.AVAILABILITY), p.OFFLINE.encode())
        for n in range(101, 201):
            status(n)
        metrics = service.metrics
        wait_until(lambda: metrics.counter("status.superseded") >= 198, 10, "the statuses to reach the queue")
    finally:
        release.set()
    wait_until(lambda: metrics.counter("mqtt.messages", kind="status") >= 2, 10, "the queue to drain")
    fleetlink.close()
    # The availability message (the node went away: its live view is cleared), then the newest status.
    # The newest status from before that message is dropped at its turn, as a newer one waits.
    assert seen == ["n=0", "", "n=200"]
    assert (
        metrics.counter("mqtt.messages", kind="status"),
        metrics.counter("mqtt.messages", kind="availability"),
    ) == (2, 1)
    assert metrics.counter("status.superseded") == 199


def test_a_message_not_yet_acknowledged_is_delivered_again_after_the_fleet_is_gone(
    mosquitto: TestBroker, links: list[MqttLink]
) -> None:
    """With manual acknowledgements, an event the fleet had queued but not handled when it stopped
    comes back to its lasting session: the queue loses nothing the broker gave it."""
    received: list[tuple[str, bytes]] = []
    acks: list[object] = []

    def holds(topic: str, payload: bytes, ack: object) -> None:
        received.append((topic, payload))
        acks.append(ack)  # queued, never handled: never acknowledged

    event = p.topic("mk4", p.Channel.EVENTS)
    fleet = connected(links, mosquitto, "fleet-session", clean_session=False, manual_ack=True)
    fleet.subscribe(p.wildcard(p.Channel.EVENTS), holds)
    fleet.start()
    assert fleet.wait_connected(5)
    sender = connected(links, mosquitto, "sender")
    sender.start()
    assert sender.wait_connected(5)
    sender.publish(event, b"job done")
    wait_until(lambda: (event, b"job done") in received, 10, "the event at the fleet")
    fleet.close()

    again: list[tuple[str, bytes]] = []
    back = connected(links, mosquitto, "fleet-session", clean_session=False, manual_ack=True)
    back.subscribe(p.wildcard(p.Channel.EVENTS), lambda t, b, ack: (again.append((t, b)), ack()))
    back.start()
    wait_until(lambda: (event, b"job done") in again, 10, "the unacknowledged event again")
