"""The fleet service as the Flask app handling this request holds it, for the API and the dashboard alike.

:func:`fleet.api.create_app` stores it under :data:`SERVICE`; both blueprints read it through
:func:`service`, so the key and its type are written once.
"""

from __future__ import annotations

from flask import current_app

from ..app import FleetApp

#: The key in ``app.extensions`` under which the service is kept.
SERVICE = "crowdfab.service"


def service() -> FleetApp:
    svc: FleetApp = current_app.extensions[SERVICE]
    return svc
