"""Enrolling a printer with the fleet over HTTP: trade a one-time code for its id, token and broker login.

The OctoPrint plugin and the headless agent both enroll this way. Every failure is a
:class:`FleetRequestError` with a message for the person at the printer, never anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import requests

from ..protocol import PRINTER_ID_RE

ENROLL_PATH = "/api/v1/printers/enroll"


class FleetRequestError(Exception):
    """The fleet could not be reached or refused; the message says which and why.

    ``status`` is the fleet's HTTP status when it answered with a refusal (4xx), else None.
    """

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class MqttCredentials:
    host: str
    port: int = 1883
    username: Optional[str] = None
    password: Optional[str] = None
    tls: bool = False


@dataclass(frozen=True)
class Enrollment:
    printer_id: str
    token: str
    mqtt: MqttCredentials


def enroll(
    fleet_url: str,
    code: str,
    name: str,
    capabilities: dict[str, Any],
    *,
    timeout: tuple[float, float] = (5.0, 20.0),
    session: Optional[requests.Session] = None,
) -> Enrollment:
    """Trade an enrollment code for this printer's id, HTTP token and broker credentials."""
    body = {"code": code, "name": name, "capabilities": capabilities}
    data = request_json(session, "post", api_url(fleet_url, ENROLL_PATH), timeout, json=body, expect=201)
    return parse_enrollment(data)


def parse_enrollment(data: Any) -> Enrollment:
    """The fleet's enrollment answer as typed values; a missing or malformed field is a FleetRequestError."""
    if not isinstance(data, dict):
        raise FleetRequestError("the fleet's enrollment answer is not a JSON object")
    mqtt = data.get("mqtt")
    if not isinstance(mqtt, dict):
        raise FleetRequestError("the fleet's enrollment answer has no mqtt object")
    printer_id = _field(data, "printer_id", str)
    if not PRINTER_ID_RE.match(printer_id):
        raise FleetRequestError(f"the fleet gave a printer id this node cannot use: {printer_id!r:.80}")
    port = mqtt.get("port") or 1883
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise FleetRequestError("the fleet's enrollment answer has a bad field: mqtt.port (not a port)")
    return Enrollment(
        printer_id=printer_id,
        token=_field(data, "token", str),
        mqtt=MqttCredentials(
            host=_field(mqtt, "host", str, "mqtt."),
            port=port,
            username=_field(mqtt, "username", (str, type(None)), "mqtt."),
            password=_field(mqtt, "password", (str, type(None)), "mqtt."),
            tls=_field(mqtt, "tls", (bool, type(None)), "mqtt.") is True,
        ),
    )


def _field(data: dict[str, Any], key: str, kind: Any, prefix: str = "") -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or value == "":
        raise FleetRequestError(f"the fleet's enrollment answer is missing or has a bad field: {prefix}{key}")
    return value


def api_url(base: str, path: str) -> str:
    """``base`` (the fleet's URL as configured) joined with an API path."""
    if not base.startswith(("http://", "https://")):
        raise FleetRequestError(f"fleet_url must start with http:// or https://, not {base!r}")
    return base.rstrip("/") + path


def request_json(
    session: Optional[requests.Session],
    method: str,
    url: str,
    timeout: tuple[float, float],
    *,
    expect: int,
    **kwargs: Any,
) -> dict[str, Any]:
    """One HTTP call to the fleet whose answer must be a JSON object with status ``expect``."""
    try:
        response = (session or requests).request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise FleetRequestError(f"could not reach the fleet at {url}: {exc}") from None
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code != expect:
        message = data.get("message") if isinstance(data, dict) else None
        refused = response.status_code if 400 <= response.status_code < 500 else None
        raise FleetRequestError(
            f"the fleet answered HTTP {response.status_code}: {message or response.reason}", refused
        )
    if not isinstance(data, dict):
        raise FleetRequestError("the fleet's answer is not a JSON object")
    return data
