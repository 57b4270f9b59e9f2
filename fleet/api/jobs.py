"""/api/v1 jobs: submit, list a page at a time, read, and act on jobs."""

from __future__ import annotations

import io
from typing import Any, BinaryIO, Optional, cast

from flask import Response, jsonify, request, send_file

from ..app.intake import check_idempotency_key
from ..errors import Invalid, NotFound
from ..gcode.results import Thumbnail
from ..gcode.threemf import choosing_plate
from ..http_protocol import IDEMPOTENCY_KEY as IDEMPOTENCY_KEY_HEADER
from ..http_protocol import job_path, unquote_idempotency_key
from ..models import Job, JobFilter
from .blueprint import body, me, query, service, spec
from .shapes import jobs as shape
from .shapes.base import PageQuery, next_cursor
from .shapes.economy import Cost

JOB = "/jobs/<int:job_id>"

#: The IETF httpapi draft's header: a retry of a submission whose answer was lost queues nothing twice.
IDEMPOTENCY_KEY = {
    "name": IDEMPOTENCY_KEY_HEADER,
    "in": "header",
    "required": False,
    "description": (
        "A fresh random value (a UUID, say) for each new submission; 1 to 128 printable ASCII "
        'characters, bare or as a quoted string ("…"). Keys are per member and kept for 24 hours. '
        "Sending the same key with the same request again answers 201 with the jobs the first "
        "request made, creating nothing; the same key with another file, copies, material or note "
        "is refused with 422."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 130},
}
#: How an API client chooses the plate of a sliced 3MF file with several.
CHOOSE_PLATE = "send the form field plate with the number of the one to print (such as plate={plate})"
IMAGE: dict[str, Any] = {
    "content": {mime: {} for mime in ("image/png", "image/jpeg", "image/qoi", "application/octet-stream")}
}


def idempotency_key() -> Optional[str]:
    """The key in the ``Idempotency-Key`` header (quoted or bare), or None without one."""
    raw = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if raw is None:
        return None
    return check_idempotency_key(unquote_idempotency_key(raw))


def uploaded_file() -> BinaryIO:
    upload = request.files.get("file")
    if upload is None:
        raise Invalid("send the G-code as a multipart form field named 'file'", field="file")
    return cast(BinaryIO, upload.stream)  # a file-like of bytes (werkzeug types it as IO[bytes])


def job_json(job: Any, **extra: Any) -> dict[str, Any]:
    return shape.Job.of(job, me(), **extra).to_json()


@spec.route(
    "POST",
    "/jobs",
    "Submit a G-code file: analysed, checked against the lab's rules, queued (one job per copy)",
    shape.SubmissionAnswer,
    status=201,
    answer_text="Created; or, for a repeat of an earlier request's Idempotency-Key, that request's jobs "
    "(nothing is created)",
    errors=(401, 413, 422, 507),
    upload=shape.SubmitForm,
    headers=(IDEMPOTENCY_KEY,),
)
def submit_job() -> tuple[Response, int, dict[str, str]]:
    stream = uploaded_file()
    form = shape.SubmitForm.parse(request.form.to_dict())
    try:
        submission = service().intake.submit_job(
            me(),
            stream,
            filename=request.files["file"].filename,
            copies=form.copies,
            material=form.material or None,
            note=form.note,
            idempotency_key=idempotency_key(),
            plate=form.plate,
            colour=form.colour or None,
        )
    except Invalid as exc:
        raise choosing_plate(exc, CHOOSE_PLATE) from None
    analysis = shape.Analysis.of(submission.analysis).model_copy(
        update={"estimated_cost": estimated_cost(submission.analysis, form.material or None)}
    )
    answer = shape.SubmissionAnswer(jobs=[shape.Job.of(j, me()) for j in submission.jobs], analysis=analysis)
    return jsonify(answer.to_json()), 201, {"Location": job_path(submission.jobs[0].id)}


