"""Engines and transactions that behave the same on SQLite and PostgreSQL.

SQLite gets WAL, foreign keys and a busy timeout on every connection, and its write transactions
start with ``BEGIN IMMEDIATE``: writers from other threads and processes then wait their turn
instead of failing half-way with "database is locked".
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from ..errors import InsufficientStorage, Invalid, Unavailable

SUPPORTED_BACKENDS = ("sqlite", "postgresql")

#: Execution option a connection carries while it runs a write transaction.
_WRITE_OPTION = "crowdfab_write"


def make_engine(url: str, *, busy_timeout: float = 30.0) -> Engine:
    """An engine for ``url``; SQLite waits up to ``busy_timeout`` seconds for another writer."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise Invalid(f"database URL {url!r} is not valid: {exc}", field="database_url") from exc
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise Invalid(
            f"database URL {parsed.render_as_string(hide_password=True)!r} names {backend!r}; "
            "use sqlite:///path/to/fleet.db or postgresql+psycopg://user@host/dbname",
            field="database_url",
        )
    if backend == "sqlite":
        engine = create_engine(parsed, hide_parameters=True)
        _tune_sqlite(engine, busy_timeout)
        return engine
    # A server that does not answer fails a request (and the health check) in seconds, not minutes.
    return create_engine(
        parsed, pool_pre_ping=True, hide_parameters=True, connect_args={"connect_timeout": 5}
    )


def _tune_sqlite(engine: Engine, busy_timeout: float) -> None:
    timeout_ms = max(0, int(busy_timeout * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook, not the driver, decide when transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # The timeout first: switching to WAL briefly needs a lock another process may hold.
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            _switch_to_wal(cursor, busy_timeout)
        finally:
            cursor.close()

    event.listen(engine, "begin", _begin_sqlite)


def _switch_to_wal(cursor: Any, busy_timeout: float) -> None:
    """Put the database in WAL mode (it stays so: later connections find it done).

    SQLite answers "database is locked" at once, without waiting out busy_timeout, when several
    processes switch a new database's journal mode together; so back off and try again, within the
    same overall timeout.
    """
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + busy_timeout
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _begin_sqlite(conn: Connection) -> None:
    if conn.get_execution_options().get(_WRITE_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def is_tuned(engine: Engine) -> bool:
    """True when ``engine`` came from :func:`make_engine` (or is not SQLite, which needs no tuning)."""
    return engine.dialect.name != "sqlite" or event.contains(engine, "begin", _begin_sqlite)


#: SQLite's result code and PostgreSQL's SQLSTATE for a full disk.
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"


def _database_error(exc: OperationalError) -> Unavailable:
    """The fleet's error for a database that cannot be used, naming a full disk as such."""
    orig = exc.orig
    full = (
        getattr(orig, "sqlite_errorcode", None) == _SQLITE_FULL
        or getattr(orig, "sqlstate", None) == _PG_DISK_FULL
        or "database or disk is full" in str(orig)
    )
    if full:
        # The transaction rolled back as a whole: the database is as it was before it.
        return InsufficientStorage(
            f"the disk that holds the fleet's database is full ({orig}); nothing was changed. "
            "A manager must free some space, then try again"
        )
    return Unavailable(f"the database is unavailable: {orig}")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: serialized with other writers from its start on SQLite."""
    try:
        with engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn
    except OperationalError as exc:
        raise _database_error(exc) from exc


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that only reads: it never waits for writers."""
    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except OperationalError as exc:
        raise _database_error(exc) from exc
