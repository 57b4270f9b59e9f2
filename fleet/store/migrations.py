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


#: The channel PostgreSQL's triggers announce every committed change of a job or a printer on.
CHANGE_CHANNEL = "crowdfab_changes"

#: Triggers that announce, in the transaction that makes it, each change of a job or a printer, so
#: every fleet process on the database hears of it when (and only if) it commits. A note is
#: ``job <id> <state> <printer id> [<previous printer id>]`` or ``printer <id> <state>`` (the state
#: ``removed`` for a deleted row); a printer row whose only change is ``last_seen`` (written for all
#: printers every half minute) makes none. A printer's credentials (enrolled, revoked) and the spool
#: on it (loaded, unloaded, edited, used) are part of what the fleet knows of the printer: their
#: changes are announced as a ``printer`` note with the printer's state. :mod:`fleet.store.changes`
#: listens and reads them.
CHANGE_NOTES_DDL = (
    f"""
CREATE OR REPLACE FUNCTION crowdfab_note_job() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('{CHANGE_CHANNEL}', 'job ' || OLD.id || ' removed '
            || coalesce(OLD.printer_id, ''));
        RETURN OLD;
    END IF;
    PERFORM pg_notify('{CHANGE_CHANNEL}', 'job ' || NEW.id || ' ' || NEW.state || ' '
        || coalesce(NEW.printer_id, '')
        || CASE WHEN TG_OP = 'UPDATE' AND OLD.printer_id IS DISTINCT FROM NEW.printer_id
                THEN ' ' || coalesce(OLD.printer_id, '') ELSE '' END);
    RETURN NEW;
END
$fn$""",
    f"""
CREATE OR REPLACE FUNCTION crowdfab_note_printer() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('{CHANGE_CHANNEL}', 'printer ' || OLD.id || ' removed');
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND (to_jsonb(NEW) - 'last_seen') = (to_jsonb(OLD) - 'last_seen') THEN
        RETURN NEW;
    END IF;
    PERFORM pg_notify('{CHANGE_CHANNEL}', 'printer ' || NEW.id || ' ' || NEW.state);
    RETURN NEW;
END
$fn$""",
    "DROP TRIGGER IF EXISTS crowdfab_note_job ON jobs",
    "CREATE TRIGGER crowdfab_note_job AFTER INSERT OR UPDATE OR DELETE ON jobs "
    "FOR EACH ROW EXECUTE FUNCTION crowdfab_note_job()",
    "DROP TRIGGER IF EXISTS crowdfab_note_printer ON printers",
    "CREATE TRIGGER crowdfab_note_printer AFTER INSERT OR UPDATE OR DELETE ON printers "
    "FOR EACH ROW EXECUTE FUNCTION crowdfab_note_printer()",
)

#: The notes of a printer's credentials and spool (added by version 14, whose tables exist by then).
PRINTER_PARTS_NOTES_DDL = (
    f"""
CREATE OR REPLACE FUNCTION crowdfab_note_of_printer(printer text) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    current text;
BEGIN
    IF printer IS NULL THEN
        RETURN;
    END IF;
    SELECT state INTO current FROM printers WHERE id = printer;
    IF current IS NOT NULL THEN
        PERFORM pg_notify('{CHANGE_CHANNEL}', 'printer ' || printer || ' ' || current);
    END IF;
END
$fn$""",  # noqa: S608 (the channel is a constant of ours: nothing from outside goes in)
    """
CREATE OR REPLACE FUNCTION crowdfab_note_credentials() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM crowdfab_note_of_printer(NEW.printer_id);
    RETURN NEW;
END
$fn$""",
    """
CREATE OR REPLACE FUNCTION crowdfab_note_spool() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM crowdfab_note_of_printer(OLD.printer_id);
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR OLD.printer_id IS DISTINCT FROM NEW.printer_id) THEN
        PERFORM crowdfab_note_of_printer(NEW.printer_id);
    END IF;
    RETURN NULL;
END
$fn$""",
    "DROP TRIGGER IF EXISTS crowdfab_note_credentials ON printer_credentials",
    "CREATE TRIGGER crowdfab_note_credentials AFTER INSERT OR UPDATE ON printer_credentials "
    "FOR EACH ROW EXECUTE FUNCTION crowdfab_note_credentials()",
    "DROP TRIGGER IF EXISTS crowdfab_note_spool ON spools",
    "CREATE TRIGGER crowdfab_note_spool AFTER INSERT OR UPDATE OR DELETE ON spools "
    "FOR EACH ROW EXECUTE FUNCTION crowdfab_note_spool()",
)


def install_change_notes(
    conn: Connection, ddl: tuple[str, ...] = CHANGE_NOTES_DDL + PRINTER_PARTS_NOTES_DDL
) -> None:
    """On PostgreSQL, (re)create the triggers of ``ddl`` (all of them unless a migration step names
    those of its version); SQLite has one process."""
    if conn.dialect.name == "postgresql":
        for statement in ddl:
            conn.exec_driver_sql(statement)


def _add_duty_leases(conn: Connection) -> None:
    """8 → 9: leases of the once-only background duties, and (PostgreSQL) the change notes."""
    meta = MetaData()
    epoch: Double[float] = Double(asdecimal=False)
    leases = Table(
        "duty_leases",
        meta,
        Column("name", String(64), primary_key=True),
        Column("holder", String(128), nullable=False),
        Column("expires_at", epoch, nullable=False),
        Column("held_since", epoch, nullable=False),
    )
    leases.create(conn)
    install_change_notes(conn, CHANGE_NOTES_DDL)


