"""Enrolling a printer with the fleet: trade a one-time code for its id, token and broker login.

The OctoPrint plugin and the headless agent both enroll this way, through :class:`fleet.client.FleetClient`.
Every failure is a :class:`FleetRequestError` with a message for the person at the printer.
"""

from __future__ import annotations

from typing import Any, Optional

import requests

from ..client import FleetClient, FleetRequestError, read_enrollment
from ..http_protocol import BrokerAddress, EnrollmentAnswer

__all__ = ["BrokerAddress", "EnrollmentAnswer", "FleetRequestError", "enroll", "parse_enrollment"]

#: The enrollment answer read strictly (printer id pattern, port range, text fields).
parse_enrollment = read_enrollment


def enroll(
    fleet_url: str,
    code: str,
    name: str,
    capabilities: dict[str, Any],
    *,
    timeout: tuple[float, float] = (5.0, 20.0),
    session: Optional[requests.Session] = None,
) -> EnrollmentAnswer:
    """Trade an enrollment code for this printer's id, HTTP token and broker credentials."""
    with FleetClient(fleet_url, timeout=timeout, session=session) as client:
        return client.enroll(code, name, capabilities)
