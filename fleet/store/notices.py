"""Events raised inside the store's own transactions: the outbox rows that will tell people of them.

Called by the store's writes (a job's move, a printer's state, an assignment) with their open
connection, so a notification exists exactly when its cause is committed, and a crash loses or
repeats neither. Each row's delivery key is the event's key and its target (``job:7:job_done:42>c3``),
unique in the table: the same event raised twice (a report received again after a restart) adds
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ..models import Role
from ..notify.events import EventKind
from . import schema as s

PENDING = "pending"
SENT = "sent"
FAILED = "failed"


def _kinds(value: str) -> set[str]:
    try:
        found = json.loads(value)
    except ValueError:
        return set()
    return {str(k) for k in found} if isinstance(found, list) else set()


def raise_event(
    conn: Connection,
    kind: EventKind,
    event_key: str,
    data: Mapping[str, Any],
    *,
    at: float,
    members: Iterable[int] = (),
    managers: bool = False,
    job_id: Optional[int] = None,
    delay_s: float = 0.0,
) -> int:
    """Queue ``kind`` for the channels of ``members`` (and every manager's, with ``managers``) that chose
    it, and for the webhooks that want it; returns how many deliveries were queued."""
    channels, members_c = s.notify_channels.c, s.members.c
    who = select(members_c.id).where(members_c.active.is_(True))
    wanted = set(members)
    if managers:
        who = who.where((members_c.role == Role.MANAGER.value) | members_c.id.in_(sorted(wanted)))
    else:
        who = who.where(members_c.id.in_(sorted(wanted)))
    targets: list[tuple[str, dict[str, Any]]] = []
    if wanted or managers:
        found = conn.execute(
            select(channels.id, channels.kinds).where(
                channels.member_id.in_(who), channels.paused_at.is_(None)
            )
        ).all()
        targets += [
            (f"c{row.id}", {"channel_id": row.id}) for row in found if kind.value in _kinds(row.kinds)
        ]
    hooks = s.webhooks.c
    for row in conn.execute(select(hooks.id, hooks.kinds).where(hooks.paused_at.is_(None))).all():
        if kind.value in _kinds(row.kinds):
            targets.append((f"w{row.id}", {"webhook_id": row.id}))
    if not targets:
        return 0
    encoded = json.dumps(dict(data), sort_keys=True)
    values = [
        {
            "delivery_key": f"{event_key}>{target}",
            "event_key": event_key,
            "kind": kind.value,
            "channel_id": None,
            "webhook_id": None,
            **where,
            "job_id": job_id,
            "data": encoded,
            "created_at": at,
            "state": PENDING,
            "due_at": at + max(0.0, delay_s),
            "claimed_until": None,
            "attempts": 0,
        }
        for target, where in targets
    ]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(s.outbox).on_conflict_do_nothing(index_elements=["delivery_key"])
    # RETURNING counts what went in on both backends (an executemany's row count does not).
    return len(conn.execute(statement.returning(s.outbox.c.id), values).all())


def job_data(conn: Connection, job_id: int, **extra: Any) -> tuple[int, dict[str, Any]]:
    """A job's member and what its events' texts need (file, printer), read in the open transaction."""
    jobs, printers = s.jobs.c, s.printers.c
    row = conn.execute(
        select(jobs.member_id, jobs.filename, jobs.printer_id, printers.name)
        .select_from(s.jobs.outerjoin(s.printers, printers.id == jobs.printer_id))
        .where(jobs.id == job_id)
    ).one()
    data = {
        "job_id": job_id,
        "filename": row.filename,
        "printer_id": row.printer_id,
        "printer_name": row.name,
    }
    return int(row.member_id), {**data, **extra}


def spool_low(
    conn: Connection, printer_id: str, spool: str, remaining_g: float, *, occurrence: str, at: float
) -> int:
    """Tell the managers who chose it that the spool on a printer runs low, once per ``occurrence``
    (such as the spool's id); returns how many deliveries were queued."""
    name = conn.execute(select(s.printers.c.name).where(s.printers.c.id == printer_id)).scalar_one()
    data = {
        "printer_id": printer_id,
        "printer_name": name,
        "spool": spool,
        "remaining_g": round(remaining_g),
        "at": at,
    }
    key = f"printer:{printer_id}:spool_low:{occurrence}"[:150]
    return raise_event(conn, EventKind.SPOOL_LOW, key, data, at=at, managers=True)


def printer_owner(conn: Connection, printer_id: str) -> Optional[int]:
    """The member (not a manager) who enrolled a printer with a code they made: its home owner, or None."""
    codes, members_c = s.enrollment_codes.c, s.members.c
    row = conn.execute(
        select(members_c.id, members_c.role)
        .select_from(s.enrollment_codes.join(s.members, members_c.id == codes.created_by))
        .where(codes.used_by_printer == printer_id)
        .order_by(codes.used_at.desc())
        .limit(1)
    ).first()
    return None if row is None or row.role != Role.MEMBER.value else int(row.id)
