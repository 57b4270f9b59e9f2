"""Broker ACLs against the fleet's own Mosquitto, with logins that real enrollments issued.

Printer A, using the credentials the fleet gave it, tries everything it must not do: speak as
printer B, read B's commands, send commands, read everything. The fleet's side (a subscriber with
the fleet's own login, and the fleet's state) must never see any of it, while what A may do (its
own status) goes through in the same test, so the test fails if the broker lets nothing through.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from fleet.mqtt import BrokerAddress
from fleet.node import PrinterNode, build_node
from fleet.node.enroll import EnrollmentAnswer
from fleet.protocol import Channel, NodeState, Status, encode_status, node_client_id, topic, wildcard

from ..brokers import wait_until
from ..node.fakes import FakePrinter
from ._broker_setup import BAD_LOGIN, NOT_AUTHORIZED, LiveFleet, Outsider

GRANTED_QOS1 = 1
NODE_CHANNELS = (Channel.STATUS, Channel.AVAILABILITY, Channel.EVENTS, Channel.ACK)


@pytest.fixture
def live_fleet(tmp_path: Path) -> Iterator[LiveFleet]:
    fleet = LiveFleet(tmp_path / "fleet")
    yield fleet
    fleet.close()


def status(message: str, state: NodeState = NodeState.IDLE) -> bytes:
    return encode_status(Status(state=state, ts=1.0, message=message))


def forged(channel: Channel, victim: str) -> bytes:
    """A payload valid for ``channel``, marked so a test can look for it anywhere."""
    mark = f"forged for {victim}"
    if channel is Channel.STATUS:
        return status(mark, NodeState.ERROR)
    if channel is Channel.AVAILABILITY:
        return b"offline"
    body = {"v": 1, "ts": 1.0, "message": mark, "type": "error", "id": "x1", "status": "done", "reason": mark}
    return json.dumps(body).encode()


def test_a_printer_speaks_only_for_itself_and_reads_only_its_own_commands(live_fleet: LiveFleet) -> None:
    a = live_fleet.enroll("Printer A")
    b = live_fleet.enroll("Printer B")
    assert (a.printer_id, b.printer_id) == ("printer-a", "printer-b")
    assert a.mqtt.username == a.printer_id and a.mqtt.port == live_fleet.mqtt_port
    fleet_user, fleet_password = live_fleet.fleet_login()

    # The fleet's side: every node channel of every printer, under the fleet's own login.
    fleet_side = live_fleet.outside.sub([wildcard(c) for c in NODE_CHANNELS], fleet_user, fleet_password)
    assert fleet_side.wait_subscribed() == [GRANTED_QOS1] * len(NODE_CHANNELS)
    # B's node: its own retained status (something A could try to read), and its own commands.
    b_status = status("B's own status")
    live_fleet.outside.pub(
        topic(b.printer_id, Channel.STATUS), b_status, b.mqtt.username, b.mqtt.password, retain=True
    )
    fleet_side.wait_for(lambda t, p: p == b_status)
    b_commands = live_fleet.outside.sub(topic(b.printer_id, Channel.CMD), b.mqtt.username, b.mqtt.password)

    attacker = Outsider(live_fleet.mqtt_port, a.mqtt.username, a.mqtt.password)
    try:
        assert attacker.connect() == 0
        # Reading. Mosquitto grants any SUBSCRIBE and checks the ACL for each message it would deliver,
        # so what counts is what arrives: through these filters, only A's own commands may.
        for forbidden in (
            "#",
            topic(b.printer_id, Channel.CMD),
            wildcard(Channel.CMD),
            wildcard(Channel.STATUS),
        ):
            attacker.subscribe(forbidden)

        # Speaking as B on each of B's node channels (retained too), and as the fleet on both cmd
        # topics: the broker refuses each PUBLISH (MQTT 5 tells the publisher: reason 135).
        for channel in NODE_CHANNELS:
            victim_topic = topic(b.printer_id, channel)
            assert attacker.publish(victim_topic, forged(channel, "B"), retain=True) == NOT_AUTHORIZED
        for victim in (a.printer_id, b.printer_id):
            cmd = json.dumps({"v": 1, "id": "evil", "type": "cancel", "issued_at": 1, "expires_at": 9e9})
            assert attacker.publish(topic(victim, Channel.CMD), cmd.encode()) == NOT_AUTHORIZED
        assert attacker.publish("crowdfab/v1/fleet", b"forged") == NOT_AUTHORIZED

        # Positive controls on the same connection, after the refused ones: what A may do arrives.
        assert attacker.publish(topic(a.printer_id, Channel.STATUS), status("barrier from A")) == 0
        fleet_side.wait_for(lambda t, p: b"barrier from A" in p, timeout=10)
        wait_until(
            lambda: live_fleet.service.reports.live(a.printer_id) is not None,
            10,
            "the fleet to take A's status",
        )
        fleet_cmd = b'{"v":1,"id":"c1","type":"bed_cleared","issued_at":1,"expires_at":9e9}'
        live_fleet.outside.pub(topic(b.printer_id, Channel.CMD), fleet_cmd, fleet_user, fleet_password)
        live_fleet.outside.pub(topic(a.printer_id, Channel.CMD), fleet_cmd, fleet_user, fleet_password)
        b_commands.wait_for(lambda t, p: p == fleet_cmd)
        attacker.wait_message(lambda t, p: t == topic(a.printer_id, Channel.CMD))

        # Nothing forged reached the fleet's side, B's node, or the fleet's state of B; and A, with
        # "#" among its filters, read its own commands and nothing else (no status of B, retained
        # or not, no command for B).
        assert [p for _, p in fleet_side.messages] == [b_status, status("barrier from A")]
        assert [p for _, p in b_commands.messages] == [fleet_cmd]
        assert set(attacker.received()) == {(topic(a.printer_id, Channel.CMD), fleet_cmd)}
        live_b = live_fleet.service.reports.live(b.printer_id)
        assert live_b is not None and live_b.node_state == "idle" and live_b.message == "B's own status"
        # Nor did the broker keep a forged retained message for a later subscriber.
        later = live_fleet.outside.sub(
            [topic(b.printer_id, c) for c in NODE_CHANNELS] + [topic(a.printer_id, Channel.STATUS)],
            fleet_user,
            fleet_password,
        )
        assert attacker.publish(topic(a.printer_id, Channel.STATUS), status("barrier 2"), retain=True) == 0
        later.wait_for(lambda t, p: b"barrier 2" in p)
        assert sorted(later.messages) == sorted(
            [
                (topic(b.printer_id, Channel.STATUS), b_status),
                (topic(a.printer_id, Channel.STATUS), status("barrier 2")),
            ]
        )
    finally:
        attacker.close()


def test_no_login_no_connection(live_fleet: LiveFleet) -> None:
    a = live_fleet.enroll("Printer A")
    b = live_fleet.enroll("Printer B")
    anonymous = Outsider(live_fleet.mqtt_port, None, None)
    as_b_with_a_password = Outsider(live_fleet.mqtt_port, b.mqtt.username, a.mqtt.password)
    as_fleet_with_a_password = Outsider(live_fleet.mqtt_port, live_fleet.fleet_login()[0], a.mqtt.password)
    own = Outsider(live_fleet.mqtt_port, a.mqtt.username, a.mqtt.password)
    try:
        assert anonymous.connect() in (NOT_AUTHORIZED, BAD_LOGIN)
        assert as_b_with_a_password.connect() in (NOT_AUTHORIZED, BAD_LOGIN)
        assert as_fleet_with_a_password.connect() in (NOT_AUTHORIZED, BAD_LOGIN)
        assert own.connect() == 0  # the same broker lets the right login in
        # The real command-line client agrees: anonymous is refused outright.
        refused = live_fleet.outside.pub("crowdfab/probe", b"x")
        assert refused.returncode != 0 and b"not authorised" in refused.stderr
    finally:
        for client in (anonymous, as_b_with_a_password, as_fleet_with_a_password, own):
            client.close()


def test_a_printer_cannot_knock_another_off_by_taking_its_client_id(
    live_fleet: LiveFleet, tmp_path: Path
) -> None:
    """A broker closes the older of two connections with one client id, whoever opens the newer.
    Printer A tries every id for B's node it could work out; B's real node stays connected."""
    a = live_fleet.enroll("Printer A")
    b = live_fleet.enroll("Printer B")
    links: list[tuple[str, bool]] = []
    nodes = [run_node(b, tmp_path / f"node-{n}", lambda up, n=n: links.append((n, up))) for n in ("b1", "b2")]
    guesses = [
        f"crowdfab-node-{b.printer_id}",  # the naming scheme with what A knows: B's printer id
        node_client_id(b.printer_id, None),
        node_client_id(b.printer_id, a.mqtt.password),
        b.printer_id,
        "crowdfab-node",
    ]
    attackers = [
        Outsider(live_fleet.mqtt_port, a.mqtt.username, a.mqtt.password, client_id=g) for g in guesses
    ]
    try:
        nodes[0].start()
        wait_until(lambda: ("b1", True) in links, 10, "B's node to connect")
        for attacker in attackers:
            assert attacker.connect() == 0  # A may connect under any id of its own
        # B's node is still connected, and still the one the fleet's commands reach.
        fleet_user, fleet_password = live_fleet.fleet_login()
        acks = live_fleet.outside.sub(topic(b.printer_id, Channel.ACK), fleet_user, fleet_password)
        cmd = b'{"v":1,"id":"c9","type":"bed_cleared","issued_at":1,"expires_at":1}'
        live_fleet.outside.pub(topic(b.printer_id, Channel.CMD), cmd, fleet_user, fleet_password)
        acks.wait_for(lambda t, p: b'"c9"' in p)  # B's node answered (an expired command: declined)
        assert links == [("b1", True)]
        # Positive control: B's node started again elsewhere with the same credentials replaces the
        # old connection (a node back from a crash is not locked out by its stale one), and this
        # test sees such a takeover.
        nodes[1].start()
        wait_until(lambda: ("b1", False) in links, 10, "the second node of B to take over")
    finally:
        for attacker in attackers:
            attacker.close()
        for node in nodes:
            node.close()


def run_node(
    enrollment: EnrollmentAnswer, folder: Path, on_link_change: Callable[[bool], None]
) -> PrinterNode:
    """A printer's node as the agent and the plugin build it, on a stand-in printer."""
    folder.mkdir(parents=True)
    address = BrokerAddress(
        "127.0.0.1", enrollment.mqtt.port, enrollment.mqtt.username, enrollment.mqtt.password
    )
    return build_node(
        enrollment.printer_id,
        address,
        FakePrinter(folder),
        folder / "journal.json",
        enrollment.token,
        min_backoff=0.2,
        max_backoff=1.0,
        on_link_change=on_link_change,
    )


