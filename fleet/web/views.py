"""The dashboard's pages: sign-in, printer cards, the queue, jobs, submitting, live updates."""

from __future__ import annotations

import base64
import hmac
import math
import re
import secrets
import time
from typing import Any, BinaryIO, Callable, Optional, Union, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from ..app import FleetApp
from ..app.checks import check_material
from ..errors import FleetError, Invalid, NotFound, Unauthorized
from ..models import Member, Role
from ..states import CANCELLABLE, JobState
from .cards import best_thumbnail, card, thumbnail
from .dashboard import Dashboard
from .events import event_stream
from .failures import Shown, describe
from .stats import CHART_BOTTOM, CHART_HEIGHT, CHART_LEFT, CHART_TOP, CHART_WIDTH, compute

web = Blueprint(
    "web", __name__, template_folder="templates", static_folder="static", static_url_path="/assets"
)

LANG_COOKIE = "crowdfab_lang"
#: Pages anyone may open.
PUBLIC = {"web.sign_in", "web.language"}
#: Answered with 401 rather than a redirect: the browser's script or an <img> asks, not a person.
NO_REDIRECT = {"web.events", "web.job_thumbnail"}
#: Common materials offered as suggestions on the submit form (any valid name is accepted).
MATERIALS = ("PLA", "PETG", "ABS", "ASA", "TPU")
#: A printer's extra nozzles: tool1, tool2...
TOOL_RE = re.compile(r"tool([0-9]{1,2})")
#: How long an enrollment code lives, by the choice offered on the printers page.
CODE_TTLS = {"1h": 3600, "1d": 86400, "7d": 7 * 86400}

Page = Union[str, BaseResponse, tuple[str, int], tuple[str, int, dict[str, str]]]


def service() -> FleetApp:
    svc: FleetApp = current_app.extensions["crowdfab.service"]
    return svc


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


# -- signing in and out ---------------------------------------------------------------------------


@web.route("/signin", methods=["GET", "POST"])
def sign_in() -> Union[Page, BaseResponse]:
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if g.member is not None:
            return redirect(target)
        return render("signin.html", title=t("signin.title"), next=target, name="")
    name = request.form.get("name", "").strip()
    key = (name.lower(), request.remote_addr)
    limiter = dashboard().limiter
    wait = limiter.wait_s(key)
    if wait > 0:
        error = t("signin.too_many", minutes=max(1, math.ceil(wait / 60)))
        page, status = render(
            "signin.html", 429, title=t("signin.title"), next=target, name=name, error=error
        )
        return page, status, {"Retry-After": str(math.ceil(wait))}
    try:
        member = service().identity.sign_in(name, request.form.get("password", ""))
    except Unauthorized:
        limiter.failed(key)
        error = t("signin.wrong")
        return render("signin.html", 401, title=t("signin.title"), next=target, name=name, error=error)
    limiter.succeeded(key)
    session.clear()  # a fresh session (and CSRF token) for the signed-in member
    session["member_id"] = member.id
    session["stamp"] = service().identity.password_stamp(member.id)
    return redirect(target, 303)


@web.post("/signout")
def sign_out() -> BaseResponse:
    session.clear()
    return redirect(url_for("web.sign_in"), 303)


@web.post("/language")
def language() -> BaseResponse:
    chosen = request.form.get("lang", "")
    response = back("/")
    if chosen in dashboard().catalogue.languages:
        response.set_cookie(
            LANG_COOKIE, chosen, max_age=365 * 86400, samesite="Lax", httponly=True, secure=request.is_secure
        )
    return response


@web.route("/account", methods=["GET", "POST"])
def account() -> Union[Page, BaseResponse]:
    if request.method == "GET":
        return render("account.html", title=t("account.title"))
    current, new, again = (request.form.get(k, "") for k in ("current", "password", "again"))
    key = (me().name.lower(), request.remote_addr)
    limiter = dashboard().limiter
    error = None
    if limiter.wait_s(key) > 0:
        error = t("signin.too_many", minutes=max(1, math.ceil(limiter.wait_s(key) / 60)))
    elif new != again:
        error = t("account.mismatch")
    else:
        try:
            service().identity.sign_in(me().name, current)
        except Unauthorized:
            limiter.failed(key)
            error = t("account.wrong_current")
    if error is None:
        try:
            service().identity.set_password(me(), me().id, new)
        except Invalid:
            error = t("account.too_short")
    if error is not None:
        return render("account.html", 422, title=t("account.title"), error=error)
    session["stamp"] = service().identity.password_stamp(me().id)
    flash(t("account.changed"), "ok")
    return redirect(url_for("web.account"), 303)


