"""The fleet dashboard: server-rendered pages for members and managers, served beside the API.

``install_dashboard(app, service)`` adds it to the Flask app. Sessions are Flask's signed cookie
(HttpOnly, SameSite=Lax, Secure on https); the key comes from ``app.config["SECRET_KEY"]``
(``serve`` keeps one in the data dir, see :func:`fleet.web.keys.session_secret`), else a random
one per process. Live updates hold one server thread per open dashboard: at most
``CROWDFAB_LIVE_CLIENTS`` at once (others are told to retry later), each for at most
``CROWDFAB_LIVE_STREAM_S`` seconds.
"""

from __future__ import annotations

import secrets

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

from ..app import FleetApp
from .dashboard import Dashboard, FleetFeed
from .events import LiveHub
from .i18n import Catalogue
from .keys import session_secret
from .limiter import StoredLimiter
from .views import web

__all__ = ["install_dashboard", "session_secret"]

DEFAULTS = {
    "CROWDFAB_LIVE_CLIENTS": 4,
    "CROWDFAB_LIVE_INTERVAL_S": 0.5,
    #: A full snapshot this often, for changes made by another fleet process on the same database.
    "CROWDFAB_LIVE_RESYNC_S": 30.0,
    "CROWDFAB_LIVE_STREAM_S": 600.0,
    "CROWDFAB_LIVE_HEARTBEAT_S": 15.0,
    "CROWDFAB_SIGNIN_ATTEMPTS": 5,
    "CROWDFAB_SIGNIN_WINDOW_S": 300.0,
}


class DashboardSessions(SecureCookieSessionInterface):
    """Marks the session cookie Secure whenever the request came over https (or the config says so)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def install_dashboard(app: Flask, service: FleetApp) -> Dashboard:
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    if not app.secret_key:
        app.secret_key = secrets.token_hex(32)  # sessions then end when the process does
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_NAME="crowdfab"
    )
    app.session_interface = DashboardSessions()
    config = app.config
    feed = FleetFeed(service)
    board = Dashboard(
        catalogue=Catalogue.load(),
        # Counted in the fleet's database: every process on it counts together, across restarts.
        limiter=StoredLimiter(
            service.store, "signin", config["CROWDFAB_SIGNIN_ATTEMPTS"], config["CROWDFAB_SIGNIN_WINDOW_S"]
        ),
        hub=LiveHub(
            feed.snapshot,
            refresh=feed.refresh,
            interval_s=config["CROWDFAB_LIVE_INTERVAL_S"],
            resync_s=config["CROWDFAB_LIVE_RESYNC_S"],
            max_clients=config["CROWDFAB_LIVE_CLIENTS"],
        ),
        stream_lifetime_s=config["CROWDFAB_LIVE_STREAM_S"],
        heartbeat_s=config["CROWDFAB_LIVE_HEARTBEAT_S"],
    )
    feed.follow(board.hub)
    app.extensions["crowdfab.dashboard"] = board
    app.register_blueprint(web)
    return board
