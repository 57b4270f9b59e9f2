"""Spools: the lab's filament, where each one is (a shelf or a printer), and what each job took from one.

A spool is on at most one printer (its ``printer_id``) and a printer holds at most one spool (a unique
index), so loading checks both in the transaction that loads. What a job took is recorded once per job
(``spool_uses``), in the transaction that ends the job (:func:`record_use`, called by the job records).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, NotFound
from ..models import Page
from ..spools import Spool, after_use
from . import schema as s
from .base import StoreBase, _insert
from .engine import read_transaction, write_transaction

#: The columns a change may set (the others follow from loading and unloading).
CHANGEABLE = frozenset(
    {"material", "colour_name", "colour_hex", "diameter_mm", "vendor", "net_grams", "remaining_grams"}
    | {"price_per_kg", "shelf"}
)


def spool(row: Row[Any]) -> Spool:
    return Spool(
        id=row.id,
        material=row.material,
        colour_name=row.colour_name,
        colour_hex=row.colour_hex,
        diameter_mm=row.diameter_mm,
        vendor=row.vendor,
        net_grams=row.net_grams,
        remaining_grams=row.remaining_grams,
        price_per_kg=int(row.price_per_kg),
        printer_id=row.printer_id,
        shelf=row.shelf,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _spool_row(conn: Connection, spool_id: int, *, lock: bool = False) -> Spool:
    query = select(s.spools).where(s.spools.c.id == spool_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"there is no spool with id {spool_id}", field="spool_id", key="no_spool")
    return spool(row)


def _loaded_on(conn: Connection, printer_id: str, *, lock: bool = False) -> Optional[Spool]:
    query = select(s.spools).where(s.spools.c.printer_id == printer_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else spool(row)


def record_use(
    conn: Connection, job_id: int, printer_id: str, grams: float, now: float
) -> Optional[tuple[Spool, float]]:
    """Take ``grams`` off the spool loaded on ``printer_id`` for job ``job_id``, once per job, in the
    caller's transaction. Returns the spool as it was before and the grams left on it now, or None
    when nothing was taken (no spool loaded, nothing used, or already recorded)."""
    if grams <= 0:
        return None
    loaded = _loaded_on(conn, printer_id, lock=True)
    if loaded is None:
        return None
    recorded = conn.execute(select(s.spool_uses.c.job_id).where(s.spool_uses.c.job_id == job_id)).first()
    if recorded is not None:
        return None
    left = after_use(loaded.remaining_grams, grams)
    taken = round(loaded.remaining_grams - left, 2)
    conn.execute(insert(s.spool_uses).values(job_id=job_id, spool_id=loaded.id, grams=taken, at=now))
    conn.execute(
        update(s.spools).where(s.spools.c.id == loaded.id).values(remaining_grams=left, updated_at=now)
    )
    return loaded, left


class SpoolRecords(StoreBase):
    """The spools, loading and unloading them, and what jobs took."""

    def create_spool(self, values: Mapping[str, Any], *, now: float) -> Spool:
        """A new spool on its shelf; ``values`` are checked already (see :mod:`fleet.spools`)."""
        unknown = set(values) - CHANGEABLE
        if unknown:
            raise TypeError(f"a spool has no field {', '.join(sorted(unknown))}")
        with write_transaction(self._engine) as conn:
            spool_id = _insert(
                conn, s.spools, {**values, "printer_id": None, "created_at": now, "updated_at": now}
            )
            return _spool_row(conn, spool_id)

    def get_spool(self, spool_id: int) -> Spool:
        with read_transaction(self._engine) as conn:
            return _spool_row(conn, spool_id)

    def spool_on(self, printer_id: str) -> Optional[Spool]:
        """The spool loaded on a printer, or None."""
        with read_transaction(self._engine) as conn:
            return _loaded_on(conn, printer_id)

    def loaded_spools(self) -> dict[str, Spool]:
        """Every loaded spool, by the printer it is on (for the scheduler: one query a pass)."""
        with read_transaction(self._engine) as conn:
            found = conn.execute(select(s.spools).where(s.spools.c.printer_id.is_not(None))).all()
        return {row.printer_id: spool(row) for row in found}

    def spool_page(
        self, *, after: Optional[int] = None, limit: int = 100, on_shelf: Optional[bool] = None
    ) -> Page[Spool, int]:
        """Up to ``limit`` spools with an id above ``after``; ``on_shelf`` keeps only unloaded (True)
        or loaded (False) ones."""
        if limit < 1:
            raise ValueError("a page holds at least one row")
        table = s.spools.c
        query = select(s.spools).order_by(table.id).limit(limit + 1)
        if after is not None:
            query = query.where(table.id > after)
        if on_shelf is True:
            query = query.where(table.printer_id.is_(None))
        elif on_shelf is False:
            query = query.where(table.printer_id.is_not(None))
        with read_transaction(self._engine) as conn:
            found = conn.execute(query).all()
        items = [spool(row) for row in found[:limit]]
        return Page(items=items, next_after=items[-1].id if len(found) > limit else None)

    def update_spool(self, spool_id: int, changes: Mapping[str, Any], *, now: float) -> Spool:
        """Change a spool's fields (checked already); remaining grams never above the net weight."""
        unknown = set(changes) - CHANGEABLE
        if unknown:
            raise TypeError(f"a spool has no field {', '.join(sorted(unknown))}")
        with write_transaction(self._engine) as conn:
            current = _spool_row(conn, spool_id, lock=True)
            net = changes.get("net_grams", current.net_grams)
            remaining = changes.get("remaining_grams", current.remaining_grams)
            if remaining > net:
                raise Conflict(
                    f"remaining_grams ({remaining:g}) cannot be more than net_grams ({net:g})",
                    field="remaining_grams",
                )
            if changes:
                conn.execute(
                    update(s.spools).where(s.spools.c.id == spool_id).values({**changes, "updated_at": now})
                )
                if "material" in changes and current.printer_id is not None:
                    # A loaded spool's material is its printer's.
                    conn.execute(
                        update(s.printers)
                        .where(s.printers.c.id == current.printer_id)
                        .values(material=changes["material"])
                    )
            return _spool_row(conn, spool_id)

    def load_spool(self, spool_id: int, printer_id: str, *, now: float) -> Spool:
        """Put a spool on a printer, whose material becomes the spool's, all in one transaction.

        :class:`Conflict` when the spool is on another printer (one spool is never on two printers)
        or the printer holds another spool: unload that one first.
        """
        try:
            with write_transaction(self._engine) as conn:
                self._printer(conn, printer_id, lock=True)
                loading = _spool_row(conn, spool_id, lock=True)
                if loading.printer_id == printer_id:
                    return loading
                if loading.printer_id is not None:
                    raise Conflict(
                        f"spool {spool_id} is loaded on printer {loading.printer_id}: a spool is on one "
                        "printer at a time; unload it there first",
                        field="spool_id",
                        key="spool_on_other_printer",
                        params={"spool": spool_id, "printer": loading.printer_id},
                    )
                there = _loaded_on(conn, printer_id, lock=True)
                if there is not None:
                    raise self._printer_holds(printer_id, there)
                conn.execute(
                    update(s.spools)
                    .where(s.spools.c.id == spool_id)
                    .values(printer_id=printer_id, updated_at=now)
                )
                conn.execute(
                    update(s.printers).where(s.printers.c.id == printer_id).values(material=loading.material)
                )
                return _spool_row(conn, spool_id)
        except IntegrityError:
            # Another process loaded a spool on this printer between our look and our write.
            there = self.spool_on(printer_id)
            if there is None:
                raise
            raise self._printer_holds(printer_id, there) from None

    def unload_spool(self, spool_id: int, *, now: float, shelf: Optional[str] = None) -> Spool:
        """Take a spool off its printer (back to ``shelf``, or where it was kept); the printer then has
        no material loaded. Unloading a spool that is on a shelf changes nothing."""
        with write_transaction(self._engine) as conn:
            current = _spool_row(conn, spool_id, lock=True)
            if current.printer_id is None and shelf is None:
                return current
            values: dict[str, Any] = {"printer_id": None, "updated_at": now}
            if shelf is not None:
                values["shelf"] = shelf
            conn.execute(update(s.spools).where(s.spools.c.id == spool_id).values(values))
            if current.printer_id is not None:
                conn.execute(
                    update(s.printers).where(s.printers.c.id == current.printer_id).values(material=None)
                )
            return _spool_row(conn, spool_id)

    def spool_use(self, job_id: int) -> Optional[tuple[int, float]]:
        """(spool id, grams) a job took, or None."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(s.spool_uses).where(s.spool_uses.c.job_id == job_id)).first()
        return None if row is None else (row.spool_id, row.grams)

    @staticmethod
    def _printer_holds(printer_id: str, there: Spool) -> Conflict:
        return Conflict(
            f"printer {printer_id} has spool {there.id} ({there.label}) loaded: unload it first",
            field="printer_id",
            key="printer_has_spool",
            params={"printer": printer_id, "spool": there.id},
        )
