"""Printers joining the fleet with a one-time code, their credentials, and taking them away again."""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Optional, Protocol

from ..auth import TOKEN_PREFIX, hash_token
from ..errors import Conflict, Forbidden, Invalid, Unauthorized, Unavailable
from ..http_protocol import BrokerAddress, EnrollmentAnswer, EnrollRequest
from ..models import CodeRefusal, Job, Member, Printer
from ..states import ACTIVE, PrinterState
from .base import Context, actor_of, require_manager
from .identity import PRINTER_TOKEN_PREFIX
from .reports import PrinterReports

if TYPE_CHECKING:
    from ..broker import BrokerUser

log = logging.getLogger(__name__)

#: Enrollment codes: 32 symbols that survive being read aloud or copied by hand (no 0/O, no 1/I).
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
#: 12 symbols of 5 bits: 60 bits, shown as three groups of four.
CODE_LENGTH = 12
CODE_GROUP = 4
#: What a refused enrollment code is told, by why (``details.reason`` says which, for a program).
ENROLLMENT_CODE_REFUSALS = {
    CodeRefusal.UNKNOWN: "this enrollment code is not known (mistyped, or never made): check it, "
    "or ask a manager for a new one",
    CodeRefusal.USED: "this enrollment code was already used to enroll a printer: a code works once; "
    "ask a manager for a new one",
    CodeRefusal.EXPIRED: "this enrollment code has expired: ask a manager for a new one",
}


def code_refused(why: CodeRefusal, words: Mapping[CodeRefusal, str], field: str) -> Unauthorized:
    """The refusal of a one-time code: its own words, and ``details.reason`` (unknown, used, expired).

    Telling a used or expired code from an unknown one gives a guesser nothing: only someone who
    holds a real code can meet those answers, and wrong codes are limited per address all the same.
    """
    return Unauthorized(words[why], field=field, details={"reason": why.value})


#: Hashes a broker password into Mosquitto's password-file format.
PasswordHasher = Callable[[str], str]


class BrokerAccounts(Protocol):
    """Printer logins kept on a shared broker (``fleet.dynsec.DynsecAccounts``)."""

    def add_printer(self, printer_id: str, password: str) -> None: ...

    def remove_printer(self, printer_id: str) -> None: ...


@dataclass(frozen=True)
class Enrollment:
    """A newly enrolled printer and the answer its node gets: secrets shown once, stored only hashed."""

    printer: Printer
    answer: EnrollmentAnswer


def new_enrollment_code() -> str:
    """A fresh code such as ``7KQP-M2XD-9HWC``: 60 random bits a person can type."""
    symbols = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(symbols[i : i + CODE_GROUP] for i in range(0, CODE_LENGTH, CODE_GROUP))


def normalize_code(text: str) -> Optional[str]:
    """A typed code without spaces or dashes, upper-cased; None if it cannot be a code at all."""
    cleaned = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(cleaned) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in cleaned):
        return None
    return cleaned


