"""The REST API under /api/v1: JSON in and out, bearer tokens, one error shape."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Any, BinaryIO, Optional, cast

from flask import Blueprint, Response, current_app, g, jsonify, request, send_file

from ..app import FleetApp
from ..app.intake import check_idempotency_key
from ..auth import parse_bearer
from ..errors import Invalid, NotFound, RateLimited, Unauthorized
from ..models import Member, Printer, Role
from ..states import JobState
from ..web.limiter import StoredLimiter
from .openapi import openapi_document
from .serialize import (
    enrollment_json,
    event_json,
    explanation_json,
    iso,
    job_json,
    member_json,
    parse_json_object,
    printer_json,
)

api = Blueprint("api_v1", __name__, url_prefix="/api/v1")

#: Endpoints anyone may call without a token (enrolling: the enrollment code in the body is the proof).
PUBLIC_ENDPOINTS = {"api_v1.health", "api_v1.openapi", "api_v1.enroll_printer"}
#: Endpoints for enrolled printers: a printer's token, never a member's.
PRINTER_ENDPOINTS = {"api_v1.job_file"}


@dataclass(frozen=True)
class ApiLimits:
    """Failed attempts the API counts per remote address, each with its own limit (and scope)."""

    #: Wrong enrollment codes (``POST /printers/enroll``).
    enrollment: StoredLimiter
    #: Bearer tokens (members' or printers') that did not authenticate.
    tokens: StoredLimiter


def service() -> FleetApp:
    svc: FleetApp = current_app.extensions["crowdfab.service"]
    return svc


def limits() -> ApiLimits:
    found: ApiLimits = current_app.extensions["crowdfab.api_limits"]
    return found


def client_address() -> str:
    return request.remote_addr or "unknown"


def refuse_while_limited(limiter: StoredLimiter, what: str) -> None:
    """:class:`RateLimited` (429, with the wait) while this address has too many recent failures.

    Checked before the attempt is looked at, so a guess made while limited tells nothing (and only
    reads the database: a limited client adds no rows).
    """
    wait = limiter.wait_s(client_address())
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise RateLimited(
            f"too many {what} from this address: wait {seconds} s before trying again",
            details={"retry_after_s": seconds},
        )


def me() -> Member:
    member: Member = g.member
    return member


def this_printer() -> Printer:
    printer: Printer = g.printer
    return printer


@api.before_request
def authenticate() -> None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    token = parse_bearer(request.headers.get("Authorization"))
    limiter = limits().tokens
    # A request without a token is no guess: it is only told how to sign in, and not counted.
    if token is not None:
        refuse_while_limited(limiter, "requests with an invalid API token")
    try:
        if request.endpoint in PRINTER_ENDPOINTS:
            g.printer = service().enrollment.authenticate_printer(token)
        else:
            g.member = service().identity.authenticate(token)
    except Unauthorized:
        # A success never clears the count: one valid token must not buy an address more guesses.
        if token is not None:
            limiter.failed(client_address())
        raise


def json_body() -> dict[str, Any]:
    data = request.get_data(cache=True)
    if not data:
        return {}
    if not request.is_json:
        raise Invalid("the request body must be JSON (Content-Type: application/json)")
    return parse_json_object(data)


def int_field(raw: Optional[str], name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be a whole number", field=name) from None
    if abs(value) >= 10**18:  # the database stores below 2^63; a larger one would fail there
        raise Invalid(f"{name} must be a whole number of at most 18 digits", field=name)
    return value


def states_param() -> Optional[frozenset[JobState]]:
    raw = request.args.get("state")
    if not raw:
        return None
    try:
        return frozenset(JobState(s) for s in raw.split(","))
    except ValueError:
        allowed = ", ".join(s.value for s in JobState)
        raise Invalid(f"state must be one or more of: {allowed}", field="state") from None


# -- meta -----------------------------------------------------------------------------------------


@api.get("/health")
def health() -> Response:
    return jsonify(status="ok")


@api.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())


@api.get("/metrics")
def metrics() -> Response:
    service().identity.require_manager(me())
    return jsonify(service().metrics.snapshot())


@api.get("/me")
def whoami() -> Response:
    return jsonify(member_json(me()))


# -- jobs -----------------------------------------------------------------------------------------


def unquote_sf_string(raw: str) -> str:
    """The text of a Structured Field String (RFC 8941): ``"…"``, with only ``\\"`` and ``\\\\`` escaped."""
    bad = Invalid(
        'the Idempotency-Key header must be a quoted string ("…", escaping only \\" and \\\\) or a bare key',
        field="Idempotency-Key",
    )
    if len(raw) < 2 or not raw.endswith('"'):
        raise bad
    out: list[str] = []
    chars = iter(raw[1:-1])
    for ch in chars:
        if ch == "\\":
            ch = next(chars, "")
            if ch not in ('"', "\\"):
                raise bad
        elif ch == '"':
            raise bad
        out.append(ch)
    return "".join(out)