# -- printers -------------------------------------------------------------------------------------


def viewer_context() -> dict[str, Any]:
    return {"viewer_id": me().id, "viewer_manager": me().role is Role.MANAGER}


@web.get("/")
def printers() -> Page:
    cards = [card(entry) for entry in service().board.printer_board()]
    return render(
        "printers.html", title=t("printers.title"), page="printers", cards=cards, **viewer_context()
    )


@web.get("/printers/<printer_id>")
def printer(printer_id: str) -> Page:
    entry = next((e for e in service().board.printer_board() if e.printer.id == printer_id), None)
    if entry is None:
        raise NotFound(f"there is no printer with id {printer_id!r}", field="printer_id")
    if request.args.get("part") == "card":
        # One card for the printers page, which adds a printer enrolled while it is open.
        next_page = url_for("web.printers")
        return render("_card_part.html", c=card(entry), next=next_page, **viewer_context())
    return render(
        "printer.html",
        title=entry.printer.name,
        page="printers",
        c=card(entry),
        printer=entry.printer,
        **viewer_context(),
    )


@web.post("/printers/<printer_id>/bed-cleared")
def bed_cleared(printer_id: str) -> BaseResponse:
    cleared = service().printers.confirm_bed_cleared(me(), printer_id)
    flash(t("flash.bed_cleared", name=cleared.name), "ok")
    return back("/")


@web.post("/printers/<printer_id>/material")
def set_material(printer_id: str) -> BaseResponse:
    updated = service().printers.update_printer(
        me(), printer_id, {"material": request.form.get("material", "")}
    )
    flash(t("flash.material", name=updated.name, material=updated.material or "—"), "ok")
    return back(url_for("web.printer", printer_id=printer_id))


@web.post("/enroll-code")
def enroll_code() -> Page:
    ttl = CODE_TTLS.get(request.form.get("ttl", ""), CODE_TTLS["1d"])
    code, expires_at = service().enrollment.create_enrollment_code(me(), ttl)
    # Shown on this page only: never put into a redirect or the (readable) session cookie.
    return render("code.html", title=t("code.title"), page="printers", code=code, expires_at=expires_at)


# -- the queue and jobs ---------------------------------------------------------------------------


@web.get("/queue")
def queue() -> Page:
    entries = service().dispatcher.queue(me())
    context = {"entries": entries, **viewer_context()}
    if request.args.get("part") == "list":
        return render("_queue_list.html", **context)
    return render("queue.html", title=t("queue.title"), page="queue", **context)


@web.get("/jobs/<int:job_id>")
def job(job_id: int) -> Page:
    svc = service()
    found = svc.jobs.get_job(me(), job_id)
    history = svc.jobs.job_history(me(), job_id)
    explanation = None
    if found.state in (JobState.SUBMITTED, JobState.AWAITING_APPROVAL, JobState.QUEUED):
        explanation = next((e.explanation for e in svc.dispatcher.queue(me()) if e.job.id == job_id), None)
    manager = me().role is Role.MANAGER
    actions = []
    if manager and found.state is JobState.AWAITING_APPROVAL:
        actions += ["approve", "reject"]
    if found.state is JobState.PRINTING:
        actions.append("pause")
    if found.state is JobState.PAUSED:
        actions.append("resume")
    if found.state in CANCELLABLE:
        actions.append("cancel")
    return render(
        "job.html",
        title=t("job.title", id=job_id),
        page="queue",
        job=found,
        history=history,
        explanation=explanation,
        actions=actions,
        has_thumbnail=thumbnail(found) is not None,
        **viewer_context(),
    )


