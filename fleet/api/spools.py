"""/api/v1 spools: the lab's filament, loading it on printers, and a printer's own spool (its node)."""

from __future__ import annotations

from flask import Response, jsonify

from .blueprint import PRINTER_TOKEN, body, me, query, service, spec, this_printer
from .shapes import spools as shape
from .shapes.base import next_cursor

SPOOL = "/spools/<int:spool_id>"
OWN = "/printers/<printer_id>/spool"


@spec.route(
    "GET",
    "/spools",
    "The spools a page at a time, in id order: what is loaded where, and what is left (any member)",
    shape.Spools,
    errors=(401, 422),
    query=shape.SpoolsQuery,
)
def list_spools() -> Response:
    asked = query(shape.SpoolsQuery)
    page = service().spools.spool_page(after=asked.cursor, limit=asked.limit, on_shelf=asked.on_shelf)
    return jsonify(
        spools=[shape.Spool.of(s).to_json() for s in page.items], next_cursor=next_cursor(page.next_after)
    )


@spec.route(
    "POST",
    "/spools",
    "Add a spool to a shelf (managers); an unknown material or a colour not written #rrggbb is refused",
    shape.Spool,
    status=201,
    answer_text="Created",
    errors=(401, 403, 422),
    body=shape.NewSpool,
)
def add_spool() -> tuple[Response, int]:
    service().identity.require_manager(me())  # who may, before what they sent
    new = body(shape.NewSpool)
    return jsonify(shape.Spool.of(service().spools.add_spool(me(), new.values())).to_json()), 201


@spec.route("GET", SPOOL, "A spool", shape.Spool, errors=(401, 404))
def get_spool(spool_id: int) -> Response:
    return jsonify(shape.Spool.of(service().spools.get_spool(spool_id)).to_json())


@spec.route(
    "PATCH",
    SPOOL,
    "Change a spool (managers): grams left after weighing it, its shelf, its price",
    shape.Spool,
    errors=(401, 403, 404, 409, 422),
    body=shape.SpoolChanges,
)
def update_spool(spool_id: int) -> Response:
    service().identity.require_manager(me())
    changes = body(shape.SpoolChanges).values()
    return jsonify(shape.Spool.of(service().spools.update_spool(me(), spool_id, changes)).to_json())


@spec.route(
    "POST",
    SPOOL + "/load",
    "Load a spool on a printer (managers): the printer's material becomes the spool's; refused when the "
    "spool is on another printer or the printer holds another spool",
    shape.Spool,
    errors=(401, 403, 404, 409, 422),
    body=shape.LoadSpool,
)
def load_spool(spool_id: int) -> Response:
    service().identity.require_manager(me())
    asked = body(shape.LoadSpool)
    return jsonify(shape.Spool.of(service().spools.load(me(), spool_id, asked.printer_id)).to_json())


@spec.route(
    "POST",
    SPOOL + "/unload",
    "Take a spool off its printer, back to a shelf (managers)",
    shape.Spool,
    errors=(401, 403, 404, 422),
    body=shape.UnloadSpool,
    body_required=False,
)
def unload_spool(spool_id: int) -> Response:
    service().identity.require_manager(me())
    asked = body(shape.UnloadSpool)
    return jsonify(shape.Spool.of(service().spools.unload(me(), spool_id, asked.shelf)).to_json())


@spec.route(
    "GET",
    OWN,
    "The spool loaded on this printer and the spools on the shelves (printer token only; its own)",
    shape.PrinterSpool,
    errors=(401, 403),
    security=PRINTER_TOKEN,
)
def own_spool(printer_id: str) -> Response:
    view = service().spools.for_printer(this_printer(), printer_id)
    return jsonify(shape.PrinterSpool.of(view).to_json())


@spec.route(
    "PUT",
    OWN,
    "Load a shelf spool on this printer (printer token only; its own: the owner at its OctoPrint)",
    shape.PrinterSpool,
    errors=(401, 403, 404, 409, 422),
    body=shape.LoadOwnSpool,
    security=PRINTER_TOKEN,
)
def load_own_spool(printer_id: str) -> Response:
    asked = body(shape.LoadOwnSpool)
    svc = service().spools
    svc.load_own(this_printer(), printer_id, asked.spool_id)
    return jsonify(shape.PrinterSpool.of(svc.for_printer(this_printer(), printer_id)).to_json())


@spec.route(
    "DELETE",
    OWN,
    "Take the spool off this printer, back to its shelf (printer token only; its own)",
    shape.PrinterSpool,
    errors=(401, 403),
    security=PRINTER_TOKEN,
)
def unload_own_spool(printer_id: str) -> Response:
    svc = service().spools
    svc.unload_own(this_printer(), printer_id)
    return jsonify(shape.PrinterSpool.of(svc.for_printer(this_printer(), printer_id)).to_json())
