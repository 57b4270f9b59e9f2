"""The fleet's tables, as SQLAlchemy Core metadata shared by SQLite and PostgreSQL.

Changing a table here means adding an upgrade step in :mod:`fleet.store.migrations` and raising
:data:`SCHEMA_VERSION`: a fresh database is built from this metadata, an existing one is upgraded.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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
    false,
)

#: The version this code writes and understands.
SCHEMA_VERSION = 14

metadata = MetaData()


def _epoch(name: str, *, nullable: bool = False) -> Column[float]:
    """A timestamp in float seconds since the epoch (double precision on PostgreSQL)."""
    return Column(name, Double(asdecimal=False), nullable=nullable)


schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

members = Table(
    "members",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("requires_approval", Boolean, nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    _epoch("created_at"),
    # For the dashboard's sign-in: werkzeug's salted scrypt format; None until a password is set.
    Column("password_hash", Text, nullable=True),
    # Ids appear in tokens, events and logs: never hand a deleted row's id to somebody else.
    sqlite_autoincrement=True,
)

api_tokens = Table(
    "api_tokens",
    metadata,
    # The SHA-256 of the token, hex: the token itself is shown once and never stored.
    Column("token_hash", String(64), primary_key=True),
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("label", Text, nullable=False, default=""),
    _epoch("created_at"),
    _epoch("last_used_at", nullable=True),
    # True for a token a device signed in for (POST /tokens: an OctoPrint user on a printer); False for
    # the member's own API token, the one ``POST /members/{id}/token`` replaces.
    Column("device", Boolean, nullable=False, server_default=false()),
)

printers = Table(
    "printers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("state", String(32), nullable=False),
    Column("min_x", Double(asdecimal=False), nullable=False),
    Column("min_y", Double(asdecimal=False), nullable=False),
    Column("min_z", Double(asdecimal=False), nullable=False),
    Column("max_x", Double(asdecimal=False), nullable=False),
    Column("max_y", Double(asdecimal=False), nullable=False),
    Column("max_z", Double(asdecimal=False), nullable=False),
    Column("nozzle_diameter", Double(asdecimal=False), nullable=False),
    Column("material", String(64), nullable=True),
    Column("restricted", Boolean, nullable=False, default=False),
    # No foreign key: jobs already point at printers, and a cycle would complicate table creation.
    Column("current_job_id", Integer, nullable=True),
    _epoch("last_seen", nullable=True),
    _epoch("created_at"),
    # Extras a printer reports (firmware, features); JSON object.
    Column("capabilities", Text, nullable=False, default="{}"),
    # What the printer profile says; NULL where the node does not know (the scheduler then assumes
    # a rectangular bed, a heated bed and as many extruders as the job needs).
    Column("bed_shape", String(16), nullable=True),
    Column("heated_bed", Boolean, nullable=True),
    Column("heated_chamber", Boolean, nullable=True),
    Column("extruders", Integer, nullable=True),
    # The owner's lending terms (fleet.lending, JSON); NULL: lent whenever idle, any material.
    Column("lending", Text, nullable=True),
)

grants = Table(
    "grants",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("printer_id", String(64), ForeignKey("printers.id", ondelete="CASCADE"), primary_key=True),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("state", String(32), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("file_sha256", String(64), nullable=False),
    Column("filename", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("material", String(64), nullable=True),
    Column("note", Text, nullable=False, default=""),
    # The G-code analysis as a JSON object.
    Column("analysis", Text, nullable=False, default="{}"),
    Column("printer_id", String(64), ForeignKey("printers.id"), nullable=True),
    _epoch("submitted_at"),
    _epoch("updated_at"),
    _epoch("started_at", nullable=True),
    _epoch("finished_at", nullable=True),
    # The colour asked for (a name, compared without case); NULL: any colour of the material.
    Column("colour", String(32), nullable=True),
    Index("ix_jobs_state", "state"),
    Index("ix_jobs_member_id", "member_id"),
    Index("ix_jobs_file_sha256", "file_sha256"),
    sqlite_autoincrement=True,
)

job_events = Table(
    "job_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    _epoch("at"),
    Column("from_state", String(32), nullable=True),
    Column("to_state", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("data", Text, nullable=False, default="{}"),
    Index("ix_job_events_job_id", "job_id"),
    sqlite_autoincrement=True,
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
)

enrollment_codes = Table(
    "enrollment_codes",
    metadata,
    # The SHA-256 of the normalised code, hex: the code itself is shown once and never stored.
    Column("code_hash", String(64), primary_key=True),
    # None: made at the console (``crowdfab-fleet enroll-code``), not by a member through the API.
    Column("created_by", Integer, ForeignKey("members.id", ondelete="SET NULL"), nullable=True),
    _epoch("created_at"),
    _epoch("expires_at"),
    _epoch("used_at", nullable=True),
    Column("used_by_printer", String(64), ForeignKey("printers.id", ondelete="SET NULL"), nullable=True),
)

printer_credentials = Table(
    "printer_credentials",
    metadata,
    Column("printer_id", String(64), ForeignKey("printers.id", ondelete="CASCADE"), primary_key=True),
    # Mosquitto's password-file format (PBKDF2-SHA512), written into the managed broker's passwd file.
    Column("mqtt_password_hash", Text, nullable=False),
    # The SHA-256 of the printer's HTTP token, hex.
    Column("http_token_hash", String(64), nullable=False, unique=True),
    _epoch("created_at"),
    _epoch("revoked_at", nullable=True),
)

submission_keys = Table(
    "submission_keys",
    metadata,
    # A member's ``Idempotency-Key``: a retry with the same key gets the jobs the first request made.
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(128), primary_key=True),
    # SHA-256 (hex) of what the request asked for: the file's hash, copies, material and note.
    Column("request_hash", String(64), nullable=False),
    # The ids of the jobs the request made, as a JSON array.
    Column("job_ids", Text, nullable=False),
    _epoch("created_at"),
    Index("ix_submission_keys_created_at", "created_at"),
)

link_codes = Table(
    "link_codes",
    metadata,
    # The SHA-256 of the normalised code, hex: the member sees the code once, it is never stored.
    Column("code_hash", String(64), primary_key=True),
    # Whose token the code is exchanged for: a deleted member's codes go with it.
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False, index=True),
    _epoch("created_at"),
    _epoch("expires_at"),
    # When it was spent: a used code is kept (until a while after it expires) so that typing it again
    # is told "already used", not "unknown".
    _epoch("used_at", nullable=True),
)

#: A failed attempt's key up to this many characters is stored as it is; a longer one (or one with
#: characters that are not printable) as ``sha256:`` and its hash, so the column stays small whatever
#: a client sends (see :func:`fleet.store.db.attempt_key`).
ATTEMPT_KEY_CHARS = 64

failed_attempts = Table(
    "failed_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    # Which limit counts it: "signin", "enroll", "link", "token" (each limiter has its own scope).
    Column("scope", String(32), nullable=False),
    # Who failed: a remote address, or a name and an address; bounded (``sha256:`` + 64 hex digits).
    Column("key", String(71), nullable=False),
    # Wall-clock time (shared by every fleet process on the database).
    _epoch("at"),
    Index("ix_failed_attempts_scope_key_at", "scope", "key", "at"),
)

#: The largest plate photo a row holds (the fleet refuses larger uploads before they reach the store).
SNAPSHOT_MAX_BYTES = 2 * 1024 * 1024

plate_snapshots = Table(
    "plate_snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("printer_id", String(64), ForeignKey("printers.id", ondelete="CASCADE"), nullable=False),
    # The job the photo was taken after; its page shows it (and who may see the job may see it).
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("media_type", String(32), nullable=False),
    _epoch("taken_at"),
    Column("data", LargeBinary(SNAPSHOT_MAX_BYTES), nullable=False),
    Index("ix_plate_snapshots_taken_at", "taken_at"),
)

#: Background duties that one fleet process at a time carries out (the dispatch loop, the sweeps ...):
#: each is a lease its holder renews; another process takes it over once it has expired.
duty_leases = Table(
    "duty_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    # Who holds it: a fleet process's MQTT client id (one a running process, kept across its restarts).
    Column("holder", String(128), nullable=False),
    # Until when, wall-clock time shared by every fleet process (kept by NTP across machines).
    _epoch("expires_at"),
    # Since when this holder has held it without a break.
    _epoch("held_since"),
)

# -- the lab's economy: its price list, the ledger, membership groups and quotas --------------------

price_lists = Table(
    "price_lists",
    metadata,
    # Every change is a new row, so a charge names the very prices it was computed from.
    Column("id", Integer, primary_key=True, autoincrement=True),
    # fleet.economy.pricing.PriceList.to_dict(), JSON; prices as decimal text, never floats.
    Column("body", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    _epoch("created_at"),
    sqlite_autoincrement=True,
)

charges = Table(
    "charges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # One charge per job, fixed when it ends; a ledger row outlives nothing it points to.
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False, unique=True),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    _epoch("at"),
    # ISO 4217, and the sum of the lines in its minor unit (cents).
    Column("currency", String(3), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    # The job's end: done, failed or cancelled.
    Column("outcome", String(32), nullable=False),
    Column("price_list_id", Integer, ForeignKey("price_lists.id"), nullable=True),
    Index("ix_charges_member_id_at", "member_id", "at"),
    Index("ix_charges_at", "at"),
    sqlite_autoincrement=True,
)

charge_lines = Table(
    "charge_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("charge_id", Integer, ForeignKey("charges.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    # material, machine, minimum, unfinished (fleet.economy.pricing.LineKind).
    Column("kind", String(16), nullable=False),
    Column("description", Text, nullable=False),
    # Decimal text: grams, printer-hours, or a share.
    Column("quantity", String(40), nullable=False),
    Column("unit", String(8), nullable=False),
    Column("unit_price", String(40), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
)

member_groups = Table(
    "member_groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    # Added to the priority of every job of the group's members (may be negative).
    Column("priority", Integer, nullable=False, default=0),
    _epoch("created_at"),
    sqlite_autoincrement=True,
)

group_members = Table(
    "group_members",
    metadata,
    # A member belongs to at most one group.
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "group_id", Integer, ForeignKey("member_groups.id", ondelete="CASCADE"), nullable=False, index=True
    ),
)

quotas = Table(
    "quotas",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Exactly one of the two: a group's quota applies to each of its members, a member's replaces it.
    Column("group_id", Integer, ForeignKey("member_groups.id", ondelete="CASCADE"), nullable=True),
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=True),
    # "group:3" or "member:7": one quota per holder and period.
    Column("holder", String(32), nullable=False),
    # day, week or month (fleet.economy.periods.Period), in the lab's time zone.
    Column("period", String(8), nullable=False),
    # Limits; NULL: none. Hours and grams as decimal text, cost in the lab currency's minor unit.
    Column("printer_hours", String(40), nullable=True),
    Column("grams", String(40), nullable=True),
    Column("cost_minor", BigInteger, nullable=True),
    Column("jobs_at_once", Integer, nullable=True),
    Index("ux_quotas_holder_period", "holder", "period", unique=True),
)

quota_lifts = Table(
    "quota_lifts",
    metadata,
    # A manager lifted every quota for this one job (its history records who, when).
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("actor", String(200), nullable=False),
    _epoch("at"),
)

spools = Table(
    "spools",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("material", String(32), nullable=False),
    Column("colour_name", String(32), nullable=False),
    Column("colour_hex", String(7), nullable=False),
    Column("diameter_mm", Double(asdecimal=False), nullable=False),
    Column("vendor", String(80), nullable=False, default=""),
    Column("net_grams", Double(asdecimal=False), nullable=False),
    Column("remaining_grams", Double(asdecimal=False), nullable=False),
    # Exact: minor units of the lab's currency (cents) per kilogram.
    Column("price_per_kg", BigInteger, nullable=False),
    # The printer it is loaded on (at most one spool a printer); NULL: on its shelf.
    Column("printer_id", String(64), ForeignKey("printers.id", ondelete="SET NULL"), nullable=True),
    Column("shelf", String(80), nullable=False, default=""),
    _epoch("created_at"),
    _epoch("updated_at"),
    Index("ix_spools_printer_id", "printer_id", unique=True),
    sqlite_autoincrement=True,
)

spool_uses = Table(
    "spool_uses",
    metadata,
    # One row a job: what it took from the spool on its printer, recorded once, when it ended.
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("spool_id", Integer, ForeignKey("spools.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("grams", Double(asdecimal=False), nullable=False),
    _epoch("at"),
)

# -- notifications: members' channels, managers' webhooks, the outbox of deliveries -------------------

notify_profiles = Table(
    "notify_profiles",
    metadata,
    # The language a member's notifications are written in ("en", "fr").
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("language", String(8), nullable=False),
)

notify_channels = Table(
    "notify_channels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("label", String(100), nullable=False),
    # The Apprise URL, secrets and all: used to send, never sent back or logged (``shown`` is).
    Column("url", Text, nullable=False),
    Column("shown", String(300), nullable=False),
    Column("service", String(100), nullable=False),
    # The event kinds this channel is told of, as a JSON array.
    Column("kinds", Text, nullable=False, default="[]"),
    _epoch("created_at"),
    # Failures in a row; at the limit the channel is paused until its member resumes it.
    Column("failures", Integer, nullable=False, default=0),
    _epoch("paused_at", nullable=True),
    Column("last_error", Text, nullable=True),
    sqlite_autoincrement=True,
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_by", Integer, ForeignKey("members.id", ondelete="SET NULL"), nullable=True),
    Column("url", Text, nullable=False),
    # The shared HMAC secret: the fleet signs with it, so it is kept as given (shown once).
    Column("secret", String(100), nullable=False),
    Column("kinds", Text, nullable=False, default="[]"),
    _epoch("created_at"),
    Column("failures", Integer, nullable=False, default=0),
    _epoch("paused_at", nullable=True),
    Column("last_error", Text, nullable=True),
    sqlite_autoincrement=True,
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    # The event and where it goes: unique, so an event reaches each channel or webhook at most once.
    Column("delivery_key", String(200), nullable=False, unique=True),
    Column("event_key", String(160), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("channel_id", Integer, ForeignKey("notify_channels.id", ondelete="CASCADE"), nullable=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=True, index=True),
    # The job the event is about (its plate photo goes with a "done"); no foreign key, as in the log.
    Column("job_id", Integer, nullable=True, index=True),
    # What the texts and the webhook body are made from (JSON object).
    Column("data", Text, nullable=False, default="{}"),
    _epoch("created_at"),
    # "pending", "sent" or "failed" (gave up after the last attempt).
    Column("state", String(16), nullable=False),
    _epoch("due_at"),
    # A worker that took the row holds it until then; past it, the row is free again (a crash).
    _epoch("claimed_until", nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    _epoch("sent_at", nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_outbox_state_due_at", "state", "due_at"),
    sqlite_autoincrement=True,
)

#: The tables holding the fleet's data, parents before children (everything but the version).
DATA_TABLES = (
    members,
    api_tokens,
    printers,
    grants,
    jobs,
    job_events,
    settings,
    enrollment_codes,
    printer_credentials,
    submission_keys,
    failed_attempts,
    link_codes,
    plate_snapshots,
    duty_leases,
    price_lists,
    charges,
    charge_lines,
    member_groups,
    group_members,
    quotas,
    quota_lifts,
    spools,
    spool_uses,
    notify_profiles,
    notify_channels,
    webhooks,
    outbox,
)