def _add_economy(conn: Connection) -> None:
    """9 → 10: the lab's economy: price lists, charges and their lines, membership groups, quotas and
    quota lifts (parents stubbed)."""
    meta = MetaData()
    Table("members", meta, Column("id", Integer, primary_key=True))
    Table("jobs", meta, Column("id", Integer, primary_key=True))
    epoch: Double[float] = Double(asdecimal=False)
    Table(
        "price_lists",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("body", Text, nullable=False),
        Column("actor", String(200), nullable=False),
        Column("created_at", epoch, nullable=False),
        sqlite_autoincrement=True,
    )
    Table(
        "charges",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False, unique=True),
        Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
        Column("at", epoch, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("total_minor", BigInteger, nullable=False),
        Column("outcome", String(32), nullable=False),
        Column("price_list_id", Integer, ForeignKey("price_lists.id"), nullable=True),
        Index("ix_charges_member_id_at", "member_id", "at"),
        Index("ix_charges_at", "at"),
        sqlite_autoincrement=True,
    )
    Table(
        "charge_lines",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column(
            "charge_id", Integer, ForeignKey("charges.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        Column("position", Integer, nullable=False),
        Column("kind", String(16), nullable=False),
        Column("description", Text, nullable=False),
        Column("quantity", String(40), nullable=False),
        Column("unit", String(8), nullable=False),
        Column("unit_price", String(40), nullable=False),
        Column("amount_minor", BigInteger, nullable=False),
    )
    Table(
        "member_groups",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(64), nullable=False, unique=True),
        Column("priority", Integer, nullable=False),
        Column("created_at", epoch, nullable=False),
        sqlite_autoincrement=True,
    )
    Table(
        "group_members",
        meta,
        Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
        Column(
            "group_id",
            Integer,
            ForeignKey("member_groups.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
    )
    Table(
        "quotas",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("group_id", Integer, ForeignKey("member_groups.id", ondelete="CASCADE"), nullable=True),
        Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=True),
        Column("holder", String(32), nullable=False),
        Column("period", String(8), nullable=False),
        Column("printer_hours", String(40), nullable=True),
        Column("grams", String(40), nullable=True),
        Column("cost_minor", BigInteger, nullable=True),
        Column("jobs_at_once", Integer, nullable=True),
        Index("ux_quotas_holder_period", "holder", "period", unique=True),
    )
    Table(
        "quota_lifts",
        meta,
        Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        Column("actor", String(200), nullable=False),
        Column("at", epoch, nullable=False),
    )
    meta.create_all(conn, tables=[t for name, t in meta.tables.items() if name not in ("members", "jobs")])


def _split_device_tokens(conn: Connection) -> None:
    """10 → 11: a member's device sign-ins apart from their own API token, and spent link codes kept.

    Until now only ``POST /tokens`` (a device signing in) named its tokens otherwise than ``initial``
    or ``reissued``, so those are the device sign-ins; a member's token rotation now leaves them be.
    """
    conn.execute(text("ALTER TABLE api_tokens ADD COLUMN device BOOLEAN NOT NULL DEFAULT false"))
    conn.execute(text("UPDATE api_tokens SET device = true WHERE label NOT IN ('initial', 'reissued')"))
    epoch = Double(asdecimal=False).compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE link_codes ADD COLUMN used_at {epoch}"))


def _add_spools(conn: Connection) -> None:
    """11 → 12: spools (material, colour, grams, price, where), what each job took from one, and the
    colour a job asks for (stubbed parents)."""
    meta = MetaData()
    Table("printers", meta, Column("id", String(64), primary_key=True))
    Table("jobs", meta, Column("id", Integer, primary_key=True))
    epoch: Double[float] = Double(asdecimal=False)
    spools = Table(
        "spools",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("material", String(32), nullable=False),
        Column("colour_name", String(32), nullable=False),
        Column("colour_hex", String(7), nullable=False),
        Column("diameter_mm", epoch, nullable=False),
        Column("vendor", String(80), nullable=False, default=""),
        Column("net_grams", epoch, nullable=False),
        Column("remaining_grams", epoch, nullable=False),
        Column("price_per_kg", BigInteger, nullable=False),
        Column("printer_id", String(64), ForeignKey("printers.id", ondelete="SET NULL"), nullable=True),
        Column("shelf", String(80), nullable=False, default=""),
        Column("created_at", epoch, nullable=False),
        Column("updated_at", epoch, nullable=False),
        Index("ix_spools_printer_id", "printer_id", unique=True),
        sqlite_autoincrement=True,
    )
    uses = Table(
        "spool_uses",
        meta,
        Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        Column("spool_id", Integer, ForeignKey("spools.id", ondelete="CASCADE"), nullable=False, index=True),
        Column("grams", epoch, nullable=False),
        Column("at", epoch, nullable=False),
    )
    spools.create(conn)
    uses.create(conn)
    conn.execute(text("ALTER TABLE jobs ADD COLUMN colour VARCHAR(32)"))


def _add_notifications(conn: Connection) -> None:
    """12 → 13: notifications: members' languages and channels, managers' webhooks, and the outbox of
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


def _note_credentials_and_spools(conn: Connection) -> None:
    """13 → 14: (PostgreSQL) changes of a printer's credentials and of the spool on it are announced
    as notes of the printer, so that every fleet process checks its next status in full."""
    install_change_notes(conn, PRINTER_PARTS_NOTES_DDL)


#: UPGRADES[N] upgrades a database from version N to N+1.
UPGRADES: Mapping[int, Step] = {
    1: _add_enrollment,
    2: _add_member_passwords,
    3: _add_submission_keys,
    4: _add_failed_attempts,
    5: _add_link_codes,
    6: _add_printer_profile,
    7: _add_plate_snapshots,
    8: _add_duty_leases,
    9: _add_economy,
    10: _split_device_tokens,
    11: _add_spools,
    12: _add_notifications,
    13: _note_credentials_and_spools,
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
            install_change_notes(conn)
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
