"""The fleet's HTTP application: ``create_app(service)`` builds it; any WSGI server can serve it."""

from __future__ import annotations

import logging
from typing import Any, Optional

from flask import Flask, Request, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from ..errors import FleetError
from ..service import FleetService
from ..web import install_dashboard
from .routes import api

log = logging.getLogger(__name__)

#: Room for the multipart envelope and form fields around an upload at the lab's size limit.
MULTIPART_SLACK = 64 * 1024


class FleetRequest(Request):
    """Caps each request body at the lab's upload limit, read when the request arrives."""

    @property
    def max_content_length(self) -> Optional[int]:  # type: ignore[override]
        svc: FleetService = current_app.extensions["crowdfab.service"]
        return svc.lab_settings().max_upload_bytes + MULTIPART_SLACK


def create_app(service: FleetService, config: Optional[dict[str, Any]] = None) -> Flask:
    app = Flask(__name__)
    app.request_class = FleetRequest
    app.config.update(JSON_SORT_KEYS=False, **(config or {}))
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["crowdfab.service"] = service
    app.register_blueprint(api)
    install_dashboard(app, service)

    @app.errorhandler(FleetError)
    def fleet_error(error: FleetError) -> tuple[Response, int]:
        return jsonify(error.to_dict()), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        messages = {
            404: f"there is no {request.path} here; see /api/v1/openapi.json for what there is",
            405: f"{request.method} is not allowed on {request.path}",
            413: "the upload is larger than the lab's limit; ask a manager, or slice with fewer details",
        }
        message = messages.get(status, error.description or error.name)
        return jsonify(error=error.name.lower().replace(" ", "_"), message=message), status

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return jsonify(error="internal", message="the fleet hit an unexpected error; it is logged"), 500

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