@web.get("/jobs/<int:job_id>/thumbnail")
def job_thumbnail(job_id: int) -> Response:
    found = thumbnail(service().jobs.get_job(me(), job_id))
    if found is None:
        raise NotFound(f"job {job_id}'s file has no preview image", key="no_thumbnail")
    data, mime = found
    return Response(data, mimetype=mime, headers={"Cache-Control": "private, max-age=3600"})


def _job_actions() -> dict[str, Callable[[Member, int], Any]]:
    svc = service()
    reason = request.form.get("reason", "")
    return {
        "approve": svc.jobs.approve_job,
        "reject": lambda actor, job_id: svc.jobs.reject_job(actor, job_id, reason),
        "pause": svc.jobs.pause_job,
        "resume": svc.jobs.resume_job,
        "cancel": lambda actor, job_id: svc.jobs.cancel_job(actor, job_id, reason),
    }


@web.post("/jobs/<int:job_id>/<action>")
def job_action(job_id: int, action: str) -> BaseResponse:
    act = _job_actions().get(action)
    if act is None:
        abort(404)
    act(me(), job_id)
    flash(t(f"flash.{action}", id=job_id), "ok")
    return back(url_for("web.job", job_id=job_id))


# -- submitting -----------------------------------------------------------------------------------


def _submit_form(**extra: Any) -> dict[str, Any]:
    lab = service().lab.settings()
    form = {
        "material": request.form.get("material", ""),
        "copies": request.form.get("copies", "1"),
        "note": request.form.get("note", ""),
    }
    return {
        "title": t("submit.title"),
        "page": "submit",
        "materials": MATERIALS,
        "max_copies": lab.max_copies,
        "form": form,
        **extra,
    }


def _form_error(error: FleetError) -> dict[str, Any]:
    shown = failure(error)
    return {"error": shown.text, "error_lang": shown.lang}


@web.get("/submit")
def submit() -> Page:
    return render("submit.html", **_submit_form())


@web.post("/submit")
def analyze() -> Page:
    """The first step: analyse the upload and show it; nothing is kept."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render("submit.html", 422, **_submit_form(error=t("submit.no_file")))
    try:
        material = check_material(request.form.get("material"))
        result = service().intake.analyze_upload(cast(BinaryIO, upload.stream), material=material).to_dict()
    except Invalid as exc:
        return render("submit.html", 422, **_submit_form(**_form_error(exc)))
    thumb = best_thumbnail(result.get("thumbnails") or [])
    preview = None
    if thumb is not None:
        preview = f"data:{thumb[1]};base64,{base64.b64encode(thumb[0]).decode('ascii')}"
    # The confirm step carries a key made now: a double click or a resent form queues the file once.
    key = secrets.token_urlsafe(24)
    return render(
        "submit.html",
        **_submit_form(analysis=result, preview=preview, filename=upload.filename, submission_key=key),
    )


@web.post("/submit/confirm")
def confirm_submit() -> Union[Page, BaseResponse]:
    """The second step: the browser sends the same file again with the member's choices."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render("submit.html", 422, **_submit_form(error=t("submit.no_file")))
    try:
        copies = int(request.form.get("copies", "1") or "1")
    except ValueError:
        return render("submit.html", 422, **_submit_form(error=t("submit.bad_copies")))
    try:
        submission = service().intake.submit_job(
            me(),
            cast(BinaryIO, upload.stream),
            filename=upload.filename,
            copies=copies,
            material=request.form.get("material") or None,
            note=request.form.get("note", ""),
            idempotency_key=request.form.get("submission_key") or None,
        )
    except Invalid as exc:
        return render("submit.html", 422, **_submit_form(**_form_error(exc)))
    ids = ", ".join(f"#{j.id}" for j in submission.jobs)
    flash(t("flash.submitted", ids=ids), "ok")
    return redirect(url_for("web.queue") + f"#job-{submission.jobs[0].id}", 303)


# -- history and statistics ----------------------------------------------------------------------


@web.get("/stats")
def stats() -> Page:
    svc = service()
    manager = me().role is Role.MANAGER
    figures = compute(
        svc.board.print_history(me()),
        svc.printers.list_printers(),
        svc.members.member_names(me()),
        now=svc.clock(),
        only_member=None if manager else me().id,
    )
    chart = {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_LEFT,
        "top": CHART_TOP,
        "base": CHART_HEIGHT - CHART_BOTTOM,
    }
    return render("stats.html", title=t("stats.title"), page="stats", stats=figures, chart=chart)


