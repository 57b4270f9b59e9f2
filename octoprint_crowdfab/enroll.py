"""The plugin's HTTP calls to the fleet: enrolling this printer and queueing a member's file.

Both raise :class:`FleetRequestError` with a message for the person at the printer, never anything else.
Enrolling is shared with the headless agent and lives in :mod:`fleet.node.enroll`.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Optional

import requests

from fleet.node.enroll import Enrollment, FleetRequestError, MqttCredentials, api_url, enroll, request_json

__all__ = ["Enrollment", "FleetRequestError", "MqttCredentials", "enroll", "queue_file"]


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
) -> dict[str, Any]:
    """Submit a local file to the fleet's community queue as the member whose token this is.

    ``copies`` asks the fleet for that many jobs of the file (the fleet caps it at its lab's limit).
    The submission carries an ``Idempotency-Key`` (a fresh one unless given), and is sent once more
    with it when the first try got no answer (or a server failure): the fleet queues it once either way.
    """
    form = {"copies": str(copies)}
    if material:
        form["material"] = material
    key = idempotency_key or uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {member_token}", "Idempotency-Key": f'"{key}"'}

    def send() -> dict[str, Any]:
        with path.open("rb") as f:
            return request_json(
                session,
                "post",
                api_url(fleet_url, "/api/v1/jobs"),
                timeout,
                headers=headers,
                files={"file": (filename, f, "text/x.gcode")},
                data=form,
                expect=201,
            )

    try:
        return send()
    except FleetRequestError as exc:
        if exc.status is not None:  # the fleet answered with a refusal: sending it again changes nothing
            raise
        return send()