def test_a_printer_cannot_speak_for_another_through_its_last_will(live_fleet: LiveFleet) -> None:
    """The broker publishes a client's last will when it vanishes: a will on B's topic would be B's voice."""
    a = live_fleet.enroll("Printer A")
    b = live_fleet.enroll("Printer B")
    fleet_user, fleet_password = live_fleet.fleet_login()
    watch = live_fleet.outside.sub(
        [topic(b.printer_id, Channel.AVAILABILITY), topic(a.printer_id, Channel.AVAILABILITY)],
        fleet_user,
        fleet_password,
    )
    forger = Outsider(
        live_fleet.mqtt_port,
        a.mqtt.username,
        a.mqtt.password,
        will=(topic(b.printer_id, Channel.AVAILABILITY), b"offline"),
    )
    control = Outsider(
        live_fleet.mqtt_port,
        a.mqtt.username,
        a.mqtt.password,
        will=(topic(a.printer_id, Channel.AVAILABILITY), b"offline"),
    )
    try:
        # Mosquitto may refuse the CONNECT outright; if it lets it in, it must drop the will.
        if forger.connect() == 0:
            forger.drop()  # vanish without DISCONNECT: the broker sends the will, if any
        assert control.connect() == 0
        control.drop()
        watch.wait_for(lambda t, p: t == topic(a.printer_id, Channel.AVAILABILITY), timeout=10)
        assert [t for t, _ in watch.messages] == [topic(a.printer_id, Channel.AVAILABILITY)]
    finally:
        forger.close()
        control.close()
