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
    try:
        mqtt = data["mqtt"]
        enrollment = Enrollment(
            printer_id=str(data["printer_id"]),
            token=str(data["token"]),
            mqtt=MqttCredentials(
                host=str(mqtt["host"]),
                port=int(mqtt.get("port") or 1883),
                username=mqtt.get("username"),
                password=mqtt.get("password"),
                tls=bool(mqtt.get("tls")),
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FleetRequestError(
            f"the fleet's enrollment answer is missing or has a bad field: {exc}"
        ) from None
    if not PRINTER_ID_RE.match(enrollment.printer_id):
        raise FleetRequestError(
            f"the fleet gave a printer id this node cannot use: {enrollment.printer_id!r}"
        )
    return enrollment


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