def idempotency_key() -> Optional[str]:
    """The ``Idempotency-Key`` header's key, or None without one.

    The httpapi draft makes it a Structured Field String (``"…"``); a bare token is taken as is.
    """
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    if raw.startswith('"'):
        raw = unquote_sf_string(raw)
    return check_idempotency_key(raw)


@api.post("/jobs")
def submit_job() -> tuple[Response, int, dict[str, str]]:
    upload = request.files.get("file")
    if upload is None:
        raise Invalid("send the G-code as a multipart form field named 'file'", field="file")
    submission = service().intake.submit_job(
        me(),
        cast(BinaryIO, upload.stream),  # a file-like of bytes (werkzeug types it as IO[bytes])
        filename=upload.filename,
        copies=int_field(request.form.get("copies"), "copies", 1),
        material=request.form.get("material") or None,
        note=request.form.get("note", ""),
        idempotency_key=idempotency_key(),
    )
    body = {
        "jobs": [job_json(j, me()) for j in submission.jobs],
        "analysis": submission.analysis.to_dict(),
    }
    return jsonify(body), 201, {"Location": f"/api/v1/jobs/{submission.jobs[0].id}"}


@api.post("/analyze")
def analyze() -> Response:
    upload = request.files.get("file")
    if upload is None:
        raise Invalid("send the G-code as a multipart form field named 'file'", field="file")
    analysis = service().intake.analyze_upload(
        cast(BinaryIO, upload.stream), material=request.form.get("material") or None
    )
    return jsonify(analysis.to_dict())


@api.get("/jobs")
def list_jobs() -> Response:
    member_id = request.args.get("member_id")
    jobs = service().jobs.list_jobs(
        me(), states=states_param(), member_id=int_field(member_id, "member_id", 0) if member_id else None
    )
    return jsonify(jobs=[job_json(j, me()) for j in jobs])


@api.get("/jobs/mine")
def my_jobs() -> Response:
    svc = service()
    jobs = svc.jobs.my_jobs(me(), states=states_param())
    waiting = {e.job.id: e.explanation for e in svc.dispatcher.queue(me())}
    out = []
    for job in jobs:
        body = job_json(job, me())
        if job.id in waiting:
            body["explanation"] = explanation_json(waiting[job.id])
        out.append(body)
    return jsonify(jobs=out)


@api.get("/queue")
def queue() -> Response:
    entries = service().dispatcher.queue(me())
    return jsonify(
        queue=[
            {
                **job_json(e.job, me(), member_name=e.member_name),
                "explanation": explanation_json(e.explanation),
            }
            for e in entries
        ]
    )


@api.get("/jobs/<int:job_id>")
def get_job(job_id: int) -> Response:
    svc = service()
    job = svc.jobs.get_job(me(), job_id)
    body = job_json(job, me())
    body["history"] = [event_json(e) for e in svc.jobs.job_history(me(), job_id)]
    return jsonify(body)


@api.get("/jobs/<int:job_id>/thumbnail")
def job_thumbnail(job_id: int) -> Response:
    job = service().jobs.get_job(me(), job_id)
    thumbs = job.analysis.get("thumbnails") or []
    if not thumbs:
        raise NotFound(f"job {job_id}'s file has no embedded thumbnail")
    best = max(thumbs, key=lambda t: int(t.get("width", 0)) * int(t.get("height", 0)))
    mime = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "qoi": "image/qoi"}.get(
        str(best.get("format", "png")).lower(), "application/octet-stream"
    )
    return send_file(io.BytesIO(base64.b64decode(best["data"])), mimetype=mime)


@api.post("/jobs/<int:job_id>/cancel")
def cancel_job(job_id: int) -> Response:
    reason = json_body().get("reason", "")
    job = service().jobs.cancel_job(me(), job_id, reason if isinstance(reason, str) else "")
    return jsonify(job_json(job, me()))


@api.post("/jobs/<int:job_id>/pause")
def pause_job(job_id: int) -> tuple[Response, int]:
    return jsonify(job_json(service().jobs.pause_job(me(), job_id), me())), 202


@api.post("/jobs/<int:job_id>/resume")
def resume_job(job_id: int) -> tuple[Response, int]:
    return jsonify(job_json(service().jobs.resume_job(me(), job_id), me())), 202


@api.post("/jobs/<int:job_id>/approve")
def approve_job(job_id: int) -> Response:
    return jsonify(job_json(service().jobs.approve_job(me(), job_id), me()))


@api.post("/jobs/<int:job_id>/reject")
def reject_job(job_id: int) -> Response:
    reason = json_body().get("reason", "")
    job = service().jobs.reject_job(me(), job_id, reason if isinstance(reason, str) else "")
    return jsonify(job_json(job, me()))


@api.put("/jobs/<int:job_id>/priority")
def set_priority(job_id: int) -> Response:
    body = json_body()
    if "priority" not in body:
        raise Invalid('send {"priority": N}', field="priority")
    return jsonify(job_json(service().jobs.set_priority(me(), job_id, body["priority"]), me()))


