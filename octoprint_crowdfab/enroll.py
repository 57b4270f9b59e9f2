"""The plugin's HTTP calls to the fleet: enrolling this printer and queueing a member's file.

Both go through :class:`fleet.client.FleetClient` and raise :class:`FleetRequestError` with a message for
the person at the printer, never anything else. Enrolling is shared with the headless agent
(:mod:`fleet.node.enroll`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import requests

from fleet.client import FleetClient, FleetRequestError
from fleet.http_protocol import BrokerAddress, EnrollmentAnswer, JobSubmission
from fleet.node.enroll import enroll

__all__ = ["BrokerAddress", "EnrollmentAnswer", "FleetRequestError", "enroll", "queue_file"]


def queue_file(
    fleet_url: str,
    member_token: str,
    path: Path,
    filename: str,
    *,
    material: Optional[str] = None,
    copies: int = 1,
    timeout: tuple[float, float] = (5.0, 120.0),
    session: Optional[requests.Session] = None,
    idempotency_key: Optional[str] = None,
) -> Any:
    """Submit a local file to the fleet's community queue as the member whose token this is.

    ``copies`` asks the fleet for that many jobs of the file (the fleet caps it at its lab's limit).
    The submission carries an ``Idempotency-Key`` (a fresh one unless given) and is sent again with it
    when a try got no answer (or a server failure): the fleet queues it once either way.
    """
    # One more try at most: an OctoPrint request is waiting on this call.
    with FleetClient(fleet_url, member_token, timeout=timeout, retries=1, session=session) as client:
        return client.submit_job(
            path, JobSubmission(copies=copies, material=material), filename=filename, key=idempotency_key
        )
