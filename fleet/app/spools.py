"""The lab's spools: who may add, change, load and unload them, and how much of a job was printed.

A manager keeps every spool and may load any on any printer. A printer's own token (the plugin's
credentials, used by whoever keeps that printer's OctoPrint: a home printer's owner) may load a shelf
spool on that printer, or unload the one there, and nothing else. Loading or unloading wakes the
dispatch loop: a job waiting for that material, colour or grams may go now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..errors import Forbidden, Invalid
from ..models import Member, Page, Printer
from ..spools import (
    Spool,
    check_colour_hex,
    check_colour_name,
    check_diameter,
    check_grams,
    check_price_per_kg,
    check_remaining,
    check_spool_material,
    check_text,
)
from .base import Context, require_manager

#: Checks of each field a person may set, by name.
CHECKS: dict[str, Callable[[Any], Any]] = {
    "material": check_spool_material,
    "colour_name": check_colour_name,
    "colour_hex": check_colour_hex,
    "diameter_mm": check_diameter,
    "vendor": lambda value: check_text(value, "vendor"),
    "net_grams": lambda value: check_grams(value, "net_grams"),
    "remaining_grams": lambda value: check_grams(value, "remaining_grams"),
    "price_per_kg": check_price_per_kg,
    "shelf": lambda value: check_text(value, "shelf"),
}
#: Fields a new spool must have (the others have defaults).
REQUIRED = ("material", "colour_name", "colour_hex", "net_grams", "price_per_kg")


def checked_spool(values: Mapping[str, Any]) -> dict[str, Any]:
    """A new spool's fields, each checked (:class:`Invalid` names the first wrong one); a full spool
    unless ``remaining_grams`` says otherwise."""
    unknown = sorted(set(values) - set(CHECKS))
    if unknown:
        raise Invalid(f"unknown spool field: {unknown[0]}", field=unknown[0])
    for name in REQUIRED:
        if values.get(name) is None:
            raise Invalid(f"{name} is required", field=name)
    found = {name: CHECKS[name](value) for name, value in values.items() if value is not None}
    found.setdefault("diameter_mm", 1.75)
    found.setdefault("vendor", "")
    found.setdefault("shelf", "")
    found.setdefault("remaining_grams", found["net_grams"])
    check_remaining(found["remaining_grams"], found["net_grams"])
    return found


@dataclass(frozen=True)
class PrinterSpools:
    """What a printer's own node is shown: the spool on it, and the spools on the shelves."""

    loaded: Optional[Spool]
    shelf: list[Spool]


class Spools:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store

    # -- what every member may read -------------------------------------------------------------

    def spool_page(
        self, *, after: Optional[int] = None, limit: int = 100, on_shelf: Optional[bool] = None
    ) -> Page[Spool, int]:
        """A page of the spools (every member sees what is loaded where, and what it costs a kilogram)."""
        return self.store.spool_page(after=after, limit=limit, on_shelf=on_shelf)

    def get_spool(self, spool_id: int) -> Spool:
        return self.store.get_spool(spool_id)

    def loaded_spools(self) -> dict[str, Spool]:
        return self.store.loaded_spools()

    # -- managers -------------------------------------------------------------------------------

    def add_spool(self, actor: Member, values: Mapping[str, Any]) -> Spool:
        require_manager(actor)
        return self.store.create_spool(checked_spool(values), now=self.ctx.clock())

    def update_spool(self, actor: Member, spool_id: int, changes: Mapping[str, Any]) -> Spool:
        """Change a spool's fields (a weighed spool's grams, a new shelf, a corrected price)."""
        require_manager(actor)
        unknown = sorted(set(changes) - set(CHECKS))
        if unknown:
            raise Invalid(f"unknown spool field: {unknown[0]}", field=unknown[0])
        checked = {name: CHECKS[name](value) for name, value in changes.items()}
        updated = self.store.update_spool(spool_id, checked, now=self.ctx.clock())
        self._moved(updated.printer_id)
        return updated

    def load(self, actor: Member, spool_id: int, printer_id: str) -> Spool:
        """A manager loads a spool on a printer (any printer)."""
        require_manager(actor)
        return self._load(spool_id, printer_id)

    def unload(self, actor: Member, spool_id: int, shelf: Optional[str] = None) -> Spool:
        """A manager takes a spool off its printer, back to ``shelf`` (or the shelf it came from)."""
        require_manager(actor)
        return self._unload(spool_id, None if shelf is None else check_text(shelf, "shelf"))

    # -- a printer's own node (its owner, at its OctoPrint) ------------------------------------

    def for_printer(self, printer: Printer, printer_id: str, *, shelf_limit: int = 100) -> PrinterSpools:
        self._own(printer, printer_id)
        shelf = self.store.spool_page(on_shelf=True, limit=shelf_limit).items
        return PrinterSpools(self.store.spool_on(printer_id), shelf)

    def load_own(self, printer: Printer, printer_id: str, spool_id: int) -> Spool:
        """The printer's owner loads a shelf spool on their own printer."""
        self._own(printer, printer_id)
        return self._load(spool_id, printer_id)

    def unload_own(self, printer: Printer, printer_id: str) -> Optional[Spool]:
        """The printer's owner takes the spool off their own printer; None when none was loaded."""
        self._own(printer, printer_id)
        loaded = self.store.spool_on(printer_id)
        return None if loaded is None else self._unload(loaded.id, None)

    # -- inside ---------------------------------------------------------------------------------

    def _load(self, spool_id: int, printer_id: str) -> Spool:
        loaded = self.store.load_spool(spool_id, printer_id, now=self.ctx.clock())
        self._moved(printer_id)
        return loaded

    def _unload(self, spool_id: int, shelf: Optional[str]) -> Spool:
        before = self.store.get_spool(spool_id)
        unloaded = self.store.unload_spool(spool_id, now=self.ctx.clock(), shelf=shelf)
        self._moved(before.printer_id)
        return unloaded

    def _moved(self, printer_id: Optional[str]) -> None:
        if printer_id is not None:
            self.ctx.printer_changed(printer_id)
            self.ctx.queue_changed()
            self.ctx.work_available()

    @staticmethod
    def _own(printer: Printer, printer_id: str) -> None:
        if printer.id != printer_id:
            raise Forbidden(f"this token belongs to printer {printer.id}, not {printer_id}")
