"""The store: the fleet's members, printers, jobs and settings in SQLite or PostgreSQL.

Every public method is one transaction and returns the records of :mod:`fleet.models`. Each
aggregate's records are a module of their own (:mod:`.members`, :mod:`.printers`,
:mod:`.enrollment`, :mod:`.jobs`, on the helpers of :mod:`.base`); :class:`Store` joins them, with
the failed attempts and settings that belong to no aggregate.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import and_, delete, exists, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from . import rows
from . import schema as s
from .base import UNSET
from .economy import EconomyRecords
from .engine import make_engine, read_transaction, write_transaction
from .enrollment import EnrollmentRecords
from .jobs import JobRecords, SubmissionKey
from .leases import LeaseRecords
from .members import ApiToken, MemberRecords
from .migrations import migrate
from .outbox import NotificationRecords
from .pages import PageRecords
from .printers import PRINTER_CHANGES, PrinterRecords
from .snapshots import SnapshotRecords
from .spools import SpoolRecords


def attempt_key(key: str) -> str:
    """``key`` as :data:`~fleet.store.schema.failed_attempts` stores it: itself when it is short and
    printable, else ``sha256:`` and its hash (71 characters, which no key stored as itself can be)."""
    if len(key) <= s.ATTEMPT_KEY_CHARS and key.isprintable():
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _check_scope(scope: str) -> None:
    if not 0 < len(scope) <= 32:
        raise ValueError(f"a failed-attempt scope has 1 to 32 characters, not {len(scope)}")


def open_store(url: Optional[str], data_dir: Path, *, busy_timeout: float = 30.0) -> Store:
    """Open (and create or upgrade) the fleet's database; None means SQLite in ``data_dir``."""
    data_dir = Path(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if url is None:
        url = f"sqlite:///{data_dir / 'fleet.db'}"
    engine = make_engine(url, busy_timeout=busy_timeout)
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine)


class Store(
    MemberRecords,
    PrinterRecords,
    EnrollmentRecords,
    JobRecords,
    PageRecords,
    SnapshotRecords,
    LeaseRecords,
    EconomyRecords,
    NotificationRecords,
    SpoolRecords,
):
    """The fleet's persistent state. Takes an engine from :func:`~fleet.store.engine.make_engine`."""

    # -- failed attempts (the sign-in, enrollment code and token limits) ------------------------

    def add_failed_attempt(self, scope: str, key: str, *, now: float) -> None:
        """Record that ``key`` failed once in ``scope`` at ``now`` (a long key is stored hashed)."""
        _check_scope(scope)
        with write_transaction(self._engine) as conn:
            conn.execute(insert(s.failed_attempts).values(scope=scope, key=attempt_key(key), at=now))

    def recent_failed_attempts(self, scope: str, key: str, *, since: float, limit: int) -> list[float]:
        """When ``key``'s latest ``limit`` failures in ``scope`` later than ``since`` were, oldest first."""
        _check_scope(scope)
        attempts = s.failed_attempts.c
        query = (
            select(attempts.at)
            .where(attempts.scope == scope, attempts.key == attempt_key(key), attempts.at > since)
            .order_by(attempts.at.desc())
            .limit(max(0, limit))
        )
        with read_transaction(self._engine) as conn:
            found = [float(at) for at in conn.execute(query).scalars()]
        return found[::-1]

    def clear_failed_attempts(self, scope: str, key: str) -> int:
        """Forget ``key``'s failures in ``scope``; returns how many there were.

        Looks first (a read never waits for writers): a key with no failures, the usual case of a
        success, costs no write transaction.
        """
        _check_scope(scope)
        attempts = s.failed_attempts.c
        mine = and_(attempts.scope == scope, attempts.key == attempt_key(key))
        with read_transaction(self._engine) as conn:
            if not conn.execute(select(exists().where(mine))).scalar_one():
                return 0
        with write_transaction(self._engine) as conn:
            return conn.execute(delete(s.failed_attempts).where(mine)).rowcount

    def prune_failed_attempts(self, scope: str, *, before: float) -> int:
        """Forget every failure in ``scope`` older than ``before``; returns how many there were."""
        _check_scope(scope)
        attempts = s.failed_attempts.c
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                delete(s.failed_attempts).where(attempts.scope == scope, attempts.at < before)
            )
            return result.rowcount

    def ping(self) -> bool:
        """Whether the database answers now (the health check)."""
        try:
            with read_transaction(self._engine) as conn:
                conn.execute(select(1))
        except Exception:
            return False
        return True

    # -- settings -------------------------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        with read_transaction(self._engine) as conn:
            value = conn.execute(
                select(s.settings.c.value).where(s.settings.c.key == key)
            ).scalar_one_or_none()
        return default if value is None else json.loads(value)

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serializable value under ``key``, replacing any previous one."""
        encoded = rows.dumps(value)
        dialect = postgresql if self.backend == "postgresql" else sqlite
        statement = dialect.insert(s.settings).values(key=key, value=encoded)
        statement = statement.on_conflict_do_update(index_elements=["key"], set_={"value": encoded})
        with write_transaction(self._engine) as conn:
            conn.execute(statement)


__all__ = ["PRINTER_CHANGES", "UNSET", "ApiToken", "Store", "SubmissionKey", "attempt_key", "open_store"]
