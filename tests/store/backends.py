"""Databases for the store tests: a SQLite file, or a throwaway database on a PostgreSQL server.

Reusable beyond the store's tests: :class:`PostgresServer` creates and drops databases, and
:func:`truncate` empties the fleet's tables between tests. The fixtures ``pg_server`` and
``fresh_url`` (in ``tests/conftest.py``) give any test an empty database on either backend.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Optional

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from fleet.store.schema import DATA_TABLES

#: The maintenance database the test databases are created from (override for another server).
PG_ADMIN_URL = os.environ.get(
    "CROWDFAB_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
#: Set to 1 where PostgreSQL must be there (CI): its tests then fail instead of being skipped.
REQUIRE_POSTGRES = os.environ.get("CROWDFAB_REQUIRE_POSTGRES") == "1"

BACKENDS = ("sqlite", "postgresql")


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'fleet.db'}"


class PostgresServer:
    """Creates throwaway databases ``crowdfab_test_<random>`` and drops them all on :meth:`close`."""

    def __init__(self, admin_url: str = PG_ADMIN_URL) -> None:
        self._admin_url = make_url(admin_url)
        self._admin: Optional[Engine] = None
        self._created: list[str] = []

    def unavailable_reason(self) -> Optional[str]:
        """None when the server answers, else why it cannot be used."""
        try:
            with self._engine().connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            where = self._admin_url.render_as_string(hide_password=True)
            return f"PostgreSQL is not reachable at {where} (set CROWDFAB_TEST_PG_ADMIN_URL): {exc.orig}"
        return None

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"crowdfab_test_{uuid.uuid4().hex[:12]}"
        with self._engine().connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self._created.append(name)
        return self._admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        if name in self._created:
            self._created.remove(name)
            self._drop(name)

    def close(self) -> None:
        for name in self._created:
            self._drop(name)
        self._created.clear()
        if self._admin is not None:
            self._admin.dispose()

    def _drop(self, name: str) -> None:
        with self._engine().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def _engine(self) -> Engine:
        if self._admin is None:
            # CREATE/DROP DATABASE cannot run inside a transaction.
            self._admin = create_engine(self._admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        return self._admin


def truncate(engine: Engine) -> None:
    """Empty the fleet's tables and restart their ids (the schema version stays)."""
    if engine.dialect.name == "postgresql":
        names = ", ".join(table.name for table in DATA_TABLES)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        return
    with engine.begin() as conn:
        for table in reversed(DATA_TABLES):
            conn.execute(table.delete())


#: Parameters for a fixture that runs its tests on each backend.
BACKEND_PARAMS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
