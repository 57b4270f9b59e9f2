"""Enrollment codes and enrolled printers' credentials."""

from __future__ import annotations

from typing import Callable, Optional

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, Invalid
from ..models import EnrollmentCode, Printer, PrinterCredentials
from ..states import PrinterState
from . import rows
from . import schema as s
from .base import StoreBase
from .blobs import is_sha256_hex
from .engine import read_transaction, write_transaction


class EnrollmentRecords(StoreBase):
    """Spending codes on printers, and the credentials that result."""

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
        before_commit: Optional[Callable[[str], None]] = None,
    ) -> Optional[Printer]:
        """Spend an enrollment code on a new printer and its credentials, all or nothing.

        The printer gets ``printer.id``, or ``<id>-2``, ``<id>-3`` … if that is taken. Returns None
        when the code is unknown, already used or expired at ``now``: of two enrollments racing with
        one code, exactly one gets a printer. ``before_commit(printer_id)`` runs inside the transaction
        once the id is chosen (a shared broker's login is made there): if it raises, nothing is kept.
        """
        if not is_sha256_hex(http_token_hash):
            raise Invalid("http_token_hash must be a SHA-256 in lowercase hex", field="http_token_hash")
        for attempt in range(attempts):
            try:
                with write_transaction(self._engine) as conn:
                    enrolled = self._enroll(
                        conn, code_hash, printer, mqtt_password_hash, http_token_hash, now
                    )
                    if enrolled is not None and before_commit is not None:
                        before_commit(enrolled.id)
                    return enrolled
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
                bed_shape=printer.bed_shape,
                heated_bed=printer.heated_bed,
                heated_chamber=printer.heated_chamber,
                extruders=printer.extruders,
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
        # One statement: every status the fleet checks in full asks this, thousands a minute at scale.
        creds = s.printer_credentials.c
        query = (
            select(s.printers, creds.revoked_at)
            .select_from(s.printers.outerjoin(s.printer_credentials, creds.printer_id == s.printers.c.id))
            .where(s.printers.c.id == printer_id)
        )
        with read_transaction(self._engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            raise self._no_printer(printer_id)
        return rows.printer(row), row.revoked_at is not None

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

    def revoke_credentials(
        self, printer_id: str, *, now: float, before_commit: Optional[Callable[[], None]] = None
    ) -> bool:
        """Revoke a printer's credentials; False if it had none that were active.

        ``before_commit()`` runs inside the transaction once the revocation is written (a shared
        broker's login is removed there): if it raises, the credentials stay as they were.
        """
        creds = s.printer_credentials.c
        with write_transaction(self._engine) as conn:
            self._printer(conn, printer_id)
            result = conn.execute(
                update(s.printer_credentials)
                .where(creds.printer_id == printer_id, creds.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            revoked = result.rowcount > 0
            if revoked and before_commit is not None:
                before_commit()
            return revoked

    def revoked_printer_ids(self) -> set[str]:
        """The printers whose credentials are revoked (and not enrolled again)."""
        creds = s.printer_credentials.c
        with read_transaction(self._engine) as conn:
            return set(conn.execute(select(creds.printer_id).where(creds.revoked_at.is_not(None))).scalars())

    def active_credentials(self) -> list[PrinterCredentials]:
        """Every enrolled printer's credentials that are not revoked, by printer id."""
        creds = s.printer_credentials.c
        with read_transaction(self._engine) as conn:
            found = conn.execute(
                select(s.printer_credentials).where(creds.revoked_at.is_(None)).order_by(creds.printer_id)
            ).all()
        return [rows.credentials(row) for row in found]
