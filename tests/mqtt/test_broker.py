"""The managed Mosquitto: password hashes, ACLs enforced by a real broker, reload and supervision."""

from __future__ import annotations

import base64
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet import broker as broker_module
from fleet.broker import BrokerUser, ManagedBroker, acl_text, find_mosquitto, hash_password
from fleet.errors import Invalid, Unavailable
from fleet.mqtt import BrokerAddress, MqttLink
from fleet.protocol import Channel, topic, wildcard

from ..brokers import MOSQUITTO_PASSWD, OutsideClients, Subscription, free_port, wait_until

FLEET = "crowdfab_fleet"
PASSWORDS = {FLEET: "fleet-pw", "p1": "p1-pw", "p2": "p2-pw", "p3": "p3-pw"}
REFUSED = "not authorised"


class Fleet:
    """A managed broker, the users it lets in, and outside clients for it."""

    def __init__(self, data_dir: Path, printers: list[str]) -> None:
        self.printers = list(printers)
        self.hashes = {name: hash_password(pw) for name, pw in PASSWORDS.items()}
        self.broker = ManagedBroker(
            data_dir,
            port=free_port(),
            fleet_user=BrokerUser(FLEET, self.hashes[FLEET]),
            users=lambda: [BrokerUser(name, self.hashes[name]) for name in self.printers],
            restart_backoff=0.05,
            max_restart_backoff=0.2,
        )
        self.clients = OutsideClients("127.0.0.1", self.broker.port)

    def sub(self, topics: str | list[str], user: str) -> Subscription:
        return self.clients.sub(topics, user, PASSWORDS[user])

    def pub(self, name: str, payload: bytes, user: str, *, retain: bool = False) -> None:
        result = self.clients.pub(name, payload, user, PASSWORDS[user], retain=retain)
        assert result.returncode == 0, result.stderr

    def can_connect(self, user: str, password: str | None = None) -> bool:
        result = self.clients.pub("crowdfab/probe", b"", user, password or PASSWORDS[user])
        assert result.returncode == 0 or REFUSED in result.stderr.decode(), result.stderr
        return result.returncode == 0

    def close(self) -> None:
        self.clients.close()
        self.broker.stop()


@pytest.fixture
def fleet_broker(tmp_path: Path) -> Iterator[Fleet]:
    made = Fleet(tmp_path / "data", ["p1", "p2"])
    made.broker.start()
    yield made
    made.close()


# -- hashes and files -------------------------------------------------------------------------------


def test_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", str(passwd), "alice", "sé cret:1"], check=True)
    theirs = passwd.read_text().strip().split(":", 1)[1]
    _, kind, iterations, salt_b64, _ = theirs.split("$")
    ours = hash_password("sé cret:1", iterations=int(iterations), salt=base64.b64decode(salt_b64))
    assert kind == "7" and ours == theirs
    assert hash_password("x") != hash_password("x")  # a fresh salt each time


def test_acl_rules() -> None:
    rules = [line for line in acl_text(FLEET).splitlines() if line and not line.startswith("#")]
    printer = "crowdfab/v1/printers/%u"
    assert rules == [
        f"user {FLEET}",
        "topic read crowdfab/v1/printers/+/ack",
        "topic read crowdfab/v1/printers/+/availability",
        "topic read crowdfab/v1/printers/+/events",
        "topic read crowdfab/v1/printers/+/status",
        "topic write crowdfab/v1/printers/+/availability",
        "topic write crowdfab/v1/printers/+/status",
        "topic write crowdfab/v1/printers/+/cmd",
        f"pattern write {printer}/ack",
        f"pattern write {printer}/availability",
        f"pattern write {printer}/events",
        f"pattern write {printer}/status",
        f"pattern read {printer}/cmd",
    ]
    with pytest.raises(Invalid):
        acl_text("bad user\ntopic readwrite #")


