"""No secret in any log line: a realistic day on a served fleet, logged at DEBUG everywhere.

The fleet runs as ``crowdfab-fleet serve`` runs it (waitress, its own Mosquitto, the fleet link).
A manager makes a member with a password and a token, an enrollment code is made and spent by the
node's own enrollment client, the printer logs in to the broker with the credentials it was given,
a sign-in fails with a password, tokens (good and bad) are sent as bearer tokens. Every log record
of every logger (SQL statements and their parameters included), everything written to stdout and
stderr, and the broker's own log must hold none of the secrets seen along the way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from fleet.app.enrollment import normalize_code
from fleet.config import FleetConfig
from fleet.models import Role
from fleet.mqtt import BrokerAddress, MqttLink
from fleet.node.enroll import enroll
from fleet.server import FleetRuntime, LinkOptions, fleet_mqtt_password
from fleet.web import session_secret

from .conftest import CAPS, PASSWORD, csrf_of

WRONG_PASSWORD = "Tr0ub4dor&3-not-it"


class Everything(logging.Handler):
    """Keeps every record, formatted as a log file would show it (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{self.format(record)} {record.args!r}")


@contextmanager
def logging_at_debug() -> Iterator[Everything]:
    """Every logger at DEBUG, each record to one handler; the previous levels come back after."""
    root = logging.getLogger()
    handler = Everything()
    loggers = [root] + [logging.getLogger(name) for name in list(root.manager.loggerDict)]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for lg, level, disabled in saved:
            lg.setLevel(level)
            lg.disabled = disabled


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[FleetRuntime]:
    config = FleetConfig(data_dir=tmp_path / "data", port=0)
    with logging_at_debug() as handler:
        served = FleetRuntime(config, LinkOptions(mqtt_port=0, mqtt_public_host="127.0.0.1"))
        served.start()
        served.__dict__["log_lines"] = handler.lines
        try:
            yield served
        finally:
            served.close()


def test_no_secret_reaches_a_log_line(runtime: FleetRuntime, capfd: pytest.CaptureFixture[str]) -> None:
    url = runtime.url
    api = f"{url}/api/v1"
    secrets: dict[str, str] = {}
    config = runtime.config
    secrets["fleet's broker password"] = fleet_mqtt_password(config.data_dir)
    secrets["session key"] = session_secret(config.data_dir).decode("ascii")

    _, boss_token = runtime.app.members.add_member("boss", Role.MANAGER)
    secrets["manager's token"] = boss_token
    as_boss = {"Authorization": f"Bearer {boss_token}"}

    # A member, with a token and a password, through the API.
    made = requests.post(f"{api}/members", headers=as_boss, json={"name": "alice"}, timeout=10).json()
    secrets["member's first token"] = made["token"]
    reissued = requests.post(f"{api}/members/{made['id']}/token", headers=as_boss, timeout=10).json()
    secrets["member's token"] = token = reissued["token"]
    assert (
        requests.put(
            f"{api}/members/{made['id']}/password", headers=as_boss, json={"password": PASSWORD}, timeout=10
        ).status_code
        == 204
    )
    secrets["member's password"] = PASSWORD

    # An enrollment code, spent by the node's own client: a printer token and broker login come back.
    code = requests.post(f"{api}/enroll-codes", headers=as_boss, json={}, timeout=10).json()["code"]
    secrets["enrollment code"] = code
    secrets["enrollment code as stored"] = str(normalize_code(code))
    enrollment = enroll(url, code, "Prusa MK4", CAPS)
    secrets["printer token"] = enrollment.token
    assert enrollment.mqtt.password
    secrets["printer's broker password"] = enrollment.mqtt.password

    # The printer logs in to the broker with what it was given.
    link = MqttLink(
        "node-mk4",
        BrokerAddress(
            enrollment.mqtt.host, enrollment.mqtt.port, enrollment.mqtt.username, enrollment.mqtt.password
        ),
    )
    link.start()
    try:
        assert link.wait_connected(15), "the printer could not log in to the fleet's broker"
    finally:
        link.close()

    # Bearer tokens in requests: good ones, a printer's on its download, wrong ones.
    assert (
        requests.get(f"{api}/me", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    )
    download = f"{api}/printers/{enrollment.printer_id}/jobs/1/file"
    requests.get(download, headers={"Authorization": f"Bearer {enrollment.token}"}, timeout=10)
    secrets["a guessed token"] = "cfm_guessed-token-0123456789abcdef"
    assert (
        requests.get(
            f"{api}/me", headers={"Authorization": f"Bearer {secrets['a guessed token']}"}, timeout=10
        )
    ).status_code == 401
    secrets["a guessed code"] = "ZZZZ-YYYY-XXXX"
    requests.post(
        f"{api}/printers/enroll",
        json={"code": secrets["a guessed code"], "name": "x", "capabilities": CAPS},
        timeout=10,
    )

    # The dashboard: a wrong password, then the right one (a session cookie comes back).
    browser = requests.Session()
    csrf = csrf_of(browser.get(f"{url}/signin", timeout=10).text)
    wrong = browser.post(
        f"{url}/signin", data={"name": "alice", "password": WRONG_PASSWORD, "csrf": csrf}, timeout=10
    )
    assert wrong.status_code == 401
    secrets["a mistyped password"] = WRONG_PASSWORD
    right = browser.post(
        f"{url}/signin",
        data={"name": "alice", "password": PASSWORD, "csrf": csrf},
        allow_redirects=False,
        timeout=10,
    )
    assert right.status_code == 303
    secrets["session cookie"] = browser.cookies["crowdfab"]
    secrets["csrf token"] = csrf
    assert browser.get(f"{url}/", timeout=10).status_code == 200

    lines: list[str] = runtime.__dict__["log_lines"]
    assert len(lines) > 20, "the flow should have logged something at DEBUG"
    broker_log = (config.data_dir / "mosquitto" / "mosquitto.log").read_text(errors="replace")
    assert "node-mk4" in broker_log, "the broker's log should show the printer's login"
    out, err = capfd.readouterr()
    places = {"log records": "\n".join(lines), "broker log": broker_log, "stdout": out, "stderr": err}
    leaks = [
        f"{what} in {where}"
        for what, value in secrets.items()
        for where, text in places.items()
        if value and value in text
    ]
    assert leaks == [], "secrets in the logs: " + ", ".join(leaks)
