"""/api/v1 printers: register, read and change them, enroll a node, job files and plate photos."""

from __future__ import annotations

from flask import Response, jsonify, request, send_file

from ..errors import TooLarge, Unauthorized
from .blueprint import (
    PRINTER_TOKEN,
    PUBLIC,
    body,
    client_address,
    limits,
    me,
    query,
    refuse_while_limited,
    service,
    spec,
    this_printer,
)
from .shapes import printers as shape
from .shapes.base import next_cursor

PRINTER = "/printers/<printer_id>"

#: The job file: bytes as uploaded, with their hash in a header.
GCODE_FILE = {
    "headers": {
        "X-Content-SHA256": {
            "description": "SHA-256 of the body, lowercase hex",
            "schema": {"type": "string"},
        },
        "Content-Length": {"schema": {"type": "integer"}},
    },
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}


@spec.route(
    "GET",
    "/printers",
    "The printers a page at a time, in id order",
    shape.Printers,
    errors=(401, 422),
    query=shape.PrintersQuery,
)
def list_printers() -> Response:
    svc = service()
    asked = query(shape.PrintersQuery)
    page = svc.printers.printer_page(after=asked.cursor, limit=asked.limit)
    return jsonify(
        printers=[shape.Printer.of(p, svc.reports.live(p.id)).to_json() for p in page.items],
        next_cursor=next_cursor(page.next_after),
    )


@spec.route(
    "POST",
    "/printers",
    "Register a printer (managers)",
    shape.Printer,
    status=201,
    answer_text="Created",
    errors=(401, 403, 409, 422),
    body=shape.NewPrinter,
)
def add_printer() -> tuple[Response, int]:
    service().identity.require_manager(me())  # who may, before what they sent
    new = body(shape.NewPrinter)
    return jsonify(shape.Printer.of(service().printers.add_printer(me(), new.value())).to_json()), 201


@spec.route("GET", PRINTER, "A printer", shape.Printer, errors=(401, 404))
def get_printer(printer_id: str) -> Response:
    svc = service()
    return jsonify(
        shape.Printer.of(svc.printers.get_printer(printer_id), svc.reports.live(printer_id)).to_json()
    )


@spec.route(
    "PATCH",
    PRINTER,
    "Change a printer: name, material, nozzle, volume, restricted, maintenance (managers)",
    shape.Printer,
    errors=(401, 403, 404, 409, 422),
    body=shape.PrinterChanges,
)
def update_printer(printer_id: str) -> Response:
    service().identity.require_manager(me())  # who may, before what they sent
    changes = body(shape.PrinterChanges).value()
    return jsonify(shape.Printer.of(service().printers.update_printer(me(), printer_id, changes)).to_json())


@spec.route(
    "POST",
    PRINTER + "/bed-cleared",
    "Confirm the printer's plate is clear (a manager, or the member whose print was on it)",
    shape.Printer,
    errors=(401, 403, 404, 409),
)
def bed_cleared(printer_id: str) -> Response:
    return jsonify(shape.Printer.of(service().printers.confirm_bed_cleared(me(), printer_id)).to_json())


@spec.route(
    "POST",
    PRINTER + "/revoke",
    "Revoke an enrolled printer's credentials (managers): it can no longer connect or download; a job it "
    "held becomes unknown and the printer goes into maintenance (on a shared broker its login is removed "
    "first: 503 if that broker cannot be reached, and nothing is changed)",
    shape.Printer,
    errors=(401, 403, 404, 409, 503),
)
def revoke_printer_credentials(printer_id: str) -> Response:
    return jsonify(shape.Printer.of(service().enrollment.revoke_printer(me(), printer_id)).to_json())


@spec.route(
    "GET",
    PRINTER + "/jobs/<int:job_id>/file",
    "Download a dispatched job's G-code (printer token only; only the printer the job is on)",
    GCODE_FILE,
    answer_text="The file, as uploaded",
    errors=(401, 403, 404),
    security=PRINTER_TOKEN,
)
def job_file(printer_id: str, job_id: int) -> Response:
    job, path = service().enrollment.job_file(this_printer(), printer_id, job_id)
    response = send_file(path, mimetype="application/octet-stream", conditional=False, etag=False)
    response.headers["X-Content-SHA256"] = job.file_sha256
    return response


@spec.route(
    "PUT",
    PRINTER + "/jobs/<int:job_id>/snapshot",
    "Send the photo of the plate taken after a job (printer token only; the printer the job ran on; "
    "the body is the JPEG or PNG image itself, at most the lab's snapshot_max_bytes)",
    None,
    status=204,
    answer_text="Kept; the job's page shows it",
    errors=(401, 403, 404, 413, 422),
    security=PRINTER_TOKEN,
)
def job_snapshot_upload(printer_id: str, job_id: int) -> tuple[str, int]:
    snapshots = service().snapshots
    limit = snapshots.max_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        raise TooLarge(
            f"the snapshot is {declared} bytes; this lab takes at most {limit} bytes "
            "(a manager sets snapshot_max_bytes)",
            field="snapshot",
        )
    data = request.stream.read(limit + 1)
    snapshots.receive(this_printer(), printer_id, job_id, data)
    return "", 204


@spec.route(
    "POST",
    PRINTER + "/snapshot",
    "Ask the printer for a photo of its plate now (managers); it is filed under the job on the plate",
    None,
    status=202,
    answer_text="Asked; the photo shows on the job's page once the printer sends it",
    errors=(401, 403, 404, 409, 503),
)
def ask_snapshot(printer_id: str) -> tuple[str, int]:
    service().snapshots.ask(me(), printer_id)
    return "", 202


@spec.route(
    "GET",
    PRINTER + "/unfit",
    "The waiting jobs no printer can take that this printer's profile cannot either, with why (printer "
    "token only; that printer's own): what its owner would need; no member or file names",
    shape.UnfitJobs,
    errors=(401, 403),
    security=PRINTER_TOKEN,
)
def unfit_jobs(printer_id: str) -> Response:
    unfit = service().dispatcher.unfit_for(this_printer(), printer_id)
    return jsonify(
        shape.UnfitJobs(
            jobs=[shape.UnfitJob(job_id=u.job_id, reason=u.reason, key=u.key, params=u.params) for u in unfit]
        ).to_json()
    )


@spec.route(
    "POST",
    "/enroll-codes",
    "Make a single-use code for enrolling one printer (managers); only its hash is kept",
    shape.EnrollCode,
    status=201,
    answer_text="Created",
    errors=(401, 403, 422),
    body=shape.NewEnrollCode,
    body_required=False,
)
def create_enroll_code() -> tuple[Response, int]:
    service().identity.require_manager(me())  # who may, before what they sent
    ttl_s = body(shape.NewEnrollCode).ttl_s
    code, expires_at = service().enrollment.create_enrollment_code(me(), ttl_s)
    return jsonify(shape.EnrollCode(code=code, expires_at=expires_at).to_json()), 201


@spec.route(
    "POST",
    "/printers/enroll",
    "Enroll a printer with a manager's code (no member token: the code is the proof)",
    shape.EnrollmentAnswer,
    status=201,
    answer_text="Enrolled",
    errors=(401, 422, 503),
    body=shape.Enroll,
    security=PUBLIC,
)
def enroll_printer() -> tuple[Response, int]:
    limiter = limits().enrollment
    refuse_while_limited(limiter, "wrong enrollment codes")
    asked = body(shape.Enroll)
    try:
        enrollment = service().enrollment.enroll(asked.value())
    except Unauthorized:
        limiter.failed(client_address())
        raise
    return jsonify(enrollment.answer.to_json()), 201