@web.app_template_global()
def day_label(epoch: float) -> str:
    return time.strftime("%d/%m", time.gmtime(epoch))


# -- manager pages: grants and the lab's rules ----------------------------------------------------


@web.get("/members")
def members() -> Page:
    svc = service()
    people = svc.members.list_members(me())  # managers only: anyone else gets 403 here
    grants = svc.members.all_grants(me())
    printers = sorted(svc.printers.list_printers(), key=lambda p: (p.name.lower(), p.id))
    return render(
        "members.html",
        title=t("members.title"),
        page="members",
        people=people,
        grants=grants,
        printers=printers,
        restricted=[p for p in printers if p.restricted],
    )


@web.post("/members/<int:member_id>/grants")
def member_grants(member_id: int) -> BaseResponse:
    svc = service()
    svc.identity.require_manager(me())
    member = svc.members.get_member(me(), member_id)
    wanted = set(request.form.getlist("printer"))
    held = svc.members.grants_for(me(), member_id)
    for printer in svc.printers.list_printers():
        if not printer.restricted:
            continue
        if printer.id in wanted and printer.id not in held:
            svc.members.grant(me(), member_id, printer.id)
        elif printer.id not in wanted and printer.id in held:
            svc.members.revoke_grant(me(), member_id, printer.id)
    flash(t("flash.grants", name=member.name), "ok")
    return redirect(url_for("web.members") + f"#member-{member_id}", 303)


def _whole_or_text(value: str) -> Union[int, str]:
    """A form's whole number, or the text as typed (the service then names the field in its error)."""
    try:
        return int(value.strip())
    except ValueError:
        return value


def _number_or_text(value: str) -> Union[float, str]:
    try:
        number = float(value.strip())
    except ValueError:
        return value
    return number if math.isfinite(number) else value


def _settings_changes() -> dict[str, Any]:
    form = request.form
    refused = [c for c in form.get("refused_commands", "").replace(",", " ").split() if c]
    limits: dict[str, dict[str, Union[float, str]]] = {}
    for material in form.getlist("material"):
        limits[material] = {
            "hotend_max_c": _number_or_text(form.get(f"hotend.{material}", "")),
            "bed_max_c": _number_or_text(form.get(f"bed.{material}", "")),
        }
    return {
        "approval_required": form.get("approval_required") == "on",
        "max_upload_bytes": _whole_or_text(form.get("max_upload_bytes", "")),
        "rules": {"refused_commands": refused, "material_limits": limits},
    }


@web.route("/settings", methods=["GET", "POST"])
def settings() -> Union[Page, BaseResponse]:
    svc = service()
    svc.identity.require_manager(me())
    if request.method == "GET":
        return render("settings.html", title=t("settings.title"), page="settings", lab=svc.lab.settings())
    try:
        svc.lab.update(me(), _settings_changes())
    except Invalid as exc:
        return render(
            "settings.html",
            422,
            title=t("settings.title"),
            page="settings",
            lab=svc.lab.settings(),
            form=request.form,
            error_field=exc.field,
            **_form_error(exc),
        )
    flash(t("flash.settings"), "ok")
    return redirect(url_for("web.settings"), 303)


# -- live updates ---------------------------------------------------------------------------------


@web.get("/events")
def events() -> Response:
    board = dashboard()
    sub = board.hub.subscribe()
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    if sub is None:
        # Full: the browser tries again later instead of holding one of the server's threads.
        return Response(f"retry: {board.busy_retry_ms}\n\n", mimetype="text/event-stream", headers=headers)
    # Waitress tells when the browser has gone (it reads ahead on the connection), so a closed tab frees
    # its place among the live clients at once rather than at the next heartbeat.
    gone = request.environ.get("waitress.client_disconnected")
    stream = event_stream(
        board.hub,
        sub,
        lifetime_s=board.stream_lifetime_s,
        heartbeat_s=board.heartbeat_s,
        clock=time.monotonic,
        disconnected=gone if callable(gone) else (lambda: False),
    )
    return Response(stream, mimetype="text/event-stream", headers=headers)
