"""The dashboard blueprint and what every page shares: the member, texts, rendering, errors."""

from __future__ import annotations

import hmac
import re
import secrets
import time
from pathlib import Path
from typing import Any, Optional, Union
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from ...errors import FleetError, Unauthorized
from ...models import Member, Role
from ..current import service as service  # the views import it from here
from ..dashboard import Dashboard
from ..failures import Shown, describe

#: Templates and assets live beside the dashboard package (fleet/web), not beside this module.
web = Blueprint(
    "web",
    __name__,
    root_path=str(Path(__file__).resolve().parents[1]),
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)

LANG_COOKIE = "crowdfab_lang"
#: Pages anyone may open.
PUBLIC = {"web.sign_in", "web.language"}
#: Answered with 401 rather than a redirect: the browser's script or an <img> asks, not a person.
NO_REDIRECT = {"web.events", "web.job_thumbnail", "web.job_snapshot"}
#: Common materials offered as suggestions on the submit form (any valid name is accepted).
MATERIALS = ("PLA", "PETG", "ABS", "ASA", "TPU")
#: A printer's extra nozzles: tool1, tool2...
TOOL_RE = re.compile(r"tool([0-9]{1,2})")
#: How long an enrollment code lives, by the choice offered on the printers page.
CODE_TTLS = {"1h": 3600, "1d": 86400, "7d": 7 * 86400}

Page = Union[str, BaseResponse, tuple[str, int], tuple[str, int, dict[str, str]]]


def dashboard() -> Dashboard:
    board: Dashboard = current_app.extensions["crowdfab.dashboard"]
    return board


def me() -> Member:
    member: Member = g.member
    return member


def t(key: str, **values: Any) -> str:
    # No language is chosen for a static file's request, yet its 404 page needs one.
    return dashboard().catalogue.text(g.get("lang", "en"), key, **values)


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def safe_next(target: Optional[str], default: str = "/") -> str:
    """A same-site path to go back to; anything else (another host, a scheme) becomes ``default``."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def back(default: str) -> BaseResponse:
    return redirect(safe_next(request.form.get("next"), default), 303)


# -- every request --------------------------------------------------------------------------------


@web.before_request
def load_session() -> Optional[BaseResponse]:
    if request.endpoint == "web.static":
        return None
    board = dashboard()
    best = request.accept_languages.best_match(board.catalogue.languages)
    g.lang = board.catalogue.choose(request.cookies.get(LANG_COOKIE), best)
    g.member = None
    member_id, stamp = session.get("member_id"), session.get("stamp")
    if isinstance(member_id, int) and isinstance(stamp, str):
        try:
            g.member = service().identity.session_member(member_id, stamp)
        except Unauthorized:
            session.clear()
    if request.method == "POST":
        sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
        expected = session.get("csrf")
        if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
            abort(400, description="csrf")
    if g.member is None and request.endpoint not in PUBLIC:
        if request.endpoint in NO_REDIRECT or request.method != "GET":
            abort(401)
        return redirect(url_for("web.sign_in", next=request.full_path.rstrip("?")))
    return None


@web.after_request
def page_headers(response: Response) -> Response:
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    )
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.vary.add("Cookie")
    return response


@web.app_template_global()
def format_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "—"
    minutes = max(0, round(seconds / 60))
    if minutes < 60:
        return t("time.minutes", m=minutes)
    return t("time.hours", h=minutes // 60, m=f"{minutes % 60:02d}")


@web.app_template_global()
def heater_name(name: str) -> str:
    """A heater's name for people ("tool0" is the nozzle, "tool1" the second); unknown names stay as sent."""
    key = f"js.heater.{name}"
    if dashboard().catalogue.has(key):
        return t(key)
    tool = TOOL_RE.fullmatch(name)
    return t("js.heater.tool", n=int(tool.group(1)) + 1) if tool else name


@web.app_template_global()
def iso_time(epoch: Optional[float]) -> str:
    if epoch is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@web.app_template_global()
def clock_time(epoch: Optional[float]) -> str:
    """A time of day for people (UTC until the page's script shows it in the browser's zone)."""
    if epoch is None:
        return "—"
    return time.strftime("%H:%M UTC", time.gmtime(epoch))


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    member: Optional[Member] = g.get("member")
    page = render_template(
        template,
        t=t,
        lang=g.get("lang", "en"),
        languages=dashboard().catalogue.languages,
        me=member,
        is_manager=member is not None and member.role is Role.MANAGER,
        csrf=csrf_token(),
        js_texts=dashboard().catalogue.prefixed(g.get("lang", "en"), "js."),
        **context,
    )
    return page, status


# -- errors ---------------------------------------------------------------------------------------


def failure(error: FleetError) -> Shown:
    """The error's message in the page's language when the catalogue has it, else in English."""
    return describe(error, dashboard().catalogue, g.get("lang", "en"), dict(request.view_args or {}))


@web.errorhandler(FleetError)
def fleet_error(error: FleetError) -> Union[Page, BaseResponse]:
    if isinstance(error, Unauthorized):
        session.clear()
        return redirect(url_for("web.sign_in"))
    known = dashboard().catalogue.messages["en"]
    title = t(f"error.{error.status}") if f"error.{error.status}" in known else t("error.other")
    shown = failure(error)
    return render("error.html", error.status, title=title, message=shown.text, message_lang=shown.lang)


@web.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Page:
    status = error.code or 500
    known = dashboard().catalogue.messages["en"]
    if status == 400 and error.description == "csrf":
        message = t("error.csrf")
    else:
        message = t(f"error.{status}.text") if f"error.{status}.text" in known else ""
    title = t(f"error.{status}") if f"error.{status}" in known else t("error.other")
    return render("error.html", status, title=title, message=message)


def viewer_context() -> dict[str, Any]:
    return {"viewer_id": me().id, "viewer_manager": me().role is Role.MANAGER}


def form_error(error: FleetError) -> dict[str, Any]:
    shown = failure(error)
    return {"error": shown.text, "error_lang": shown.lang}
