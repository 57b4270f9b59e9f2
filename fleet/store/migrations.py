"""Schema versions: build a fresh database, upgrade an older one step by step, refuse a newer one.

The ``schema_version`` table holds one row. A fresh database is built from
:mod:`fleet.store.schema` and stamped with its version; a database at version N is brought to
N+1 by ``UPGRADES[N]``, and so on up to the latest. Everything happens in one transaction that
holds a lock (``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two
processes starting at once neither race nor half-apply a step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Callable, Optional

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from ..errors import Unavailable
from . import schema
from .engine import write_transaction

log = logging.getLogger(__name__)

#: One upgrade step: brings the database from its version N to N+1 inside the open transaction.
Step = Callable[[Connection], None]

#: UPGRADES[N] upgrades a database from version N to N+1. Nothing yet: version 1 is the first release.
UPGRADES: Mapping[int, Step] = {}

#: Key of the PostgreSQL advisory lock that serializes migrations ("CrowdFab" in ASCII).
_PG_LOCK_KEY = 0x43726F7764466162


class SchemaTooNew(Unavailable):
    """The database was written by a newer CrowdFab than this one."""


def current_version(conn: Connection) -> Optional[int]:
    """The database's schema version, or None when it has none yet."""
    if not conn.dialect.has_table(conn, schema.schema_version.name):
        return None
    return conn.execute(select(func.max(schema.schema_version.c.version))).scalar_one_or_none()


def migrate(
    engine: Engine, *, latest: int = schema.SCHEMA_VERSION, upgrades: Mapping[int, Step] = UPGRADES
) -> int:
    """Bring the database to version ``latest`` and return it; :class:`SchemaTooNew` if it is past it."""
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        version = current_version(conn)
        if version is None:
            schema.metadata.create_all(conn)
            conn.execute(insert(schema.schema_version).values(version=latest))
            log.info("created the database schema at version %d", latest)
            return latest
        if version > latest:
            raise SchemaTooNew(
                f"the database has schema version {version}, but this CrowdFab only knows versions "
                f"up to {latest}: upgrade CrowdFab, or point it at another database",
                details={"database_version": version, "supported_version": latest},
            )
        missing = [step for step in range(version, latest) if step not in upgrades]
        if missing:
            raise RuntimeError(f"no upgrade step from schema version {missing[0]} to {missing[0] + 1}")
        for step in range(version, latest):
            log.info("upgrading the database schema from version %d to %d", step, step + 1)
            upgrades[step](conn)
        if version != latest:
            conn.execute(update(schema.schema_version).values(version=latest))
        return latest