@spec.route(
    "POST",
    "/analyze",
    "Analyse a G-code file without queuing it",
    shape.Analysis,
    errors=(401, 413, 422, 507),
    upload=shape.AnalyzeForm,
)
def analyze() -> Response:
    stream = uploaded_file()
    form = shape.AnalyzeForm.parse(request.form.to_dict())
    try:
        analysis = service().intake.analyze_upload(stream, material=form.material or None, plate=form.plate)
    except Invalid as exc:
        raise choosing_plate(exc, CHOOSE_PLATE) from None
    answer = shape.Analysis.of(analysis).model_copy(
        update={"estimated_cost": estimated_cost(analysis, form.material or None)}
    )
    return jsonify(answer.to_json())


def estimated_cost(analysis: Any, material: Optional[str]) -> Cost:
    """What an analysed upload should cost at today's prices (shown before the member confirms)."""
    return Cost.of(service().pricing.estimate(analysis.to_dict(), material))


#: A command passed on to the job's printer: answered once sent; the job changes when the printer reports.
SENT_TO_PRINTER: dict[str, Any] = dict(
    status=202, answer_text="Sent to the printer", errors=(401, 403, 404, 409, 503)
)
#: A decision on a job that may say why in the body (kept in the job's history).
OPTIONAL_REASON: dict[str, Any] = dict(
    errors=(401, 403, 404, 409, 422), body=shape.Reason, body_required=False
)


def page_of(where: JobFilter, asked: shape.MyJobsQuery) -> tuple[list[Job], Optional[str]]:
    page = service().jobs.jobs_page(me(), where, after=asked.cursor, limit=asked.limit)
    return page.jobs, next_cursor(page.next_after)


@spec.route(
    "GET",
    "/jobs",
    "Jobs a page at a time, oldest first (managers: all, or one member's with member_id; members: "
    "their own member_id)",
    shape.Jobs,
    errors=(401, 403, 422),
    query=shape.JobsQuery,
)
def list_jobs() -> Response:
    asked = query(shape.JobsQuery)
    jobs, cursor = page_of(asked.job_filter(asked.member_id), asked)
    return jsonify(jobs=[job_json(j) for j in jobs], next_cursor=cursor)


@spec.route(
    "GET",
    "/jobs/mine",
    "My jobs a page at a time, oldest first; waiting ones with their explanation",
    shape.Jobs,
    errors=(401, 422),
    query=shape.MyJobsQuery,
)
def my_jobs() -> Response:
    asked = query(shape.MyJobsQuery)
    jobs, cursor = page_of(asked.job_filter(me().id), asked)
    waiting = {e.job.id: e.explanation for e in service().dispatcher.queue(me())} if jobs else {}
    out = []
    for job in jobs:
        if job.id in waiting:
            out.append(job_json(job, explanation=shape.Explanation.of(waiting[job.id])))
        else:
            out.append(job_json(job))
    return jsonify(jobs=out, next_cursor=cursor)


@spec.route(
    "GET",
    "/queue",
    "Every waiting job in queue order, each with why it stands where it does",
    shape.Queue,
    errors=(401,),
)
def queue() -> Response:
    entries = service().dispatcher.queue(me())
    return jsonify(
        queue=[
            job_json(e.job, member_name=e.member_name, explanation=shape.Explanation.of(e.explanation))
            for e in entries
        ]
    )


@spec.route("GET", JOB, "A job with the first page of its history", shape.Job, errors=(401, 403, 404))
def get_job(job_id: int) -> Response:
    svc = service()
    job = svc.jobs.get_job(me(), job_id)
    history = svc.jobs.history_page(me(), job_id)
    return jsonify(
        job_json(
            job,
            history=[shape.Event.of(e) for e in history.items],
            history_next_cursor=next_cursor(history.next_after),
        )
    )


