"""The store: the fleet's members, printers, jobs and settings in SQLite or PostgreSQL.

Every public method is one transaction and returns the records of :mod:`fleet.models`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional, Union

from sqlalchemy import Table, and_, bindparam, delete, exists, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, Invalid, NotFound
from ..models import EnrollmentCode, Job, JobEvent, Member, Printer, PrinterCredentials, Role
from ..states import TERMINAL, JobState, PrinterState, check_job_transition, check_printer_transition
from . import rows
from . import schema as s
from .blobs import is_sha256_hex
from .engine import is_tuned, make_engine, read_transaction, write_transaction
from .migrations import migrate


class _Lost(Exception):
    """A claim lost a race half-way: its transaction must roll back."""


class _Unset(Enum):
    UNSET = "unset"


#: Default of optional arguments where None is a meaningful value ("leave it as it is").
UNSET = _Unset.UNSET

#: Printer fields :meth:`Store.update_printer` may change.
PRINTER_CHANGES = frozenset(
    {
        "name",
        "state",
        "volume",
        "nozzle_diameter",
        "material",
        "restricted",
        "current_job_id",
        "last_seen",
        "capabilities",
    }
)


@dataclass(frozen=True)
class ApiToken:
    """A member's API token as stored: its hash, never the token."""

    token_hash: str
    member_id: int
    label: str
    created_at: float
    last_used_at: Optional[float]


@dataclass(frozen=True)
class SubmissionKey:
    """A submission's ``Idempotency-Key`` with the hash of what the request asked for."""

    key: str
    request_hash: str
    #: A key recorded before this moment has expired: sending it again makes a new submission.
    valid_after: float


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


def _insert(conn: Connection, table: Table, values: Mapping[str, Any]) -> int:
    """Insert a row and return its new integer id."""
    key = conn.execute(insert(table).values(values)).inserted_primary_key
    assert key is not None
    return int(key[0])


