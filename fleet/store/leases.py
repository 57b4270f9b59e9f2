"""Leases of the once-only background duties (table ``duty_leases``): who holds each, and until when.

A duty (the dispatch loop, the sweeps, the delivery of notifications ...) is carried out by one fleet
process at a time among all those on the database. Its holder renews the lease well before it runs
out; a process that dies stops renewing, and the next process to ask after the expiry takes it over.
Each claim is one short transaction, with a conditional update, so two processes asking together
never both win.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, delete, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from . import schema as s
from .base import StoreBase
from .engine import read_transaction, write_transaction


@dataclass(frozen=True)
class Lease:
    """One duty's lease as the database holds it."""

    name: str
    holder: str
    expires_at: float
    held_since: float


class LeaseRecords(StoreBase):
    def claim_duties(
        self, names: Iterable[str], holder: str, *, now: float, ttl_s: float, force: bool = False
    ) -> set[str]:
        """Take or renew the leases of the duties ``names`` for ``holder`` until ``now + ttl_s``, in
        one transaction; returns those ``holder`` holds afterwards.

        A duty is ``holder``'s when it held it already, when nobody did, or when its last holder let it
        run out; with ``force``, whoever held it (the caller knows no other process can run: SQLite's
        single process).
        """
        names = list(names)
        if not 0 < len(holder) <= 128 or not all(0 < len(name) <= 64 for name in names):
            raise ValueError("a duty's name has 1 to 64 characters, its holder 1 to 128")
        with write_transaction(self._engine) as conn:
            return {name for name in names if self._claim(conn, name, holder, now, now + ttl_s, force)}

    def _claim(self, conn: Connection, name: str, holder: str, now: float, until: float, force: bool) -> bool:
        leases = s.duty_leases.c
        current = conn.execute(select(leases.holder, leases.held_since).where(leases.name == name)).first()
        if current is None:
            dialect = postgresql if self.backend == "postgresql" else sqlite
            statement = dialect.insert(s.duty_leases).values(
                name=name, holder=holder, expires_at=until, held_since=now
            )
            statement = statement.on_conflict_do_nothing(index_elements=["name"]).returning(leases.name)
            return conn.execute(statement).first() is not None
        # A renewal keeps when the holding began; a change of holder starts a new one. Two processes
        # claiming together: the second update waits for the first's row, then finds it no longer
        # claimable (PostgreSQL checks the condition again on the row as the first left it).
        held_since = current.held_since if current.holder == holder else now
        claimable = or_(leases.holder == holder, leases.expires_at <= now)
        changed = conn.execute(
            update(s.duty_leases)
            .where(leases.name == name, true() if force else claimable)
            .values(holder=holder, expires_at=until, held_since=held_since)
        ).rowcount
        return changed == 1

    def release_duty(self, name: str, holder: str) -> bool:
        """Give up ``holder``'s lease of ``name`` at once (a clean stop), so another process takes it
        over at its next claim instead of after the expiry. False when ``holder`` did not hold it."""
        leases = s.duty_leases.c
        with write_transaction(self._engine) as conn:
            mine = and_(leases.name == name, leases.holder == holder)
            return conn.execute(delete(s.duty_leases).where(mine)).rowcount == 1

    def duty_leases(self) -> list[Lease]:
        """Every duty's lease, by name (expired ones included: their holder stopped renewing)."""
        leases = s.duty_leases.c
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(leases.name, leases.holder, leases.expires_at, leases.held_since).order_by(leases.name)
            ).all()
        return [Lease(r.name, r.holder, float(r.expires_at), float(r.held_since)) for r in rows]


__all__ = ["Lease", "LeaseRecords"]
