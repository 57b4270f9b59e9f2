"""The fleet's HTTP application: ``create_app(service)`` builds it; any WSGI server can serve it."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional

from flask import Flask, Request, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from ..app import FleetApp
from ..config import MetricsAccess
from ..errors import FleetError, RateLimited
from ..http_protocol import OPENAPI
from ..web import current, install_dashboard
from ..web.limiter import StoredLimiter
from .prometheus import install_metrics
from .routes import ApiLimits, api

log = logging.getLogger(__name__)

#: Room for the multipart envelope and form fields around an upload at the lab's size limit.
MULTIPART_SLACK = 64 * 1024

#: Failures per remote address before the API answers 429, and the window they are counted in
#: (in the fleet's database: all fleet processes on it count together, and a restart forgets none).
#: Codes and tokens are far too long to guess; the limits keep a misbehaving client from
#: hammering the database, and leave room for a lab whose members share one address.
LIMIT_DEFAULTS = {
    "CROWDFAB_ENROLL_ATTEMPTS": 10,
    "CROWDFAB_ENROLL_WINDOW_S": 600.0,
    "CROWDFAB_LINK_ATTEMPTS": 10,
    "CROWDFAB_LINK_WINDOW_S": 600.0,
    "CROWDFAB_TOKEN_ATTEMPTS": 30,
    "CROWDFAB_TOKEN_WINDOW_S": 300.0,
}


def body_limit(service: FleetApp) -> int:
    """The largest request body the fleet takes now: the lab's upload limit and the multipart envelope."""
    return service.lab.settings().max_upload_bytes + MULTIPART_SLACK


class FleetRequest(Request):
    """Caps each request body at the lab's upload limit, read when the request arrives."""

    @property
    def max_content_length(self) -> Optional[int]:  # type: ignore[override]
        return body_limit(current.service())


class StoredId(IntegerConverter):
    """``<int:...>`` in every route: at most 18 digits, so the database can store it (below 2^63).

    Werkzeug's own takes any number of digits, and a larger id would fail in the database; in the
    pattern (not a range check after it) a longer number is a path no route has: 404, never 405.
    """

    regex = r"\d{1,18}"


def create_app(service: FleetApp, config: Optional[dict[str, Any]] = None) -> Flask:
    app = Flask(__name__)
    app.request_class = FleetRequest
    # Before any route is added: an id in a URL is one the database can hold, or no route matches (404).
    app.url_map.converters["int"] = StoredId
    app.config.update(JSON_SORT_KEYS=False, **(config or {}))
    for key, value in LIMIT_DEFAULTS.items():
        app.config.setdefault(key, value)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[current.SERVICE] = service

    @app.before_request
    def start_clock() -> None:
        g.crowdfab_started = time.perf_counter()

    @app.after_request
    def time_request(response: Response) -> Response:
        """Each answer's time, by route template (``/api/v1/jobs/<int:job_id>``, never the raw path,
        so the series stay few whatever clients ask for); a streamed answer counts until it starts."""
        started = g.pop("crowdfab_started", None)
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            service.metrics.observe(
                "http.request_duration_s", time.perf_counter() - started, method=request.method, route=route
            )
        return response

    conf = app.config
    app.extensions["crowdfab.api_limits"] = ApiLimits(
        enrollment=StoredLimiter(
            service.store, "enroll", conf["CROWDFAB_ENROLL_ATTEMPTS"], conf["CROWDFAB_ENROLL_WINDOW_S"]
        ),
        link_codes=StoredLimiter(
            service.store, "link", conf["CROWDFAB_LINK_ATTEMPTS"], conf["CROWDFAB_LINK_WINDOW_S"]
        ),
        tokens=StoredLimiter(
            service.store, "token", conf["CROWDFAB_TOKEN_ATTEMPTS"], conf["CROWDFAB_TOKEN_WINDOW_S"]
        ),
    )
    proxies = int(app.config.get("CROWDFAB_TRUSTED_PROXIES", 0))
    if proxies > 0:
        # The client's address (for the sign-in, enrollment and token limits) and scheme (for secure
        # cookies) as the trusted proxies report them; without proxies the headers are ignored.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    app.register_blueprint(api)
    install_dashboard(app, service)
    install_metrics(app, service, app.config.get("CROWDFAB_METRICS_ACCESS") or MetricsAccess())

    @app.errorhandler(FleetError)
    def fleet_error(error: FleetError) -> tuple[Response, int]:
        response = jsonify(error.to_dict())
        if isinstance(error, RateLimited) and isinstance(error.details, dict):
            response.headers["Retry-After"] = str(error.details.get("retry_after_s", 60))
        return response, error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        messages = {
            404: f"there is no {request.path} here; see {OPENAPI} for what there is",
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
    def follow_body_limit(response: Response) -> Response:
        """Tell the server the lab's current limit (a manager may have changed it, here or elsewhere)."""
        follow: Optional[Callable[[int], None]] = app.extensions.get("crowdfab.follow_body_limit")
        if follow is not None:
            follow(body_limit(service))
        return response

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