@spec.route(
    "GET",
    JOB + "/history",
    "A job's history a page at a time, oldest first (its member, or managers)",
    shape.History,
    errors=(401, 403, 404, 422),
    query=PageQuery,
)
def job_history(job_id: int) -> Response:
    asked = query(PageQuery)
    page = service().jobs.history_page(me(), job_id, after=asked.cursor, limit=asked.limit)
    return jsonify(
        shape.History(
            events=[shape.Event.of(e) for e in page.items], next_cursor=next_cursor(page.next_after)
        ).to_json()
    )


@spec.route(
    "GET",
    JOB + "/thumbnail",
    "The file's largest embedded thumbnail",
    IMAGE,
    answer_text="The image",
    errors=(401, 403, 404),
)
def job_thumbnail(job_id: int) -> Response:
    job = service().jobs.get_job(me(), job_id)
    thumbs = job.analysis.get("thumbnails") or []
    if not thumbs:
        raise NotFound(f"job {job_id}'s file has no embedded thumbnail")
    best = Thumbnail.from_dict(max(thumbs, key=lambda t: int(t.get("width", 0)) * int(t.get("height", 0))))
    mime = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "qoi": "image/qoi"}.get(
        best.format.lower(), "application/octet-stream"
    )
    return send_file(io.BytesIO(best.data), mimetype=mime)


@spec.route(
    "GET",
    JOB + "/snapshot",
    "The photo of the plate the printer took after the job (whoever may see the job)",
    IMAGE,
    answer_text="The image",
    errors=(401, 403, 404),
)
def job_snapshot(job_id: int) -> Response:
    found = service().snapshots.for_job(me(), job_id)
    return Response(found.data, mimetype=found.media_type, headers={"Cache-Control": "private, no-cache"})


@spec.route(
    "POST",
    JOB + "/cancel",
    "Cancel a job (members: their own; managers: any)",
    shape.Job,
    **OPTIONAL_REASON,
)
def cancel_job(job_id: int) -> Response:
    reason = body(shape.Reason).reason
    return jsonify(job_json(service().jobs.cancel_job(me(), job_id, reason)))


@spec.route(
    "POST",
    JOB + "/pause",
    "Ask the printer to pause a printing job (its member, or managers); the job becomes paused when the "
    "printer reports it",
    shape.Job,
    **SENT_TO_PRINTER,
)
def pause_job(job_id: int) -> tuple[Response, int]:
    return jsonify(job_json(service().jobs.pause_job(me(), job_id))), 202


@spec.route(
    "POST",
    JOB + "/resume",
    "Ask the printer to resume a paused job (its member, or managers)",
    shape.Job,
    **SENT_TO_PRINTER,
)
def resume_job(job_id: int) -> tuple[Response, int]:
    return jsonify(job_json(service().jobs.resume_job(me(), job_id))), 202


@spec.route(
    "POST",
    JOB + "/approve",
    "Approve a job awaiting approval (managers)",
    shape.Job,
    errors=(401, 403, 404, 409),
)
def approve_job(job_id: int) -> Response:
    return jsonify(job_json(service().jobs.approve_job(me(), job_id)))


@spec.route(
    "POST",
    JOB + "/reject",
    "Reject a job awaiting approval (managers)",
    shape.Job,
    **OPTIONAL_REASON,
)
def reject_job(job_id: int) -> Response:
    reason = body(shape.Reason).reason
    return jsonify(job_json(service().jobs.reject_job(me(), job_id, reason)))


@spec.route(
    "PUT",
    JOB + "/priority",
    "Set a waiting job's priority, -100 to 100 (managers)",
    shape.Job,
    errors=(401, 403, 404, 409, 422),
    body=shape.Priority,
)
def set_priority(job_id: int) -> Response:
    service().identity.require_manager(me())  # who may, before what they sent
    priority = body(shape.Priority).priority
    return jsonify(job_json(service().jobs.set_priority(me(), job_id, priority)))
