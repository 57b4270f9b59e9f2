"""A real fleet with its managed Mosquitto, real enrollments, and plain MQTT clients from outside.

``LiveFleet`` runs what ``crowdfab-fleet serve`` runs (:class:`fleet.server.FleetRuntime`: the managed
broker with its generated password and ACL files, the HTTP API on waitress, the fleet link) on free
ports. Printers join through the node's own enrollment client (:func:`fleet.node.enroll.enroll`),
so their broker logins are the ones enrollment issues. ``Outsider`` is a bare paho client, MQTT 5,
that records what the broker tells it: CONNACK, SUBACK and PUBACK reason codes, messages, and the
moment the broker closes its connection.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import paho.mqtt.client as paho
import requests
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from fleet.config import FleetConfig
from fleet.models import Role
from fleet.node.enroll import EnrollmentAnswer, enroll
from fleet.server import FleetRuntime, LinkOptions

from ..brokers import HOST, OutsideClients, free_port

CAPABILITIES = {
    "volume": {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 250, "max_y": 210, "max_z": 220},
    "nozzle_diameter": 0.4,
    "material": "PLA",
}
#: MQTT 5 reason codes the broker answers a refused CONNECT, SUBSCRIBE or PUBLISH with.
NOT_AUTHORIZED = 135
BAD_LOGIN = 134


class LiveFleet:
    """The fleet as ``serve`` runs it, in this process, with a manager's token."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        config = FleetConfig(data_dir=data_dir, port=0, threads=8)
        self.runtime = FleetRuntime(config, LinkOptions(mqtt_port=free_port(), dispatch_interval_s=60.0))
        self.runtime.start()
        self.url = self.runtime.url
        self.mqtt_port = self.runtime.mqtt_port
        _, self.manager_token = self.runtime.app.members.add_member("ada", Role.MANAGER)
        self.outside = OutsideClients(HOST, self.mqtt_port)

    @property
    def service(self) -> Any:
        return self.runtime.app

    def api(self, method: str, path: str, token: Optional[str] = None, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.manager_token}"}
        return requests.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=30, **kw)

    def new_code(self, ttl_s: float = 3600) -> str:
        response = self.api("POST", "/enroll-codes", json={"ttl_s": ttl_s})
        assert response.status_code == 201, response.text
        return str(response.json()["code"])

    def enroll(self, name: str, code: Optional[str] = None) -> EnrollmentAnswer:
        """Enroll a printer the way a node does; its broker login is the one the fleet issued."""
        return enroll(self.url, code or self.new_code(), name, CAPABILITIES)

    def fleet_login(self) -> tuple[str, str]:
        """The fleet's own broker user, as ``serve`` keeps it in the data dir."""
        creds = json.loads((self.data_dir / "fleet-mqtt.json").read_text())
        return str(creds["username"]), str(creds["password"])

    def broker_users(self) -> list[str]:
        """The usernames in the managed broker's password file right now."""
        passwd = self.data_dir / "mosquitto" / "passwd"
        return [line.split(":", 1)[0] for line in passwd.read_text().splitlines() if line]

    def close(self) -> None:
        self.outside.close()
        self.runtime.close()


class Outsider:
    """A bare MQTT 5 client under some login; every answer of the broker is kept for the test to read."""

    def __init__(
        self,
        port: int,
        username: Optional[str],
        password: Optional[str],
        *,
        client_id: str = "",
        reconnect: bool = False,
        will: Optional[tuple[str, bytes]] = None,
    ) -> None:
        self._cond = threading.Condition()
        self.connacks: list[int] = []
        self.disconnects: list[tuple[float, int]] = []
        self.messages: list[tuple[str, bytes]] = []
        self._subacks: dict[int, list[int]] = {}
        self._pubacks: dict[int, int] = {}
        self._reconnect = reconnect
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        if username is not None:
            client.username_pw_set(username, password)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self.client = client
        self.port = port

    # -- paho callbacks (network thread) ---------------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        with self._cond:
            self.connacks.append(rc.value)
            self._cond.notify_all()
        if rc.is_failure and not self._reconnect:
            client.disconnect()

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        with self._cond:
            self.disconnects.append((time.monotonic(), rc.value))
            self._cond.notify_all()

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        with self._cond:
            self._subacks[mid] = [c.value for c in codes]
            self._cond.notify_all()

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        with self._cond:
            self._pubacks[mid] = rc.value
            self._cond.notify_all()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((message.topic, bytes(message.payload)))
            self._cond.notify_all()

    # -- what a test does --------------------------------------------------------------------------

    def _wait(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(ready, timeout):
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def connect(self, timeout: float = 10.0) -> int:
        """Connect and return the CONNACK reason code (0: accepted)."""
        self.client.connect(HOST, self.port, keepalive=30)
        self.client.loop_start()
        self._wait("the CONNACK", lambda: bool(self.connacks), timeout)
        return self.connacks[0]

    def subscribe(self, topic_filter: str, timeout: float = 10.0) -> int:
        """Subscribe at QoS 1; the SUBACK's reason code (1: granted, 135: not authorised)."""
        result, mid = self.client.subscribe(topic_filter, qos=1)
        assert result == paho.MQTT_ERR_SUCCESS, paho.error_string(result)
        self._wait(f"the SUBACK for {topic_filter}", lambda: mid in self._subacks, timeout)
        return self._subacks[mid][0]

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, timeout: float = 10.0) -> int:
        """Publish at QoS 1; the PUBACK's reason code (0: taken, 135: not authorised)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        assert info.rc == paho.MQTT_ERR_SUCCESS, paho.error_string(info.rc)
        self._wait(f"the PUBACK for {topic}", lambda: info.mid in self._pubacks, timeout)
        return self._pubacks[info.mid]

    def wait_message(self, predicate: Callable[[str, bytes], bool], timeout: float = 10.0) -> None:
        self._wait("a matching message", lambda: any(predicate(*m) for m in self.messages), timeout)

    def wait_disconnected(self, timeout: float) -> float:
        """Wait until the broker closed the connection; returns when (time.monotonic())."""
        self._wait("the broker to close the connection", lambda: bool(self.disconnects), timeout)
        return self.disconnects[0][0]

    def drop(self) -> None:
        """Vanish as a crashed client does: the connection ends without DISCONNECT (the broker sends
        the will), and nothing reconnects."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)

    def received(self) -> list[tuple[str, bytes]]:
        with self._cond:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def login(port: int, username: Optional[str], password: Optional[str]) -> int:
    """Connect once with a fresh client; the CONNACK's reason code (0: let in)."""
    client = Outsider(port, username, password)
    try:
        return client.connect()
    finally:
        client.close()
