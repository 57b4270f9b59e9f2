"""Submitting a print: analyse the upload and show it, then queue it on confirmation."""

from __future__ import annotations

import base64
import secrets
from typing import Any, BinaryIO, Optional, Union, cast

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ...app.checks import check_material
from ...app.intake import MAX_PLATE, plate_from_form
from ...errors import Invalid
from ...gcode.threemf import SEVERAL_PLATES
from ..cards import best_thumbnail
from .base import MATERIALS, Page, form_error, me, render, service, t, web
from .economy import cost_lines, money


def _submit_form(**extra: Any) -> dict[str, Any]:
    lab = service().lab.settings()
    form = {
        "material": request.form.get("material", ""),
        "colour": request.form.get("colour", ""),
        "copies": request.form.get("copies", "1"),
        "note": request.form.get("note", ""),
        "plate": request.form.get("plate", ""),
    }
    return {
        "title": t("submit.title"),
        "page": "submit",
        "materials": MATERIALS,
        "colours": sorted(
            {s.colour_name for s in service().spools.loaded_spools().values()}, key=str.casefold
        ),
        "max_copies": lab.max_copies,
        "form": form,
        "plates": _known_plates(),
        **extra,
    }


def _known_plates() -> list[int]:
    """The plates of the archive being submitted, as an earlier check of it named them (a hidden field).

    Only offered as choices: the plate sent is checked against the file itself.
    """
    words = request.form.get("plates", "").split()
    return [int(w) for w in words[:64] if w.isascii() and w.isdigit() and 1 <= int(w) <= MAX_PLATE]


def _chosen_plate() -> Optional[int]:
    """The plate the member chose for a sliced 3MF with several, or None (the form offered no choice)."""
    return plate_from_form(request.form.get("plate"))


def _refused(exc: Invalid) -> Page:
    """The form again with what was wrong; asking for a plate, it offers the file's plates to choose from."""
    extra = form_error(exc)
    if exc.key == SEVERAL_PLATES and isinstance(exc.details, dict):
        extra["plates"] = list(exc.details.get("plates") or [])
    return render("submit.html", 422, **_submit_form(**extra))


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
        plate = _chosen_plate()
        stream = cast(BinaryIO, upload.stream)
        result = service().intake.analyze_upload(stream, material=material, plate=plate).to_dict()
    except Invalid as exc:
        return _refused(exc)
    thumb = best_thumbnail(result.get("thumbnails") or [])
    preview = None
    if thumb is not None:
        preview = f"data:{thumb[1]};base64,{base64.b64encode(thumb[0]).decode('ascii')}"
    # The confirm step carries a key made now: a double click or a resent form queues the file once.
    key = secrets.token_urlsafe(24)
    cost = service().pricing.estimate(result, material)
    return render(
        "submit.html",
        **_submit_form(
            analysis=result,
            preview=preview,
            filename=upload.filename,
            submission_key=key,
            cost_total=money(cost.total_minor, cost.currency),
            cost_lines=cost_lines(cost),
        ),
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
            plate=_chosen_plate(),
            colour=request.form.get("colour") or None,
        )
    except Invalid as exc:
        return _refused(exc)
    ids = ", ".join(f"#{j.id}" for j in submission.jobs)
    flash(t("flash.submitted", ids=ids), "ok")
    return redirect(url_for("web.queue") + f"#job-{submission.jobs[0].id}", 303)