def slugify(name: str, *, limit: int = 40) -> str:
    """A printer id from a display name: lowercase ASCII letters, digits and single dashes."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:limit].strip("-")
    return slug or "printer"


def _default_hasher(password: str) -> str:
    from ..broker import hash_password  # the broker module only where a password is hashed

    return hash_password(password)


class Enrollments:
    """Codes, enrollment and printer credentials; ``node_mqtt`` is where enrolled nodes connect."""

    def __init__(
        self,
        ctx: Context,
        reports: PrinterReports,
        *,
        node_mqtt: Optional[BrokerAddress] = None,
        password_hasher: Optional[PasswordHasher] = None,
    ) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.reports = reports
        #: Where enrolled nodes connect (host, port, TLS: each gets its own login); None while the fleet
        #: runs without a broker.
        self.node_mqtt = node_mqtt
        #: Printer logins on a shared broker, made and removed with each enrollment and revocation
        #: (inside its transaction, so neither side keeps what the other refused); None when a
        #: managed broker reads them from the store, or an external one is administered by hand.
        self.accounts: Optional[BrokerAccounts] = None
        self._hash_password = password_hasher or _default_hasher

    def create_enrollment_code(self, actor: Optional[Member], ttl_s: float = 86400.0) -> tuple[str, float]:
        """A single-use code for enrolling one printer, and when it expires; only its hash is kept.

        ``actor`` None is the console (the data dir's owner), which needs no manager.
        """
        if actor is not None:
            require_manager(actor)
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not 60 <= ttl_s <= 30 * 86400:
            raise Invalid("ttl_s must be from 60 seconds to 30 days", field="ttl_s")
        code = new_enrollment_code()
        normalized = normalize_code(code)
        assert normalized is not None
        now = self.ctx.clock()
        created = self.store.add_enrollment_code(
            hash_token(normalized),
            created_by=None if actor is None else actor.id,
            now=now,
            expires_at=now + ttl_s,
        )
        return code, created.expires_at

    def enroll(self, request: EnrollRequest) -> Enrollment:
        """Spend an enrollment code on a new printer; its token and broker password are returned once.

        ``request`` comes checked from the HTTP edge (name, material and nozzle); the volume, which a
        node may not know, is required here.
        """
        caps = request.capabilities
        volume = caps.volume
        if volume is None:
            raise Invalid("volume is required: the build volume's min_x … max_z in mm", field="volume")
        normalized = normalize_code(request.code)
        if normalized is None:
            raise code_refused(CodeRefusal.UNKNOWN, ENROLLMENT_CODE_REFUSALS, "code")
        if self.node_mqtt is None:
            raise Unavailable(
                "this fleet runs without an MQTT broker, so a printer could not connect: start it with "
                "'crowdfab-fleet serve' (managed broker) or --mqtt-url"
            )
        now = self.ctx.clock()
        token = PRINTER_TOKEN_PREFIX + secrets.token_urlsafe(32)
        password = secrets.token_urlsafe(24)
        printer_id = slugify(request.name)
        if printer_id == "enroll":  # would shadow the route that enrolls printers
            printer_id = "printer-enroll"
        template = Printer(
            id=printer_id,
            name=request.name,
            state=PrinterState.OFFLINE,  # until its node says otherwise
            volume=volume,
            nozzle_diameter=0.4 if caps.nozzle_diameter is None else caps.nozzle_diameter,
            material=caps.material,
            restricted=False,
            current_job_id=None,
            last_seen=None,
            created_at=now,
            bed_shape=None if caps.bed_shape is None else caps.bed_shape.value,
            heated_bed=caps.heated_bed,
            heated_chamber=caps.heated_chamber,
            extruders=caps.extruders,
        )
        accounts = self.accounts
        printer = self.store.enroll_printer(
            hash_token(normalized),
            template,
            mqtt_password_hash=self._hash_password(password),
            http_token_hash=hash_token(token),
            now=now,
            before_commit=None
            if accounts is None
            else lambda printer_id: accounts.add_printer(printer_id, password),
        )
        if printer is None:
            code = self.store.get_enrollment_code(hash_token(normalized))
            found = None if code is None else (code.used_at, code.expires_at)
            raise code_refused(CodeRefusal.of(found, now), ENROLLMENT_CODE_REFUSALS, "code")
        log.info("printer %s (%s) enrolled", printer.id, printer.name)
        self.ctx.printer_changed(printer.id)
        self.ctx.credentials_changed()
        login = replace(self.node_mqtt, username=printer.id, password=password, ca_file=None)
        return Enrollment(printer, EnrollmentAnswer(printer.id, token, login))

    def revoke_printer(self, actor: Member, printer_id: str) -> Printer:
        """Withdraw an enrolled printer's credentials and take it out of the pool.

        Its broker login and file downloads stop working; a job it held becomes unknown (a
        manager settles it), and the printer stays in maintenance until it is enrolled again. On a
        shared broker the login is removed before the revocation commits, and the broker disconnects
        the printer at once; a broker that cannot be reached leaves the credentials as they were (503).
        """
        require_manager(actor)
        accounts = self.accounts
        if not self.store.revoke_credentials(
            printer_id,
            now=self.ctx.clock(),
            before_commit=None if accounts is None else lambda: accounts.remove_printer(printer_id),
        ):
            raise Conflict(
                f"printer {printer_id} has no active credentials (never enrolled, or already revoked)"
            )
        printer = self.store.get_printer(printer_id)
        if printer.current_job_id is not None:
            self.reports.job_unreachable(
                printer.current_job_id, actor_of(actor), "the printer's credentials were revoked"
            )
        printer = self.store.release_printer(printer_id, PrinterState.MAINTENANCE)
        self.reports.clear_live(printer_id)
        self.ctx.printer_changed(printer_id)
        log.info("printer %s: credentials revoked by %s", printer_id, actor_of(actor))
        self.ctx.credentials_changed()
        return printer

    def broker_users(self) -> list[BrokerUser]:
        """The managed broker's printer logins: every enrolled printer that is not revoked."""
        from ..broker import BrokerUser

        return [BrokerUser(c.printer_id, c.mqtt_password_hash) for c in self.store.active_credentials()]

    def authenticate_printer(self, token: Optional[str]) -> Printer:
        if not token:
            raise Unauthorized("a printer signs in with its token: 'Authorization: Bearer <token>'")
        if token.startswith(TOKEN_PREFIX):
            raise Unauthorized("this is a member's API token; this endpoint is for enrolled printers")
        printer = self.store.printer_for_token(hash_token(token))
        if printer is None:
            raise Unauthorized("this printer token is not valid (revoked, or the printer was enrolled again)")
        return printer

    def job_file(self, printer: Printer, printer_id: str, job_id: int) -> tuple[Job, str]:
        """The job and the path of its file, for the printer it is dispatched to and no other."""
        if printer.id != printer_id:
            raise Forbidden(f"this token belongs to printer {printer.id}, not {printer_id}")
        job = self.store.get_job(job_id)
        if job.printer_id != printer.id or job.state not in ACTIVE:
            raise Forbidden(f"job {job_id} is not dispatched to printer {printer.id}")
        return job, str(self.ctx.blobs.path(job.file_sha256))