# -- printers -------------------------------------------------------------------------------------


@api.get("/printers")
def list_printers() -> Response:
    svc = service()
    return jsonify(printers=[printer_json(p, svc.reports.live(p.id)) for p in svc.printers.list_printers()])


@api.post("/printers")
def add_printer() -> tuple[Response, int]:
    return jsonify(printer_json(service().printers.add_printer(me(), json_body()))), 201


@api.get("/printers/<printer_id>")
def get_printer(printer_id: str) -> Response:
    svc = service()
    return jsonify(printer_json(svc.printers.get_printer(printer_id), svc.reports.live(printer_id)))


@api.patch("/printers/<printer_id>")
def update_printer(printer_id: str) -> Response:
    return jsonify(printer_json(service().printers.update_printer(me(), printer_id, json_body())))


@api.post("/printers/<printer_id>/bed-cleared")
def bed_cleared(printer_id: str) -> Response:
    return jsonify(printer_json(service().printers.confirm_bed_cleared(me(), printer_id)))


@api.post("/printers/<printer_id>/revoke")
def revoke_printer_credentials(printer_id: str) -> Response:
    return jsonify(printer_json(service().enrollment.revoke_printer(me(), printer_id)))


@api.get("/printers/<printer_id>/jobs/<int:job_id>/file")
def job_file(printer_id: str, job_id: int) -> Response:
    job, path = service().enrollment.job_file(this_printer(), printer_id, job_id)
    response = send_file(path, mimetype="application/octet-stream", conditional=False, etag=False)
    response.headers["X-Content-SHA256"] = job.file_sha256
    return response


# -- enrollment -----------------------------------------------------------------------------------


@api.post("/enroll-codes")
def create_enroll_code() -> tuple[Response, int]:
    ttl = json_body().get("ttl_s", 86400)
    code, expires_at = service().enrollment.create_enrollment_code(me(), ttl)
    return jsonify(code=code, expires_at=iso(expires_at)), 201


@api.post("/printers/enroll")
def enroll_printer() -> tuple[Response, int]:
    limiter = limits().enrollment
    refuse_while_limited(limiter, "wrong enrollment codes")
    body = json_body()
    try:
        enrollment = service().enrollment.enroll(body.get("code"), body.get("name"), body.get("capabilities"))
    except Unauthorized:
        limiter.failed(client_address())
        raise
    return jsonify(enrollment_json(enrollment)), 201


# -- members --------------------------------------------------------------------------------------


@api.get("/members")
def list_members() -> Response:
    return jsonify(members=[member_json(m) for m in service().members.list_members(me())])


@api.post("/members")
def create_member() -> tuple[Response, int]:
    body = json_body()
    try:
        role = Role(body.get("role", "member"))
    except ValueError:
        raise Invalid("role must be 'member' or 'manager'", field="role") from None
    approval = body.get("requires_approval")
    if approval is not None and not isinstance(approval, bool):
        raise Invalid("requires_approval must be true, false or null", field="requires_approval")
    member, token = service().members.create_member(
        me(), body.get("name", ""), role, requires_approval=approval
    )
    return jsonify({**member_json(member), "token": token}), 201


@api.get("/members/<int:member_id>")
def get_member(member_id: int) -> Response:
    svc = service()
    member = svc.members.get_member(me(), member_id)
    return jsonify({**member_json(member), "printers": sorted(svc.members.grants_for(me(), member_id))})


@api.patch("/members/<int:member_id>")
def update_member(member_id: int) -> Response:
    return jsonify(member_json(service().members.update_member(me(), member_id, json_body())))


@api.post("/members/<int:member_id>/token")
def reissue_token(member_id: int) -> Response:
    return jsonify(token=service().members.new_token_for(me(), member_id))


@api.put("/members/<int:member_id>/password")
def set_password(member_id: int) -> tuple[str, int]:
    service().identity.set_password(me(), member_id, json_body().get("password"))
    return "", 204


@api.put("/members/<int:member_id>/printers/<printer_id>")
def grant_printer(member_id: int, printer_id: str) -> Response:
    svc = service()
    svc.members.grant(me(), member_id, printer_id)
    return jsonify(printers=sorted(svc.members.grants_for(me(), member_id)))


@api.delete("/members/<int:member_id>/printers/<printer_id>")
def revoke_printer(member_id: int, printer_id: str) -> Response:
    svc = service()
    svc.members.revoke_grant(me(), member_id, printer_id)
    return jsonify(printers=sorted(svc.members.grants_for(me(), member_id)))


# -- lab settings ---------------------------------------------------------------------------------


@api.get("/settings")
def get_settings() -> Response:
    return jsonify(service().lab.settings().to_dict())


@api.patch("/settings")
def update_settings() -> Response:
    return jsonify(service().lab.update(me(), json_body()).to_dict())
