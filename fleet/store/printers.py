"""Printers (their states checked against the printer transition table) and grants."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from typing import Any, Optional

from sqlalchemy import bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict
from ..lending import Lending
from ..models import Printer
from ..notify.events import EventKind
from ..states import PrinterState, check_printer_transition
from . import notices, rows
from . import schema as s
from .base import StoreBase
from .engine import read_transaction, write_transaction

#: What the printer profile adds to a printer, stored as given (None: the node has not said).
PROFILE_FIELDS = ("bed_shape", "heated_bed", "heated_chamber", "extruders", "lending")

#: Printer fields :meth:`Store.update_printer` may change.
PRINTER_CHANGES = frozenset(
    {
        "name",
        "state",
        "volume",
        "nozzle_diameter",
        "material",
        "restricted",
        "current_job_id",
        "last_seen",
        "capabilities",
        *PROFILE_FIELDS,
    }
)


def _lending_column(lending: Optional[Lending]) -> Optional[str]:
    return None if lending is None else rows.dumps(lending.to_json())


class PrinterRecords(StoreBase):
    """Printers and who may use the restricted ones."""

    # -- printers and grants ------------------------------------------------------------------

    def create_printer(
        self, printer: Printer, *, capabilities: Optional[Mapping[str, Any]] = None
    ) -> Printer:
        """Add a printer; :class:`Conflict` if its id is taken."""
        values = {
            "id": printer.id,
            "name": printer.name,
            "state": PrinterState(printer.state).value,
            **rows.volume_columns(printer.volume),
            "nozzle_diameter": printer.nozzle_diameter,
            "material": printer.material,
            "restricted": printer.restricted,
            "current_job_id": printer.current_job_id,
            "last_seen": printer.last_seen,
            "created_at": printer.created_at,
            "capabilities": rows.dumps(dict(capabilities or {})),
            **{name: getattr(printer, name) for name in PROFILE_FIELDS},
            "lending": _lending_column(printer.lending),
        }
        taken = Conflict(f"a printer with id {printer.id!r} already exists", field="id")
        try:
            with write_transaction(self._engine) as conn:
                if conn.execute(select(exists().where(s.printers.c.id == printer.id))).scalar_one():
                    raise taken
                conn.execute(insert(s.printers).values(values))
                return self._printer(conn, printer.id)
        except IntegrityError as exc:
            raise taken from exc

    def get_printer(self, printer_id: str) -> Printer:
        with read_transaction(self._engine) as conn:
            return self._printer(conn, printer_id)

    def list_printers(self) -> list[Printer]:
        with read_transaction(self._engine) as conn:
            found = conn.execute(select(s.printers).order_by(s.printers.c.id)).all()
        return [rows.printer(row) for row in found]

    def printers_with_ids(self, printer_ids: Collection[str]) -> list[Printer]:
        """The printers of ``printer_ids`` that exist, ordered by id (one read)."""
        if not printer_ids:
            return []
        with read_transaction(self._engine) as conn:
            found = conn.execute(
                select(s.printers).where(s.printers.c.id.in_(sorted(printer_ids))).order_by(s.printers.c.id)
            ).all()
        return [rows.printer(row) for row in found]

    def count_printers_by_state(self) -> dict[PrinterState, int]:
        """How many printers are in each state (every state named, 0 where none is)."""
        printers = s.printers.c
        with read_transaction(self._engine) as conn:
            found = conn.execute(select(printers.state, func.count()).group_by(printers.state)).all()
        counts = dict.fromkeys(PrinterState, 0)
        counts.update({PrinterState(state): n for state, n in found})
        return counts

    def printer_capabilities(self, printer_id: str) -> dict[str, Any]:
        """The extras a printer reported (firmware, features), as stored."""
        with read_transaction(self._engine) as conn:
            value = conn.execute(
                select(s.printers.c.capabilities).where(s.printers.c.id == printer_id)
            ).scalar_one_or_none()
        if value is None:
            raise self._no_printer(printer_id)
        capabilities: dict[str, Any] = json.loads(value)
        return capabilities

    def update_printer(
        self, printer_id: str, *, expect: Optional[Collection[PrinterState]] = None, **changes: Any
    ) -> Printer:
        """Change some of a printer's fields (see :data:`PRINTER_CHANGES`).

        A new ``state`` must be a move :data:`~fleet.states.PRINTER_TRANSITIONS` allows, from the
        state found in this transaction, and (with ``expect``) from one of those: :class:`Conflict`
        otherwise, and nothing changes.
        """
        unknown = sorted(set(changes) - PRINTER_CHANGES)
        if unknown:
            raise TypeError(f"update_printer() cannot change {', '.join(unknown)}")
        values = dict(changes)
        if "volume" in values:
            values.update(rows.volume_columns(values.pop("volume")))
        if "state" in values:
            values["state"] = PrinterState(values["state"]).value
        if "capabilities" in values:
            values["capabilities"] = rows.dumps(dict(values["capabilities"]))
        if "lending" in values:
            values["lending"] = _lending_column(values["lending"])
        with write_transaction(self._engine) as conn:
            current = self._printer(conn, printer_id, lock="state" in values or expect is not None)
            if expect is not None and current.state not in expect:
                raise self._printer_not_in(current, expect)
            if "state" in values:
                check_printer_transition(current.state, PrinterState(values["state"]))
            if values:
                conn.execute(update(s.printers).where(s.printers.c.id == printer_id).values(values))
            if values.get("state") == PrinterState.ERROR.value and current.state is not PrinterState.ERROR:
                at = time.time()
                notices.raise_event(
                    conn,
                    EventKind.PRINTER_ERROR,
                    f"printer:{printer_id}:error:{at!r}",
                    {"printer_id": printer_id, "printer_name": current.name, "at": at},
                    at=at,
                    managers=True,
                )
            return self._printer(conn, printer_id)

    def touch_printers(self, seen: Mapping[str, float]) -> None:
        """Record when printers were last heard from, all in one transaction (``{printer id: when}``).

        A time older than the one stored is ignored, and so is a printer that no longer exists.
        """
        if not seen:
            return
        printers = s.printers.c
        statement = (
            update(s.printers)
            .where(
                printers.id == bindparam("printer_id"),
                or_(printers.last_seen.is_(None), printers.last_seen < bindparam("seen_at")),
            )
            .values(last_seen=bindparam("seen_at"))
        )
        params = [{"printer_id": pid, "seen_at": at} for pid, at in sorted(seen.items())]
        with write_transaction(self._engine) as conn:
            conn.execute(statement, params)

    def release_printer(
        self, printer_id: str, state: PrinterState, *, expect_job_id: Optional[int] = None
    ) -> Printer:
        """Clear a printer's current job and set its state.

        With ``expect_job_id``, a printer that meanwhile holds another job is left alone (Conflict).
        """
        with write_transaction(self._engine) as conn:
            current = self._printer(conn, printer_id, lock=True)
            if expect_job_id is not None and current.current_job_id != expect_job_id:
                raise Conflict(
                    f"printer {printer_id!r} holds job {current.current_job_id}, not job {expect_job_id}",
                    details={"current_job_id": current.current_job_id},
                )
            check_printer_transition(current.state, PrinterState(state))
            conn.execute(
                update(s.printers)
                .where(s.printers.c.id == printer_id)
                .values(state=PrinterState(state).value, current_job_id=None)
            )
            return self._printer(conn, printer_id)

    def grant(self, member_id: int, printer_id: str) -> None:
        """Let a member use a restricted printer (granting twice is harmless)."""
        with write_transaction(self._engine) as conn:
            self._member(conn, member_id)
            self._printer(conn, printer_id)
            held = conn.execute(
                select(exists().where(s.grants.c.member_id == member_id, s.grants.c.printer_id == printer_id))
            ).scalar_one()
            if not held:
                conn.execute(insert(s.grants).values(member_id=member_id, printer_id=printer_id))

    def revoke_grant(self, member_id: int, printer_id: str) -> bool:
        """Withdraw a grant; returns whether there was one."""
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                delete(s.grants).where(s.grants.c.member_id == member_id, s.grants.c.printer_id == printer_id)
            )
            return result.rowcount > 0

    def grants(self) -> dict[int, frozenset[str]]:
        """Every member's granted printers, for members that have any."""
        found: dict[int, set[str]] = {}
        with read_transaction(self._engine) as conn:
            for member_id, printer_id in conn.execute(select(s.grants.c.member_id, s.grants.c.printer_id)):
                found.setdefault(member_id, set()).add(printer_id)
        return {member_id: frozenset(ids) for member_id, ids in found.items()}

    def grants_for(self, member_id: int) -> frozenset[str]:
        with read_transaction(self._engine) as conn:
            ids = conn.execute(
                select(s.grants.c.printer_id).where(s.grants.c.member_id == member_id)
            ).scalars()
            return frozenset(ids)
