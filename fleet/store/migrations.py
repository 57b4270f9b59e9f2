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

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine

from ..errors import Unavailable
from . import schema
from .engine import write_transaction

log = logging.getLogger(__name__)

#: One upgrade step: brings the database from its version N to N+1 inside the open transaction.
Step = Callable[[Connection], None]


def _add_enrollment(conn: Connection) -> None:
    """1 → 2: enrollment codes and printer credentials.

    The tables are spelled out as they were at version 2 (not taken from :mod:`schema`, which moves
    on), on their own metadata; the parents are stubs, only there so the foreign keys resolve.
    """
    meta = MetaData()
    Table("members", meta, Column("id", Integer, primary_key=True))
    Table("printers", meta, Column("id", String(64), primary_key=True))
    epoch: Double[float] = Double(asdecimal=False)
    codes = Table(
        "enrollment_codes",
        meta,
        Column("code_hash", String(64), primary_key=True),
        Column("created_by", Integer, ForeignKey("members.id", ondelete="SET NULL"), nullable=True),
        Column("created_at", epoch, nullable=False),
        Column("expires_at", epoch, nullable=False),
        Column("used_at", epoch, nullable=True),
        Column("used_by_printer", String(64), ForeignKey("printers.id", ondelete="SET NULL"), nullable=True),
    )
    credentials = Table(
        "printer_credentials",
        meta,
        Column("printer_id", String(64), ForeignKey("printers.id", ondelete="CASCADE"), primary_key=True),
        Column("mqtt_password_hash", Text, nullable=False),
        Column("http_token_hash", String(64), nullable=False, unique=True),
        Column("created_at", epoch, nullable=False),
        Column("revoked_at", epoch, nullable=True),
    )
    codes.create(conn)
    credentials.create(conn)


def _add_member_passwords(conn: Connection) -> None:
    """2 → 3: a password hash per member, for signing in to the dashboard (none set yet)."""
    conn.execute(text("ALTER TABLE members ADD COLUMN password_hash TEXT"))


