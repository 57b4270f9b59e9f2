"""Enrolling a printer with the fleet: trade a one-time code for its id, token and broker login.

The OctoPrint plugin and the headless agent both enroll this way, through :class:`fleet.client.FleetClient`.
Every failure is a :class:`FleetRequestError` with a message for the person at the printer.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import requests

from ..client import FleetClient, FleetRequestError, read_enrollment
from ..http_protocol import BrokerAddress, EnrollmentAnswer
from ..protocol import Capabilities, ProtocolError, decode_capabilities

__all__ = ["BrokerAddress", "EnrollmentAnswer", "FleetRequestError", "enroll", "parse_enrollment"]

#: The enrollment answer read strictly (printer id pattern, port range, text fields).
parse_enrollment = read_enrollment


def enroll(
    fleet_url: str,
    code: str,
    name: str,
    capabilities: Union[Capabilities, dict[str, Any]],
    *,
    timeout: tuple[float, float] = (5.0, 20.0),
    session: Optional[requests.Session] = None,
) -> EnrollmentAnswer:
    """Trade an enrollment code for this printer's id, HTTP token and broker credentials.

    ``capabilities`` may also be their JSON form (missing or null fields are unknown), as settings hold it.
    """
    if isinstance(capabilities, dict):
        try:
            capabilities = decode_capabilities(capabilities)
        except ProtocolError as exc:
            # 422: settings the fleet would refuse, so trying again cannot help
            raise FleetRequestError(
                f"this printer's capabilities cannot be sent: {exc.message}", 422
            ) from None
    with FleetClient(fleet_url, timeout=timeout, session=session) as client:
        return client.enroll(code, name, capabilities)
