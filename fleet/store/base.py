"""What every part of the store shares: the engine, and the lookups each transaction reuses."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import Enum
from typing import Any, Optional, Union

from sqlalchemy import Table, exists, insert, select
from sqlalchemy.engine import Connection, Engine, Row

from ..errors import Conflict, NotFound
from ..models import EnrollmentCode, Job, Member, Printer
from ..notify.events import EventKind, job_move_kind
from ..states import JobState, PrinterState
from . import notices, rows
from . import schema as s
from .engine import is_tuned

#: A "done" or "clear the plate" notice waits this long for the plate photo (it goes at once when the
#: photo comes).
PHOTO_WAIT_S = 30.0
#: The kinds that wait for it.
PHOTO_KINDS = (EventKind.JOB_DONE, EventKind.BED_CLEAR)


class _Lost(Exception):
    """A claim lost a race half-way: its transaction must roll back."""


class _Unset(Enum):
    UNSET = "unset"


#: Default of optional arguments where None is a meaningful value ("leave it as it is").
UNSET = _Unset.UNSET


def _insert(conn: Connection, table: Table, values: Mapping[str, Any]) -> int:
    """Insert a row and return its new integer id."""
    key = conn.execute(insert(table).values(values)).inserted_primary_key
    assert key is not None
    return int(key[0])


class StoreBase:
    """The engine and the helpers every aggregate's records use; :class:`~fleet.store.db.Store` joins them."""

    def __init__(self, engine: Engine) -> None:
        if not is_tuned(engine):
            raise ValueError("a SQLite engine for Store must come from fleet.store.engine.make_engine()")
        self._engine = engine
        #: How long each kind's deliveries wait before they are due (see :data:`PHOTO_WAIT_S`).
        self.notice_delays: dict[EventKind, float] = dict.fromkeys(PHOTO_KINDS, PHOTO_WAIT_S)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    # -- helpers (each runs inside the caller's transaction) ------------------------------------

    @staticmethod
    def _by_id(
        conn: Connection, table: Table, key: Union[int, str], *, lock: bool = False
    ) -> Optional[Row[Any]]:
        """The row of ``table`` with id ``key`` (locked for update when asked), or None."""
        query = select(table).where(table.c.id == key)
        if lock:
            query = query.with_for_update()
        return conn.execute(query).first()

    def _member(self, conn: Connection, member_id: int) -> Member:
        row = self._by_id(conn, s.members, member_id)
        if row is None:
            raise NotFound(f"there is no member with id {member_id}", field="member_id")
        return rows.member(row)

    def _refuse_taken_name(self, conn: Connection, name: str) -> None:
        if conn.execute(select(exists().where(s.members.c.name == name))).scalar_one():
            raise self._name_taken(name)

    @staticmethod
    def _name_taken(name: str) -> Conflict:
        return Conflict(f"the member name {name!r} is already taken; choose another", field="name")

    @staticmethod
    def _printer_not_in(printer: Printer, expect: Collection[PrinterState]) -> Conflict:
        wanted = " or ".join(sorted(PrinterState(state).value for state in expect))
        return Conflict(
            f"printer {printer.id} is {printer.state.value}, expected {wanted}",
            details={"state": printer.state.value, "expected": sorted(PrinterState(x).value for x in expect)},
        )

    @staticmethod
    def _no_printer(printer_id: str) -> NotFound:
        return NotFound(f"there is no printer with id {printer_id!r}", field="printer_id")

    @staticmethod
    def _enrollment_code(conn: Connection, code_hash: str) -> Optional[EnrollmentCode]:
        row = conn.execute(
            select(s.enrollment_codes).where(s.enrollment_codes.c.code_hash == code_hash)
        ).first()
        return None if row is None else rows.enrollment_code(row)

    def _printer(self, conn: Connection, printer_id: str, *, lock: bool = False) -> Printer:
        row = self._by_id(conn, s.printers, printer_id, lock=lock)
        if row is None:
            raise self._no_printer(printer_id)
        return rows.printer(row)

    def _job(self, conn: Connection, job_id: int, *, lock: bool = False) -> Job:
        row = self._by_id(conn, s.jobs, job_id, lock=lock)
        if row is None:
            raise NotFound(f"there is no job with id {job_id}", field="job_id")
        return rows.job(row)

    def _record_event(
        self,
        conn: Connection,
        job_id: int,
        at: float,
        from_state: Optional[JobState],
        to_state: JobState,
        actor: str,
        reason: str,
        data: Optional[Mapping[str, Any]],
    ) -> int:
        """Add a step to a job's history, and queue the notice the step raises (if any); its id."""
        event_id = _insert(
            conn,
            s.job_events,
            {
                "job_id": job_id,
                "at": at,
                "from_state": None if from_state is None else from_state.value,
                "to_state": to_state.value,
                "actor": actor,
                "reason": reason,
                "data": rows.dumps(dict(data or {})),
            },
        )
        kind = job_move_kind(from_state, to_state)
        if kind is not None:
            self._job_notice(conn, kind, job_id, event_id, at, reason=reason)
        return event_id

    def _job_notice(
        self, conn: Connection, kind: EventKind, job_id: int, event_id: int, at: float, **extra: Any
    ) -> None:
        """Queue a notice about a job for its member (and the managers who chose it, for approvals)."""
        member_id, data = notices.job_data(conn, job_id, at=at, **extra)
        notices.raise_event(
            conn,
            kind,
            f"job:{job_id}:{kind.value}:{event_id}",
            data,
            at=at,
            members=[member_id],
            managers=kind is EventKind.JOB_NEEDS_APPROVAL,
            job_id=job_id,
            delay_s=self.notice_delays.get(kind, 0.0),
        )