def _add_submission_keys(conn: Connection) -> None:
    """3 → 4: the ``Idempotency-Key`` of each recent submission, with the jobs it made."""
    meta = MetaData()
    Table("members", meta, Column("id", Integer, primary_key=True))
    keys = Table(
        "submission_keys",
        meta,
        Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
        Column("key", String(128), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("job_ids", Text, nullable=False),
        Column("created_at", Double(asdecimal=False), nullable=False),
        Index("ix_submission_keys_created_at", "created_at"),
    )
    keys.create(conn)


def _add_failed_attempts(conn: Connection) -> None:
    """4 → 5: failed sign-ins, enrollment codes and tokens, counted in the database (not per process)."""
    attempts = Table(
        "failed_attempts",
        MetaData(),
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("scope", String(32), nullable=False),
        Column("key", String(71), nullable=False),
        Column("at", Double(asdecimal=False), nullable=False),
        Index("ix_failed_attempts_scope_key_at", "scope", "key", "at"),
    )
    attempts.create(conn)


def _add_link_codes(conn: Connection) -> None:
    """5 → 6: single-use codes a member makes on the dashboard to sign a device in for a token."""
    meta = MetaData()
    Table("members", meta, Column("id", Integer, primary_key=True))
    epoch: Double[float] = Double(asdecimal=False)
    codes = Table(
        "link_codes",
        meta,
        Column("code_hash", String(64), primary_key=True),
        Column(
            "member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        Column("created_at", epoch, nullable=False),
        Column("expires_at", epoch, nullable=False),
    )
    codes.create(conn)


def _add_printer_profile(conn: Connection) -> None:
    """6 → 7: the printer profile (bed shape, heated bed and chamber, extruders) and the owner's lending
    terms, all unknown until the node reports them."""
    for column in (
        "bed_shape VARCHAR(16)",
        "heated_bed BOOLEAN",
        "heated_chamber BOOLEAN",
        "extruders INTEGER",
        "lending TEXT",
    ):
        conn.execute(text(f"ALTER TABLE printers ADD COLUMN {column}"))


def _add_plate_snapshots(conn: Connection) -> None:
    """7 → 8: photos of a printer's plate after a job, kept for a set number of days (stubbed parents)."""
    meta = MetaData()
    Table("printers", meta, Column("id", String(64), primary_key=True))
    Table("jobs", meta, Column("id", Integer, primary_key=True))
    snapshots = Table(
        "plate_snapshots",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("printer_id", String(64), ForeignKey("printers.id", ondelete="CASCADE"), nullable=False),
        Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True, index=True),
        Column("media_type", String(32), nullable=False),
        Column("taken_at", Double(asdecimal=False), nullable=False),
        Column("data", LargeBinary(2 * 1024 * 1024), nullable=False),
        Index("ix_plate_snapshots_taken_at", "taken_at"),
    )
    snapshots.create(conn)


def _add_notifications(conn: Connection) -> None:
    """8 → 9: notifications: members' languages and channels, managers' webhooks, and the outbox of
    deliveries (stubbed parents)."""
    meta = MetaData()
    Table("members", meta, Column("id", Integer, primary_key=True))
    epoch: Double[float] = Double(asdecimal=False)
    profiles = Table(
        "notify_profiles",
        meta,
        Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
        Column("language", String(8), nullable=False),
    )
    channels = Table(
        "notify_channels",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column(
            "member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        Column("label", String(100), nullable=False),
        Column("url", Text, nullable=False),
        Column("shown", String(300), nullable=False),
        Column("service", String(100), nullable=False),
        Column("kinds", Text, nullable=False),
        Column("created_at", epoch, nullable=False),
        Column("failures", Integer, nullable=False),
        Column("paused_at", epoch, nullable=True),
        Column("last_error", Text, nullable=True),
        sqlite_autoincrement=True,
    )
    hooks = Table(
        "webhooks",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("created_by", Integer, ForeignKey("members.id", ondelete="SET NULL"), nullable=True),
        Column("url", Text, nullable=False),
        Column("secret", String(100), nullable=False),
        Column("kinds", Text, nullable=False),
        Column("created_at", epoch, nullable=False),
        Column("failures", Integer, nullable=False),
        Column("paused_at", epoch, nullable=True),
        Column("last_error", Text, nullable=True),
        sqlite_autoincrement=True,
    )
    outbox = Table(
        "outbox",
        meta,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("delivery_key", String(200), nullable=False, unique=True),
        Column("event_key", String(160), nullable=False, index=True),
        Column("kind", String(32), nullable=False),
        Column("channel_id", Integer, ForeignKey("notify_channels.id", ondelete="CASCADE"), nullable=True),
        Column(
            "webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=True, index=True
        ),
        Column("job_id", Integer, nullable=True, index=True),
        Column("data", Text, nullable=False),
        Column("created_at", epoch, nullable=False),
        Column("state", String(16), nullable=False),
        Column("due_at", epoch, nullable=False),
        Column("claimed_until", epoch, nullable=True),
        Column("attempts", Integer, nullable=False),
        Column("sent_at", epoch, nullable=True),
        Column("last_status", Integer, nullable=True),
        Column("last_error", Text, nullable=True),
        Index("ix_outbox_state_due_at", "state", "due_at"),
        sqlite_autoincrement=True,
    )
    for table in (profiles, channels, hooks, outbox):
        table.create(conn)


#: UPGRADES[N] upgrades a database from version N to N+1.
UPGRADES: Mapping[int, Step] = {
    1: _add_enrollment,
    2: _add_member_passwords,
    3: _add_submission_keys,
    4: _add_failed_attempts,
    5: _add_link_codes,
    6: _add_printer_profile,
    7: _add_plate_snapshots,
    8: _add_notifications,
}

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