class Store:
    """The fleet's persistent state. Takes an engine from :func:`~fleet.store.engine.make_engine`."""

    def __init__(self, engine: Engine) -> None:
        if not is_tuned(engine):
            raise ValueError("a SQLite engine for Store must come from fleet.store.engine.make_engine()")
        self._engine = engine

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

    # -- members and tokens -------------------------------------------------------------------

    def create_member(
        self, name: str, role: Role, *, requires_approval: Optional[bool] = None, now: float
    ) -> Member:
        """Add a member; :class:`Conflict` if the name is taken."""
        values = {
            "name": name,
            "role": Role(role).value,
            "requires_approval": requires_approval,
            "active": True,
            "created_at": now,
        }
        try:
            with write_transaction(self._engine) as conn:
                self._refuse_taken_name(conn, name)
                member_id = _insert(conn, s.members, values)
                return self._member(conn, member_id)
        except IntegrityError as exc:
            # Another process took the name between our check and our insert.
            raise self._name_taken(name) from exc

    def get_member(self, member_id: int) -> Member:
        with read_transaction(self._engine) as conn:
            return self._member(conn, member_id)

    def get_member_by_name(self, name: str) -> Member:
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(s.members).where(s.members.c.name == name)).first()
        if row is None:
            raise NotFound(f"there is no member named {name!r}", field="name")
        return rows.member(row)

    def list_members(self) -> list[Member]:
        with read_transaction(self._engine) as conn:
            found = conn.execute(select(s.members).order_by(s.members.c.id)).all()
        return [rows.member(row) for row in found]

    def update_member(
        self,
        member_id: int,
        *,
        role: Optional[Role] = None,
        requires_approval: Union[Optional[bool], _Unset] = UNSET,
        active: Optional[bool] = None,
    ) -> Member:
        """Change a member's role, approval override (None follows the lab) or active flag."""
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = Role(role).value
        if requires_approval is not UNSET:
            values["requires_approval"] = requires_approval
        if active is not None:
            values["active"] = bool(active)
        with write_transaction(self._engine) as conn:
            member = self._member(conn, member_id)
            if not values:
                return member
            conn.execute(update(s.members).where(s.members.c.id == member_id).values(values))
            return self._member(conn, member_id)

    def add_token(self, member_id: int, token_hash: str, label: str, now: float) -> None:
        """Store the SHA-256 (hex) of a new API token for a member."""
        if not is_sha256_hex(token_hash):
            raise Invalid("token_hash must be the SHA-256 of the token in lowercase hex", field="token_hash")
        try:
            with write_transaction(self._engine) as conn:
                self._member(conn, member_id)
                taken = conn.execute(
                    select(exists().where(s.api_tokens.c.token_hash == token_hash))
                ).scalar_one()
                if taken:
                    raise Conflict("this token is already registered", field="token_hash")
                conn.execute(
                    insert(s.api_tokens).values(
                        token_hash=token_hash, member_id=member_id, label=label, created_at=now
                    )
                )
        except IntegrityError as exc:
            raise Conflict("this token is already registered", field="token_hash") from exc

    def member_for_token(self, token_hash: str, now: float) -> Optional[Member]:
        """The active member a token belongs to (noting the token was used), or None."""
        query = (
            select(s.members)
            .join(s.api_tokens, s.api_tokens.c.member_id == s.members.c.id)
            .where(s.api_tokens.c.token_hash == token_hash, s.members.c.active.is_(True))
        )
        with write_transaction(self._engine) as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            conn.execute(
                update(s.api_tokens).where(s.api_tokens.c.token_hash == token_hash).values(last_used_at=now)
            )
            return rows.member(row)

    def list_tokens(self, member_id: int) -> list[ApiToken]:
        """A member's tokens (hashes and labels), oldest first."""
        with read_transaction(self._engine) as conn:
            found = conn.execute(
                select(s.api_tokens)
                .where(s.api_tokens.c.member_id == member_id)
                .order_by(s.api_tokens.c.created_at, s.api_tokens.c.token_hash)
            ).all()
        return [
            ApiToken(row.token_hash, row.member_id, row.label, row.created_at, row.last_used_at)
            for row in found
        ]

    def revoke_tokens(self, member_id: int) -> int:
        """Delete all of a member's tokens; returns how many there were."""
        with write_transaction(self._engine) as conn:
            result = conn.execute(delete(s.api_tokens).where(s.api_tokens.c.member_id == member_id))
            return result.rowcount

    def set_password_hash(self, member_id: int, password_hash: Optional[str]) -> None:
        """Store a member's password hash (None: no password, so no sign-in to the dashboard)."""
        with write_transaction(self._engine) as conn:
            self._member(conn, member_id)
            conn.execute(
                update(s.members).where(s.members.c.id == member_id).values(password_hash=password_hash)
            )

    def password_hash(self, member_id: int) -> Optional[str]:
        """A member's stored password hash, or None when none is set."""
        with read_transaction(self._engine) as conn:
            value = conn.execute(
                select(s.members.c.password_hash).where(s.members.c.id == member_id)
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def member_with_password(self, name: str) -> Optional[tuple[Member, Optional[str]]]:
        """The member of that name and its password hash, or None when there is no such member."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(s.members).where(s.members.c.name == name)).first()
        if row is None:
            return None
        return rows.member(row), row.password_hash

    # -- printers and grants ------------------------------------------------------------------

    def create_printer(
        self, printer: Printer, *, capabilities: Optional[Mapping[str, Any]] = None
    ) -> Printer:
        """Add a printer; :class:`Conflict` if its id is taken."""
        values = {
            "id": printer.id,
            "name": printer.name,
            "state": PrinterState(printer.state).value,
            **rows.volume_columns(printer.volume),
            "nozzle_diameter": printer.nozzle_diameter,
            "material": printer.material,
            "restricted": printer.restricted,
            "current_job_id": printer.current_job_id,
            "last_seen": printer.last_seen,
            "created_at": printer.created_at,
            "capabilities": rows.dumps(dict(capabilities or {})),
        }
        taken = Conflict(f"a printer with id {printer.id!r} already exists", field="id")
        try:
            with write_transaction(self._engine) as conn:
                if conn.execute(select(exists().where(s.printers.c.id == printer.id))).scalar_one():
                    raise taken
                conn.execute(insert(s.printers).values(values))
                return self._printer(conn, printer.id)
        except IntegrityError as exc:
            raise taken from exc

    def get_printer(self, printer_id: str) -> Printer:
        with read_transaction(self._engine) as conn:
            return self._printer(conn, printer_id)

    def list_printers(self) -> list[Printer]:
        with read_transaction(self._engine) as conn:
            found = conn.execute(select(s.printers).order_by(s.printers.c.id)).all()
        return [rows.printer(row) for row in found]

    def printer_capabilities(self, printer_id: str) -> dict[str, Any]:
        """The extras a printer reported (firmware, features), as stored."""
        with read_transaction(self._engine) as conn:
            value = conn.execute(
                select(s.printers.c.capabilities).where(s.printers.c.id == printer_id)
            ).scalar_one_or_none()
        if value is None:
            raise self._no_printer(printer_id)
        capabilities: dict[str, Any] = json.loads(value)
        return capabilities

    def update_printer(
        self, printer_id: str, *, expect: Optional[Collection[PrinterState]] = None, **changes: Any
    ) -> Printer:
        """Change some of a printer's fields (see :data:`PRINTER_CHANGES`).

        A new ``state`` must be a move :data:`~fleet.states.PRINTER_TRANSITIONS` allows, from the
        state found in this transaction, and (with ``expect``) from one of those: :class:`Conflict`
        otherwise, and nothing changes.
        """
        unknown = sorted(set(changes) - PRINTER_CHANGES)
        if unknown:
            raise TypeError(f"update_printer() cannot change {', '.join(unknown)}")
        values = dict(changes)
        if "volume" in values:
            values.update(rows.volume_columns(values.pop("volume")))
        if "state" in values:
            values["state"] = PrinterState(values["state"]).value
        if "capabilities" in values:
            values["capabilities"] = rows.dumps(dict(values["capabilities"]))
        with write_transaction(self._engine) as conn:
            current = self._printer(conn, printer_id, lock="state" in values or expect is not None)
            if expect is not None and current.state not in expect:
                raise self._printer_not_in(current, expect)
            if "state" in values:
                check_printer_transition(current.state, PrinterState(values["state"]))
            if values:
                conn.execute(update(s.printers).where(s.printers.c.id == printer_id).values(values))
            return self._printer(conn, printer_id)

    def touch_printers(self, seen: Mapping[str, float]) -> None:
        """Record when printers were last heard from, all in one transaction (``{printer id: when}``).

        A time older than the one stored is ignored, and so is a printer that no longer exists.
        """
        if not seen:
            return
        printers = s.printers.c
        statement = (
            update(s.printers)
            .where(
                printers.id == bindparam("printer_id"),
                or_(printers.last_seen.is_(None), printers.last_seen < bindparam("seen_at")),
            )
            .values(last_seen=bindparam("seen_at"))
        )
        params = [{"printer_id": pid, "seen_at": at} for pid, at in sorted(seen.items())]
        with write_transaction(self._engine) as conn:
            conn.execute(statement, params)

    def release_printer(
        self, printer_id: str, state: PrinterState, *, expect_job_id: Optional[int] = None
    ) -> Printer:
        """Clear a printer's current job and set its state.

        With ``expect_job_id``, a printer that meanwhile holds another job is left alone (Conflict).
        """
        with write_transaction(self._engine) as conn:
            current = self._printer(conn, printer_id, lock=True)
            if expect_job_id is not None and current.current_job_id != expect_job_id:
                raise Conflict(
                    f"printer {printer_id!r} holds job {current.current_job_id}, not job {expect_job_id}",
                    details={"current_job_id": current.current_job_id},
                )
            check_printer_transition(current.state, PrinterState(state))
            conn.execute(
                update(s.printers)
                .where(s.printers.c.id == printer_id)
                .values(state=PrinterState(state).value, current_job_id=None)
            )
            return self._printer(conn, printer_id)

    def grant(self, member_id: int, printer_id: str) -> None:
        """Let a member use a restricted printer (granting twice is harmless)."""
        with write_transaction(self._engine) as conn:
            self._member(conn, member_id)
            self._printer(conn, printer_id)
            held = conn.execute(
                select(exists().where(s.grants.c.member_id == member_id, s.grants.c.printer_id == printer_id))
            ).scalar_one()
            if not held:
                conn.execute(insert(s.grants).values(member_id=member_id, printer_id=printer_id))

    def revoke_grant(self, member_id: int, printer_id: str) -> bool:
        """Withdraw a grant; returns whether there was one."""
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                delete(s.grants).where(s.grants.c.member_id == member_id, s.grants.c.printer_id == printer_id)
            )
            return result.rowcount > 0

    def grants(self) -> dict[int, frozenset[str]]:
        """Every member's granted printers, for members that have any."""
        found: dict[int, set[str]] = {}
        with read_transaction(self._engine) as conn:
            for member_id, printer_id in conn.execute(select(s.grants.c.member_id, s.grants.c.printer_id)):
                found.setdefault(member_id, set()).add(printer_id)
        return {member_id: frozenset(ids) for member_id, ids in found.items()}

    def grants_for(self, member_id: int) -> frozenset[str]:
        with read_transaction(self._engine) as conn:
            ids = conn.execute(
                select(s.grants.c.printer_id).where(s.grants.c.member_id == member_id)
            ).scalars()
            return frozenset(ids)

    # -- enrollment and printer credentials -----------------------------------------------------

    def add_enrollment_code(
        self, code_hash: str, *, created_by: Optional[int], now: float, expires_at: float
    ) -> EnrollmentCode:
        """Store the SHA-256 (hex) of a new enrollment code."""
        if not is_sha256_hex(code_hash):
            raise Invalid("code_hash must be the SHA-256 of the code in lowercase hex", field="code_hash")
        values = {
            "code_hash": code_hash,
            "created_by": created_by,
            "created_at": now,
            "expires_at": expires_at,
        }
        try:
            with write_transaction(self._engine) as conn:
                if created_by is not None:
                    self._member(conn, created_by)
                conn.execute(insert(s.enrollment_codes).values(values))
                created = self._enrollment_code(conn, code_hash)
                assert created is not None
                return created
        except IntegrityError as exc:
            raise Conflict("this enrollment code is already registered", field="code_hash") from exc

    def get_enrollment_code(self, code_hash: str) -> Optional[EnrollmentCode]:
        with read_transaction(self._engine) as conn:
            return self._enrollment_code(conn, code_hash)

    def enroll_printer(
        self,
        code_hash: str,
        printer: Printer,
        *,
        mqtt_password_hash: str,
        http_token_hash: str,
        now: float,
        attempts: int = 5,
    ) -> Optional[Printer]:
        """Spend an enrollment code on a new printer and its credentials, all or nothing.

        The printer gets ``printer.id``, or ``<id>-2``, ``<id>-3`` … if that is taken. Returns None
        when the code is unknown, already used or expired at ``now``: of two enrollments racing with
        one code, exactly one gets a printer.
        """
        if not is_sha256_hex(http_token_hash):
            raise Invalid("http_token_hash must be a SHA-256 in lowercase hex", field="http_token_hash")
        for attempt in range(attempts):
            try:
                with write_transaction(self._engine) as conn:
                    return self._enroll(conn, code_hash, printer, mqtt_password_hash, http_token_hash, now)
            except IntegrityError:
                # Another enrollment took the same printer id between our look and our insert: the
                # whole transaction (the code's claim included) rolled back, so trying again is safe.
                if attempt == attempts - 1:
                    raise
        return None  # unreachable: the loop returns or raises

    def _enroll(
        self,
        conn: Connection,
        code_hash: str,
        printer: Printer,
        mqtt_password_hash: str,
        http_token_hash: str,
        now: float,
    ) -> Optional[Printer]:
        codes = s.enrollment_codes.c
        claimed = conn.execute(
            update(s.enrollment_codes)
            .where(codes.code_hash == code_hash, codes.used_at.is_(None), codes.expires_at > now)
            .values(used_at=now)
        ).rowcount
        if claimed != 1:
            return None
        printer_id = self._free_printer_id(conn, printer.id)
        conn.execute(
            insert(s.printers).values(
                id=printer_id,
                name=printer.name,
                state=PrinterState(printer.state).value,
                **rows.volume_columns(printer.volume),
                nozzle_diameter=printer.nozzle_diameter,
                material=printer.material,
                restricted=printer.restricted,
                current_job_id=None,
                last_seen=printer.last_seen,
                created_at=printer.created_at,
                capabilities="{}",
            )
        )
        conn.execute(
            update(s.enrollment_codes).where(codes.code_hash == code_hash).values(used_by_printer=printer_id)
        )
        conn.execute(
            insert(s.printer_credentials).values(
                printer_id=printer_id,
                mqtt_password_hash=mqtt_password_hash,
                http_token_hash=http_token_hash,
                created_at=now,
                revoked_at=None,
            )
        )
        return self._printer(conn, printer_id)

    @staticmethod
    def _free_printer_id(conn: Connection, base: str) -> str:
        ids = s.printers.c.id
        taken = set(conn.execute(select(ids).where(or_(ids == base, ids.like(f"{base}-%")))).scalars())
        if base not in taken:
            return base
        n = 2
        while f"{base}-{n}" in taken:
            n += 1
        return f"{base}-{n}"

    def credentials(self, printer_id: str) -> Optional[PrinterCredentials]:
        """A printer's credentials (active or revoked), or None for a printer that was never enrolled."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(s.printer_credentials).where(s.printer_credentials.c.printer_id == printer_id)
            ).first()
        return None if row is None else rows.credentials(row)

    def printer_and_revoked(self, printer_id: str) -> tuple[Printer, bool]:
        """A printer, and whether its credentials were revoked (False if it never had any), in one read."""
        creds = s.printer_credentials.c
        with read_transaction(self._engine) as conn:
            printer = self._printer(conn, printer_id)
            row = conn.execute(select(creds.revoked_at).where(creds.printer_id == printer_id)).first()
        return printer, row is not None and row.revoked_at is not None

    def printer_for_token(self, token_hash: str) -> Optional[Printer]:
        """The printer an HTTP token belongs to, unless its credentials were revoked."""
        creds = s.printer_credentials.c
        query = (
            select(s.printers)
            .join(s.printer_credentials, creds.printer_id == s.printers.c.id)
            .where(creds.http_token_hash == token_hash, creds.revoked_at.is_(None))
        )
        with read_transaction(self._engine) as conn:
            row = conn.execute(query).first()
        return None if row is None else rows.printer(row)

    def revoke_credentials(self, printer_id: str, *, now: float) -> bool:
        """Revoke a printer's credentials; False if it had none that were active."""
        creds = s.printer_credentials.c
        with write_transaction(self._engine) as conn:
            self._printer(conn, printer_id)
            result = conn.execute(
                update(s.printer_credentials)
                .where(creds.printer_id == printer_id, creds.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            return result.rowcount > 0

    def active_credentials(self) -> list[PrinterCredentials]:
        """Every enrolled printer's credentials that are not revoked, by printer id."""
        creds = s.printer_credentials.c
        with read_transaction(self._engine) as conn:
            found = conn.execute(
                select(s.printer_credentials).where(creds.revoked_at.is_(None)).order_by(creds.printer_id)
            ).all()
        return [rows.credentials(row) for row in found]

    # -- jobs -----------------------------------------------------------------------------------

    def create_jobs(
        self,
        member_id: int,
        *,
        count: int,
        state: JobState,
        file_sha256: str,
        filename: str,
        size_bytes: int,
        material: Optional[str],
        note: str,
        analysis: Mapping[str, Any],
        priority: int = 0,
        actor: str,
        reason: str,
        now: float,
        then: Sequence[tuple[JobState, str, str]] = (),
        idempotency: Optional[SubmissionKey] = None,
    ) -> list[Job]:
        """Submit ``count`` copies of a file as jobs, each with its first event, all or none.

        ``then`` holds further steps (state, actor, reason) each job takes in the same transaction, so
        a crash never leaves a job stopped half-way through its intake. With ``idempotency``, the key
        is recorded in that transaction too, and when an earlier request with the same unexpired key
        made jobs, those jobs are returned and nothing is created (see :meth:`keyed_submission`).
        """
        if count < 1:
            raise Invalid("count must be at least 1", field="count")
        if not is_sha256_hex(file_sha256):
            raise Invalid("file_sha256 must be 64 lowercase hexadecimal digits", field="file_sha256")
        state = JobState(state)
        steps = [(JobState(to), step_actor, step_reason) for to, step_actor, step_reason in then]
        final = state
        for to, _, _ in steps:
            check_job_transition(final, to)
            final = to
        values = {
            "member_id": member_id,
            "state": state.value,
            "priority": priority,
            "file_sha256": file_sha256,
            "filename": filename,
            "size_bytes": size_bytes,
            "material": material,
            "note": note,
            "analysis": rows.dumps(dict(analysis)),
            "submitted_at": now,
            "updated_at": now,
        }
        try:
            with write_transaction(self._engine) as conn:
                self._member(conn, member_id)
                if idempotency is not None:
                    earlier = self._claim_submission_key(conn, member_id, idempotency, now)
                    if earlier is not None:
                        return earlier
                ids = []
                for _ in range(count):
                    job_id = _insert(conn, s.jobs, {**values, "state": final.value})
                    self._record_event(conn, job_id, now, None, state, actor, reason, None)
                    previous = state
                    for to, step_actor, step_reason in steps:
                        self._record_event(conn, job_id, now, previous, to, step_actor, step_reason, None)
                        previous = to
                    ids.append(job_id)
                if idempotency is not None:
                    conn.execute(
                        update(s.submission_keys)
                        .where(s.submission_keys.c.member_id == member_id)
                        .where(s.submission_keys.c.key == idempotency.key)
                        .values(job_ids=json.dumps(ids))
                    )
                found = conn.execute(select(s.jobs).where(s.jobs.c.id.in_(ids)).order_by(s.jobs.c.id)).all()
        except IntegrityError:
            # Another request with the same key recorded it between our look and our insert (the
            # unique key held us until it committed): everything of ours rolled back; answer its jobs.
            if idempotency is None:
                raise
            earlier = self.keyed_submission(member_id, idempotency)
            if earlier is None:
                raise
            return earlier
        return [rows.job(row) for row in found]

    def keyed_submission(self, member_id: int, idempotency: SubmissionKey) -> Optional[list[Job]]:
        """The jobs an earlier request with this member's unexpired key made, or None if there was none.

        :class:`Invalid` when that request asked for something else (another file, copies, material
        or note): a key names one submission.
        """
        with read_transaction(self._engine) as conn:
            return self._submission_for_key(conn, member_id, idempotency)

    def remove_expired_submission_keys(self, before: float) -> int:
        """Forget the ``Idempotency-Key`` records made before ``before``; returns how many."""
        with write_transaction(self._engine) as conn:
            result = conn.execute(delete(s.submission_keys).where(s.submission_keys.c.created_at < before))
            return int(result.rowcount or 0)

    def _submission_for_key(
        self, conn: Connection, member_id: int, idempotency: SubmissionKey
    ) -> Optional[list[Job]]:
        row = conn.execute(
            select(s.submission_keys)
            .where(s.submission_keys.c.member_id == member_id)
            .where(s.submission_keys.c.key == idempotency.key)
            .where(s.submission_keys.c.created_at >= idempotency.valid_after)
        ).first()
        if row is None:
            return None
        if row.request_hash != idempotency.request_hash:
            raise Invalid(
                "this Idempotency-Key was already used for a different submission (another file, "
                "copies, material or note): send a new key for a new submission",
                field="Idempotency-Key",
                key="idempotency_key_reused",
            )
        ids = [int(i) for i in json.loads(row.job_ids)]
        found = conn.execute(select(s.jobs).where(s.jobs.c.id.in_(ids)).order_by(s.jobs.c.id)).all()
        return [rows.job(job) for job in found]

    def _claim_submission_key(
        self, conn: Connection, member_id: int, idempotency: SubmissionKey, now: float
    ) -> Optional[list[Job]]:
        """Record the key in the open transaction, or return the jobs its earlier request made."""
        earlier = self._submission_for_key(conn, member_id, idempotency)
        if earlier is not None:
            return earlier
        # An expired record of the key is forgotten: the key starts a new submission. Only an expired
        # one: a live record another request committed since our look makes our insert fail instead.
        conn.execute(
            delete(s.submission_keys)
            .where(s.submission_keys.c.member_id == member_id)
            .where(s.submission_keys.c.key == idempotency.key)
            .where(s.submission_keys.c.created_at < idempotency.valid_after)
        )
        conn.execute(
            insert(s.submission_keys).values(
                member_id=member_id,
                key=idempotency.key,
                request_hash=idempotency.request_hash,
                job_ids="[]",
                created_at=now,
            )
        )
        return None

    def get_job(self, job_id: int) -> Job:
        with read_transaction(self._engine) as conn:
            return self._job(conn, job_id)

    def list_jobs(
        self,
        *,
        states: Optional[Collection[JobState]] = None,
        member_id: Optional[int] = None,
        printer_id: Optional[str] = None,
        limit: Optional[int] = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[Job]:
        """Jobs in id order (or newest first), optionally only in some states, of a member or a printer."""
        query = select(s.jobs).order_by(s.jobs.c.id.desc() if newest_first else s.jobs.c.id)
        if states is not None:
            query = query.where(s.jobs.c.state.in_([JobState(state).value for state in states]))
        if member_id is not None:
            query = query.where(s.jobs.c.member_id == member_id)
        if printer_id is not None:
            query = query.where(s.jobs.c.printer_id == printer_id)
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        with read_transaction(self._engine) as conn:
            found = conn.execute(query).all()
        return [rows.job(row) for row in found]

    def last_finished_job(self, printer_id: str) -> Optional[Job]:
        """The job that most recently ended on a printer (by when it ended, not by its id), or None."""
        jobs = s.jobs.c
        query = (
            select(s.jobs)
            .where(jobs.printer_id == printer_id, jobs.state.in_([state.value for state in TERMINAL]))
            .order_by(jobs.finished_at.desc(), jobs.id.desc())
            .limit(1)
        )
        with read_transaction(self._engine) as conn:
            row = conn.execute(query).first()
        return None if row is None else rows.job(row)

    def transition_job(
        self,
        job_id: int,
        to: JobState,
        *,
        actor: str,
        reason: str,
        now: float,
        expect: Optional[Collection[JobState]] = None,
        data: Optional[Mapping[str, Any]] = None,
        printer_id: Union[Optional[str], _Unset] = UNSET,
        printer_changes: Optional[Callable[[Printer], Optional[Mapping[str, Any]]]] = None,
    ) -> Job:
        """Move a job to state ``to`` and record who did it, when and why.

        ``printer_changes`` is given the printer the job was on (if any) and returns the printer
        columns to set (``state``, ``current_job_id``, ``last_seen``), or None to leave it: both
        change in one transaction, so a crash never leaves a printer holding a job that moved on.
        :class:`Conflict` if the state machine forbids it, or the job is not in one of ``expect``.
        """
        to = JobState(to)
        with write_transaction(self._engine) as conn:
            job = self._job(conn, job_id, lock=True)
            printer = None
            if printer_changes is not None and job.printer_id is not None:
                with suppress(NotFound):
                    printer = self._printer(conn, job.printer_id, lock=True)
            if expect is not None and job.state not in expect:
                wanted = " or ".join(sorted(JobState(state).value for state in expect))
                raise Conflict(
                    f"job {job_id} is {job.state.value}, expected {wanted}",
                    details={"state": job.state.value, "expected": sorted(JobState(x).value for x in expect)},
                )
            check_job_transition(job.state, to)
            values: dict[str, Any] = {"state": to.value, "updated_at": now}
            if to is JobState.PRINTING and job.started_at is None:
                values["started_at"] = now
            if to in TERMINAL:
                values["finished_at"] = now
            if printer_id is not UNSET:
                values["printer_id"] = printer_id
            conn.execute(update(s.jobs).where(s.jobs.c.id == job_id).values(values))
            self._record_event(conn, job_id, now, job.state, to, actor, reason, data)
            changes = None if printer is None or printer_changes is None else printer_changes(printer)
            if printer is not None and changes:
                unknown = sorted(set(changes) - {"state", "current_job_id", "last_seen"})
                if unknown:
                    raise TypeError(f"printer_changes cannot set {', '.join(unknown)}")
                columns = dict(changes)
                if "state" in columns:
                    check_printer_transition(printer.state, PrinterState(columns["state"]))
                    columns["state"] = PrinterState(columns["state"]).value
                conn.execute(update(s.printers).where(s.printers.c.id == printer.id).values(columns))
            return self._job(conn, job_id)

    def set_priority(self, job_id: int, priority: int, *, actor: str, now: float) -> Job:
        """Change a waiting or running job's priority, recorded as an event."""
        with write_transaction(self._engine) as conn:
            job = self._job(conn, job_id, lock=True)
            if job.state in TERMINAL:
                raise Conflict(f"job {job_id} is {job.state.value}: its priority can no longer change")
            conn.execute(
                update(s.jobs).where(s.jobs.c.id == job_id).values(priority=priority, updated_at=now)
            )
            self._record_event(
                conn,
                job_id,
                now,
                job.state,
                job.state,
                actor,
                f"priority set to {priority}",
                {"priority": priority, "previous": job.priority},
            )
            return self._job(conn, job_id)

    def job_events(self, job_id: int) -> list[JobEvent]:
        """A job's history, oldest first."""
        with read_transaction(self._engine) as conn:
            self._job(conn, job_id)
            found = conn.execute(
                select(s.job_events).where(s.job_events.c.job_id == job_id).order_by(s.job_events.c.id)
            ).all()
        return [rows.event(row) for row in found]

    def usage_records(self, since: float, *, now: Optional[float] = None) -> list[tuple[int, float, float]]:
        """``(member_id, printer_seconds, at)`` for every job that printed since ``since``.

        A finished job counts at ``finished_at``; one still on a printer counts up to ``now``.
        """
        now = time.time() if now is None else now
        jobs = s.jobs.c
        query = (
            select(jobs.member_id, jobs.started_at, jobs.finished_at)
            .where(jobs.started_at.is_not(None), or_(jobs.finished_at.is_(None), jobs.finished_at >= since))
            .order_by(jobs.id)
        )
        with read_transaction(self._engine) as conn:
            found = conn.execute(query).all()
        records = []
        for member_id, started_at, finished_at in found:
            at = now if finished_at is None else finished_at
            records.append((member_id, max(0.0, at - started_at), at))
        return records

    def assign_job(self, job_id: int, printer_id: str, *, actor: str, now: float) -> bool:
        """Give a queued job to an idle printer; False if either was taken or is busy elsewhere.

        On PostgreSQL rows another transaction holds are skipped, never waited for, so the
        scheduler moves on to the next candidate instead of queueing behind a rival.
        """
        try:
            with write_transaction(self._engine) as conn:
                return self._assign(conn, job_id, printer_id, actor=actor, now=now)
        except _Lost:
            return False

    def _assign(self, conn: Connection, job_id: int, printer_id: str, *, actor: str, now: float) -> bool:
        """The claim inside its transaction: read and lock both rows, then flip both conditionally."""
        jobs, printers = s.jobs.c, s.printers.c
        job = conn.execute(
            select(jobs.state).where(jobs.id == job_id).with_for_update(skip_locked=True)
        ).first()
        if job is None or job.state != JobState.QUEUED.value:
            return False
        printer = conn.execute(
            select(printers.state, printers.current_job_id)
            .where(printers.id == printer_id)
            .with_for_update(skip_locked=True)
        ).first()
        if printer is None or printer.state != PrinterState.IDLE.value or printer.current_job_id is not None:
            return False
        # The conditions again, so that even without row locks nothing is assigned twice.
        claimed_job = conn.execute(
            update(s.jobs)
            .where(jobs.id == job_id, jobs.state == JobState.QUEUED.value)
            .values(state=JobState.ASSIGNED.value, printer_id=printer_id, updated_at=now)
        ).rowcount
        claimed_printer = conn.execute(
            update(s.printers)
            .where(
                and_(
                    printers.id == printer_id,
                    printers.state == PrinterState.IDLE.value,
                    printers.current_job_id.is_(None),
                )
            )
            .values(state=PrinterState.ASSIGNED.value, current_job_id=job_id)
        ).rowcount
        if claimed_job != 1 or claimed_printer != 1:
            raise _Lost  # undo the half that succeeded
        self._record_event(
            conn,
            job_id,
            now,
            JobState.QUEUED,
            JobState.ASSIGNED,
            actor,
            f"assigned to printer {printer_id}",
            {"printer_id": printer_id},
        )
        return True

    def referenced_blobs(self) -> set[str]:
        """The hash of every file some job (in any state) refers to."""
        with read_transaction(self._engine) as conn:
            return set(conn.execute(select(s.jobs.c.file_sha256).distinct()).scalars())

    def blob_in_use(self, sha256: str) -> bool:
        """True while a job that is not finished refers to this file."""
        terminal = [state.value for state in TERMINAL]
        with read_transaction(self._engine) as conn:
            return conn.execute(
                select(exists().where(s.jobs.c.file_sha256 == sha256, s.jobs.c.state.not_in(terminal)))
            ).scalar_one()

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

    # -- helpers (each runs inside the caller's transaction) ------------------------------------

    def _member(self, conn: Connection, member_id: int) -> Member:
        row = conn.execute(select(s.members).where(s.members.c.id == member_id)).first()
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
        query = select(s.printers).where(s.printers.c.id == printer_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise self._no_printer(printer_id)
        return rows.printer(row)

    def _job(self, conn: Connection, job_id: int, *, lock: bool = False) -> Job:
        query = select(s.jobs).where(s.jobs.c.id == job_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"there is no job with id {job_id}", field="job_id")
        return rows.job(row)

    @staticmethod
    def _record_event(
        conn: Connection,
        job_id: int,
        at: float,
        from_state: Optional[JobState],
        to_state: JobState,
        actor: str,
        reason: str,
        data: Optional[Mapping[str, Any]],
    ) -> None:
        conn.execute(
            insert(s.job_events).values(
                job_id=job_id,
                at=at,
                from_state=None if from_state is None else from_state.value,
                to_state=to_state.value,
                actor=actor,
                reason=reason,
                data=rows.dumps(dict(data or {})),
            )
        )


__all__ = ["PRINTER_CHANGES", "UNSET", "ApiToken", "Store", "attempt_key", "open_store"]