def test_files_are_private_and_hold_no_clear_password(fleet_broker: Fleet) -> None:
    folder = fleet_broker.broker.dir
    for name in ("mosquitto.conf", "passwd", "acl"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    passwd = (folder / "passwd").read_text()
    assert all(pw not in passwd for pw in PASSWORDS.values())
    assert passwd.splitlines()[0] == f"{FLEET}:{fleet_broker.hashes[FLEET]}"
    conf = (folder / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "per_listener_settings false" in conf


# -- access -----------------------------------------------------------------------------------------


def test_anonymous_and_wrong_passwords_are_refused(fleet_broker: Fleet) -> None:
    anonymous = fleet_broker.clients.pub("crowdfab/probe", b"")
    assert anonymous.returncode != 0 and REFUSED in anonymous.stderr.decode()
    assert not fleet_broker.can_connect("p1", "wrong")
    assert not fleet_broker.can_connect("p3")  # not enrolled
    assert fleet_broker.can_connect("p1")  # a password hashed by us, accepted by mosquitto


def test_fleet_reads_statuses_and_sends_commands(fleet_broker: Fleet) -> None:
    statuses = fleet_broker.sub(wildcard(Channel.STATUS), FLEET)
    fleet_broker.pub(topic("p1", Channel.STATUS), b"s1", "p1", retain=True)
    fleet_broker.pub(topic("p2", Channel.STATUS), b"s2", "p2", retain=True)
    statuses.wait_for(lambda t, p: p == b"s1")
    statuses.wait_for(lambda t, p: p == b"s2")

    commands = fleet_broker.sub(topic("p1", Channel.CMD), "p1")
    address = BrokerAddress("127.0.0.1", fleet_broker.broker.port, FLEET, PASSWORDS[FLEET])
    link = MqttLink("fleet", address, min_backoff=0.05, max_backoff=0.2)
    link.start()
    try:
        assert link.wait_connected(5)
        link.publish(topic("p1", Channel.CMD), b"dispatch")
        assert commands.wait_for() == (topic("p1", Channel.CMD), b"dispatch")
    finally:
        link.close()


def test_printer_cannot_publish_as_another(fleet_broker: Fleet) -> None:
    statuses = fleet_broker.sub(wildcard(Channel.STATUS), FLEET)
    fleet_broker.pub(topic("p2", Channel.STATUS), b"forged by p1", "p1", retain=True)
    fleet_broker.pub(topic("p1", Channel.STATUS), b"barrier", "p1")
    statuses.wait_for(lambda t, p: p == b"barrier")
    assert statuses.messages == [(topic("p1", Channel.STATUS), b"barrier")]
    # Nor was the forged message retained for a later subscriber.
    later = fleet_broker.sub([topic("p2", Channel.STATUS), "crowdfab/#"], FLEET)
    fleet_broker.pub(topic("p1", Channel.STATUS), b"barrier 2", "p1")
    later.wait_for(lambda t, p: p == b"barrier 2")
    assert all(p != b"forged by p1" for _, p in later.messages)


def test_printer_reads_only_its_own_commands(fleet_broker: Fleet) -> None:
    snoop = fleet_broker.sub([topic("p2", Channel.CMD), topic("p1", Channel.CMD)], "p1")
    fleet_broker.pub(topic("p2", Channel.CMD), b"for p2", FLEET)
    fleet_broker.pub(topic("p1", Channel.CMD), b"for p1", FLEET)
    snoop.wait_for(lambda t, p: p == b"for p1")
    assert snoop.messages == [(topic("p1", Channel.CMD), b"for p1")]


def test_printer_cannot_publish_commands(fleet_broker: Fleet) -> None:
    p1_cmds = fleet_broker.sub(topic("p1", Channel.CMD), "p1")
    p2_cmds = fleet_broker.sub(topic("p2", Channel.CMD), "p2")
    fleet_broker.pub(topic("p1", Channel.CMD), b"forged", "p1")
    fleet_broker.pub(topic("p2", Channel.CMD), b"forged", "p1")
    fleet_broker.pub(topic("p1", Channel.CMD), b"barrier", FLEET)
    fleet_broker.pub(topic("p2", Channel.CMD), b"barrier", FLEET)
    for sub in (p1_cmds, p2_cmds):
        sub.wait_for(lambda t, p: p == b"barrier")
        assert [p for _, p in sub.messages] == [b"barrier"]


# -- reload, persistence, supervision ---------------------------------------------------------------


def test_reload_lets_new_printers_in_and_shuts_removed_ones_out(fleet_broker: Fleet) -> None:
    assert not fleet_broker.can_connect("p3")
    fleet_broker.printers.append("p3")
    fleet_broker.broker.reload()
    # SIGHUP is handled asynchronously: wait for its effect.
    wait_until(lambda: fleet_broker.can_connect("p3"), 5, "p3 to be let in")

    held = fleet_broker.sub(topic("p1", Channel.CMD), "p1")
    fleet_broker.printers.remove("p1")
    fleet_broker.broker.reload()
    wait_until(lambda: not fleet_broker.can_connect("p1"), 5, "p1 to be shut out")
    # Mosquitto also drops the connection p1 already had (and mosquitto_sub's reconnect is refused).
    wait_until(lambda: not held.alive, 5, "p1's open connection to be dropped")
    assert fleet_broker.can_connect("p2")


def test_retained_messages_survive_a_restart(fleet_broker: Fleet) -> None:
    fleet_broker.pub(topic("p1", Channel.STATUS), b"kept", "p1", retain=True)
    fleet_broker.broker.stop()
    assert not fleet_broker.broker.running
    fleet_broker.broker.start()
    statuses = fleet_broker.sub(wildcard(Channel.STATUS), FLEET)
    assert statuses.wait_for() == (topic("p1", Channel.STATUS), b"kept")


def test_supervision_restarts_a_killed_broker(fleet_broker: Fleet) -> None:
    connects = threading.Semaphore(0)
    address = BrokerAddress("127.0.0.1", fleet_broker.broker.port, FLEET, PASSWORDS[FLEET])
    link = MqttLink("fleet", address, min_backoff=0.05, max_backoff=0.2, on_connect=connects.release)
    link.start()
    try:
        assert connects.acquire(timeout=5)
        first = fleet_broker.broker.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: fleet_broker.broker.pid not in (None, first), 5, "a new mosquitto")
        assert connects.acquire(timeout=5), "the link did not reconnect"
        assert fleet_broker.can_connect("p1")
    finally:
        link.close()
    fleet_broker.broker.stop()
    assert not fleet_broker.broker.running


def test_a_broken_configuration_fails_start_with_the_log(tmp_path: Path) -> None:
    broken = ManagedBroker(
        tmp_path / "data",
        port=free_port(),
        fleet_user=BrokerUser(FLEET, hash_password(PASSWORDS[FLEET])),
        users=list,
        tls_cert=tmp_path / "missing.crt",
        tls_key=tmp_path / "missing.key",
        start_timeout=5,
    )
    with pytest.raises(Unavailable) as caught:
        broken.start()
    assert "exited at start" in caught.value.message
    assert "missing.crt" in caught.value.message  # from the broker's own log
    broken.stop()
    assert not broken.running


def test_a_broker_that_listens_then_exits_is_not_taken_for_started(tmp_path: Path) -> None:
    # As mosquitto does with a listener whose certificate will not load: the port opens, then it exits.
    port = free_port()
    stand_in = tmp_path / "mosquitto"
    stand_in.write_text(
        f"#!{sys.executable}\n"
        "import socket, sys, time\n"
        f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen()\n"
        "time.sleep(0.2)\n"
        "print('Error: Unable to load server certificate \"missing.crt\".', file=sys.stderr)\n"
        "sys.exit(1)\n"
    )
    stand_in.chmod(0o755)
    broker = ManagedBroker(
        tmp_path / "data",
        port=port,
        fleet_user=BrokerUser(FLEET, hash_password(PASSWORDS[FLEET])),
        users=list,
        mosquitto=str(stand_in),
        start_timeout=5,
    )
    with pytest.raises(Unavailable) as caught:
        broker.start()
    assert "exited at start with status 1" in caught.value.message
    assert "Unable to load server certificate" in caught.value.message
    broker.stop()


def test_port_in_use_is_refused(fleet_broker: Fleet, tmp_path: Path) -> None:
    other = ManagedBroker(
        tmp_path / "other",
        port=fleet_broker.broker.port,
        fleet_user=BrokerUser(FLEET, fleet_broker.hashes[FLEET]),
        users=list,
    )
    with pytest.raises(Unavailable, match="already in use"):
        other.start()
    other.stop()


def test_find_mosquitto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert os.access(find_mosquitto(), os.X_OK)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(broker_module, "MOSQUITTO_PLACES", (str(tmp_path / "nowhere"),))
    for explicit in (None, str(tmp_path / "mosquitto")):
        with pytest.raises(Unavailable) as caught:
            find_mosquitto(explicit)
        assert "sudo apt-get install mosquitto" in caught.value.message
        assert "--mqtt-url mqtt://user:pass@host:1883" in caught.value.message
