"""The printers: every printer's card, one printer's page, and what members do at a printer."""

from __future__ import annotations

from flask import flash, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ...app.checks import check_material
from ...errors import NotFound
from ...models import PrinterChanges
from ...states import PrinterState
from ..cards import card
from .base import CODE_TTLS, Page, back, me, render, service, t, viewer_context, web


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
    plate_photo = None
    if entry.printer.state is PrinterState.AWAITING_BED_CLEAR:
        plate_photo = service().snapshots.plate_photo_job(me(), printer_id)
    return render(
        "printer.html",
        title=entry.printer.name,
        page="printers",
        c=card(entry),
        printer=entry.printer,
        plate_photo=plate_photo,
        spool=service().spools.loaded_spools().get(printer_id),
        **viewer_context(),
    )


@web.post("/printers/<printer_id>/snapshot")
def ask_snapshot(printer_id: str) -> BaseResponse:
    job_id = service().snapshots.ask(me(), printer_id)
    flash(t("flash.snapshot_asked", id=job_id), "ok")
    return back(url_for("web.job", job_id=job_id))


@web.post("/printers/<printer_id>/bed-cleared")
def bed_cleared(printer_id: str) -> BaseResponse:
    cleared = service().printers.confirm_bed_cleared(me(), printer_id)
    flash(t("flash.bed_cleared", name=cleared.name), "ok")
    return back("/")


@web.post("/printers/<printer_id>/material")
def set_material(printer_id: str) -> BaseResponse:
    service().identity.require_manager(me())  # who may, before what they sent
    material = check_material(request.form.get("material", ""))
    updated = service().printers.update_printer(me(), printer_id, PrinterChanges(material=material))
    flash(t("flash.material", name=updated.name, material=updated.material or "—"), "ok")
    return back(url_for("web.printer", printer_id=printer_id))


@web.post("/enroll-code")
def enroll_code() -> Page:
    ttl = CODE_TTLS.get(request.form.get("ttl", ""), CODE_TTLS["1d"])
    code, expires_at = service().enrollment.create_enrollment_code(me(), ttl)
    # Shown on this page only: never put into a redirect or the (readable) session cookie.
    return render("code.html", title=t("code.title"), page="printers", code=code, expires_at=expires_at)
