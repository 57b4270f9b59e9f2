"""The spools page: every member sees what is loaded where; a manager adds, loads and unloads spools."""

from __future__ import annotations

import math
from typing import Any, Union
from urllib.parse import quote

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ...errors import FleetError
from ...spools import DIAMETERS_MM, KNOWN_MATERIALS
from .base import Page, form_error, me, render, service, t, web

#: The new-spool form's fields, as typed; the service checks each and names a wrong one.
FIELDS = (
    "material",
    "colour_name",
    "colour_hex",
    "diameter_mm",
    "vendor",
    "net_grams",
    "remaining_grams",
    "price_per_kg",
    "shelf",
)


def swatch(colour_hex: str) -> str:
    """A small square of the spool's colour as a data URI (the page's CSP allows no inline style)."""
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' width='16' height='16'>"
        f"<rect width='16' height='16' fill='{colour_hex}'/></svg>"
    )
    return "data:image/svg+xml," + quote(svg)


def _number(text: str, whole: bool = False) -> Union[int, float, str]:
    """A form's number, or the text as typed (the service's check then names the field)."""
    try:
        value = int(text.strip()) if whole else float(text.strip())
    except ValueError:
        return text
    return value if whole or math.isfinite(value) else text


def _new_spool(form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in FIELDS:
        text = form.get(name, "").strip()
        if text == "" and name in ("remaining_grams", "vendor", "shelf", "diameter_mm"):
            continue
        if name in ("net_grams", "remaining_grams", "diameter_mm"):
            values[name] = _number(text)
        elif name == "price_per_kg":
            values[name] = _number(text, whole=True)
        else:
            values[name] = text
    return values


def _page(status: int = 200, **extra: Any) -> Page:
    svc = service()
    spools = []
    after = None
    while True:
        page = svc.spools.spool_page(after=after, limit=500)
        spools += page.items
        after = page.next_after
        if after is None:
            break
    printers = sorted(svc.printers.list_printers(), key=lambda p: (p.name.lower(), p.id))
    loaded = {s.printer_id for s in spools if s.printer_id is not None}
    return render(
        "spools.html",
        status,
        title=t("spools.title"),
        page="spools",
        spools=spools,
        names={p.id: p.name for p in printers},
        free_printers=[p for p in printers if p.id not in loaded],
        materials=KNOWN_MATERIALS,
        diameters=DIAMETERS_MM,
        swatch=swatch,
        **extra,
    )


@web.get("/spools")
def spools() -> Page:
    return _page()


@web.post("/spools")
def add_spool() -> Union[Page, BaseResponse]:
    service().identity.require_manager(me())  # who may, before what they sent
    try:
        added = service().spools.add_spool(me(), _new_spool(request.form))
    except FleetError as exc:
        return _page(422, form=request.form, error_field=exc.field, **form_error(exc))
    flash(t("flash.spool_added", id=added.id, label=added.label), "ok")
    return redirect(url_for("web.spools") + f"#spool-{added.id}", 303)


@web.post("/spools/<int:spool_id>/load")
def load_spool(spool_id: int) -> Union[Page, BaseResponse]:
    service().identity.require_manager(me())
    try:
        loaded = service().spools.load(me(), spool_id, request.form.get("printer_id", ""))
    except FleetError as exc:
        return _page(exc.status, **form_error(exc))
    flash(t("flash.spool_loaded", label=loaded.label, printer=loaded.printer_id), "ok")
    return redirect(url_for("web.spools") + f"#spool-{spool_id}", 303)


@web.post("/spools/<int:spool_id>/unload")
def unload_spool(spool_id: int) -> Union[Page, BaseResponse]:
    service().identity.require_manager(me())
    try:
        unloaded = service().spools.unload(me(), spool_id, request.form.get("shelf") or None)
    except FleetError as exc:
        return _page(exc.status, **form_error(exc))
    flash(t("flash.spool_unloaded", label=unloaded.label), "ok")
    return redirect(url_for("web.spools") + f"#spool-{spool_id}", 303)
