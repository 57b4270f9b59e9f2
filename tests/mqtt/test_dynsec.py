"""A Mosquitto shared by fleet processes: printer logins kept through its dynamic security plugin.

The broker is a real Mosquitto 2 with the plugin, started here on a free port from the file
``fleet.dynsec.initial_config`` writes (what ``crowdfab-fleet broker init`` writes). The fleet runs
as ``serve --mqtt-dynsec`` runs it (:class:`fleet.server.FleetRuntime`), and printers are bare MQTT
clients under the logins enrollment gave them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fleet.broker import hash_password
from fleet.cli import main as fleet_cli
from fleet.config import FleetConfig
from fleet.dynsec import DynsecAccounts, initial_config
from fleet.errors import Invalid, Unavailable
from fleet.http_protocol import BrokerAddress, EnrollRequest
from fleet.models import Role
from fleet.mqtt import MqttLink
from fleet.node.enroll import enroll
from fleet.protocol import Channel, topic
from fleet.server import Fleet, FleetRuntime, LinkOptions
from fleet.states import PrinterState

from ..brokers import TestBroker, free_port, wait_until
from ..security._broker_setup import BAD_LOGIN, CAPABILITIES, NOT_AUTHORIZED, Outsider, login

FLEET_USER = "crowdfab_fleet"
FLEET_PASSWORD = "fleet password for the shared broker"
#: The issue's promise: a revoked printer is cut off by the shared broker within a second.
CUT_OFF_S = 1.0


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestBroker]:
    config = initial_config(FLEET_USER, hash_password(FLEET_PASSWORD), [])
    broker = TestBroker(tmp_path_factory.mktemp("dynsec"), dynsec=config)
    broker.start()
    yield broker
    broker.close()


@pytest.fixture
def runtime(shared_broker: TestBroker, tmp_path: Path) -> Iterator[FleetRuntime]:
    options = LinkOptions(
        mqtt_url=shared_broker.url_for(FLEET_USER, FLEET_PASSWORD),
        mqtt_dynsec=True,
        mqtt_public_host="127.0.0.1",
        dispatch_interval_s=60.0,
    )
    served = FleetRuntime(FleetConfig(data_dir=tmp_path / "data", port=0, threads=4), options)
    served.start()
    yield served
    served.close()


def test_enrolled_printers_get_their_own_login_and_a_revoked_one_is_cut_off(
    runtime: FleetRuntime, shared_broker: TestBroker
) -> None:
    service = runtime.app
    _, manager_token = service.members.add_member("ada", Role.MANAGER)
    code, _ = service.enrollment.create_enrollment_code(None)
    answer = enroll(runtime.url, code, "Prusa MK4", CAPABILITIES)
    other_code, _ = service.enrollment.create_enrollment_code(None)
    other = enroll(runtime.url, other_code, "Mini", CAPABILITIES)
    assert (answer.mqtt.host, answer.mqtt.port) == ("127.0.0.1", shared_broker.port)

    node = Outsider(shared_broker.port, answer.mqtt.username, answer.mqtt.password)
    try:
        assert node.connect() == 0
        # Its own commands, and no other printer's: the per-printer role the fleet created.
        assert node.subscribe(topic(answer.printer_id, Channel.CMD)) == 1
        assert node.subscribe(topic(other.printer_id, Channel.CMD)) == NOT_AUTHORIZED
        assert node.publish(topic(other.printer_id, Channel.STATUS), b"{}") == NOT_AUTHORIZED
        # What it publishes reaches the fleet through its shared subscription.
        status = {"v": 1, "state": "idle", "ts": time.time(), "capabilities": CAPABILITIES}
        assert node.publish(topic(answer.printer_id, Channel.STATUS), json.dumps(status).encode()) == 0
        wait_until(
            lambda: service.printers.get_printer(answer.printer_id).state is PrinterState.IDLE,
            5,
            "the fleet to ingest the printer's status",
        )

        response = requests.post(
            f"{runtime.url}/api/v1/printers/{answer.printer_id}/revoke",
            headers={"Authorization": f"Bearer {manager_token}"},
            timeout=10,
        )
        answered = time.monotonic()
        assert response.status_code == 200, response.text
        closed = node.wait_disconnected(timeout=5)
        assert closed - answered < CUT_OFF_S, f"cut off {closed - answered:.2f} s after the revoke"
    finally:
        node.close()
    assert login(shared_broker.port, answer.mqtt.username, answer.mqtt.password) in (
        BAD_LOGIN,
        NOT_AUTHORIZED,
    )
    assert login(shared_broker.port, other.mqtt.username, other.mqtt.password) == 0


def test_a_broker_that_cannot_be_reached_leaves_enrollment_and_revocation_undone(tmp_path: Path) -> None:
    fleet = Fleet.open(FleetConfig(data_dir=tmp_path / "data"))
    nowhere = MqttLink("fleet-admin", BrokerAddress("127.0.0.1", free_port(), FLEET_USER, "x"))
    try:
        service = fleet.app
        service.enrollment.node_mqtt = BrokerAddress("127.0.0.1", 1883)
        service.enrollment.accounts = DynsecAccounts(nowhere, timeout_s=0.2)
        code, _ = service.enrollment.create_enrollment_code(None)
        request = EnrollRequest.from_json({"code": code, "name": "MK4", "capabilities": CAPABILITIES})
        with pytest.raises(Unavailable, match="not reachable"):
            service.enrollment.enroll(request)
        assert service.printers.list_printers() == []  # and the code is not spent:
        service.enrollment.accounts = None
        printer = service.enrollment.enroll(request).printer
        manager, _ = service.members.add_member("ada", Role.MANAGER)
        service.enrollment.accounts = DynsecAccounts(nowhere, timeout_s=0.2)
        with pytest.raises(Unavailable):
            service.enrollment.revoke_printer(manager, printer.id)
        assert [c.printer_id for c in fleet.store.active_credentials()] == [printer.id]
    finally:
        nowhere.close()
        fleet.close()


def test_broker_init_writes_a_file_that_keeps_every_enrolled_printer(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    fleet = Fleet.open(FleetConfig(data_dir=data))
    try:
        fleet.app.enrollment.node_mqtt = BrokerAddress("127.0.0.1", 1883)
        code, _ = fleet.app.enrollment.create_enrollment_code(None)
        request = EnrollRequest.from_json({"code": code, "name": "MK4", "capabilities": CAPABILITIES})
        kept = fleet.app.enrollment.enroll(request).answer
    finally:
        fleet.close()
    target = tmp_path / "broker" / "dynsec.json"
    port = free_port()
    argv = ["broker", "init", str(target), "--data-dir", str(data), "--port", str(port), "--json"]
    assert fleet_cli(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["printers"] == 1 and oct(target.stat().st_mode & 0o777) == "0o600"
    assert fleet_cli(argv) == 2, "an existing file is replaced only with --force"
    fleet_url = BrokerAddress.from_url(printed["mqtt_url"])

    broker = TestBroker(tmp_path / "broker", port=port, dynsec=target.read_text())
    broker.start()
    try:
        assert login(port, kept.mqtt.username, kept.mqtt.password) == 0  # the password it was enrolled with
        assert login(port, kept.mqtt.username, "a guess") in (BAD_LOGIN, NOT_AUTHORIZED)
        assert login(port, None, None) != 0
        assert login(port, fleet_url.username, fleet_url.password) == 0
    finally:
        broker.close()


def test_the_fleet_username_cannot_be_a_printer_id() -> None:
    with pytest.raises(Invalid, match="printer id"):
        initial_config("fleet", hash_password("x"), [])


def test_the_logins_of_printers_revoked_elsewhere_are_removed_at_the_next_sync(
    shared_broker: TestBroker, tmp_path: Path
) -> None:
    fleet = Fleet.open(FleetConfig(data_dir=tmp_path / "data"))
    admin = MqttLink(
        "other-fleet-admin", BrokerAddress.from_url(shared_broker.url_for(FLEET_USER, FLEET_PASSWORD))
    )
    admin.start()
    try:
        service = fleet.app
        service.enrollment.node_mqtt = BrokerAddress("127.0.0.1", shared_broker.port)
        accounts = service.enrollment.accounts = DynsecAccounts(admin)
        answers = {}
        for name in ("Kept", "Gone"):
            code, _ = service.enrollment.create_enrollment_code(None)
            request = EnrollRequest.from_json({"code": code, "name": name, "capabilities": CAPABILITIES})
            answers[name] = service.enrollment.enroll(request).answer
        manager, _ = service.members.add_member("ada", Role.MANAGER)
        service.enrollment.accounts = None  # revoked by a fleet that does not manage this broker
        service.enrollment.revoke_printer(manager, answers["Gone"].printer_id)
        gone, kept = answers["Gone"].mqtt, answers["Kept"].mqtt
        assert login(shared_broker.port, gone.username, gone.password) == 0

        active = lambda: [c.printer_id for c in fleet.store.active_credentials()]  # noqa: E731
        assert accounts.sync(fleet.store.revoked_printer_ids, active) == ({gone.username}, set())
        assert login(shared_broker.port, gone.username, gone.password) in (BAD_LOGIN, NOT_AUTHORIZED)
        assert login(shared_broker.port, kept.username, kept.password) == 0
    finally:
        admin.close()
        fleet.close()
