"""The fleet's application service: who may do what, and the rules that tie store, analysis and scheduler."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Collection
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Optional

from werkzeug.security import check_password_hash, generate_password_hash

from . import scheduler
from .auth import TOKEN_PREFIX, hash_token, new_token
from .errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized, Unavailable
from .gcode import Analysis, analyze_stream, refusal_message
from .geometry import Box
from .lab import LabSettings
from .metrics import FleetMetrics
from .models import Job, JobEvent, LiveStatus, Member, Printer, Role
from .protocol import CommandType
from .states import ACTIVE, CANCELLABLE, PENDING, TERMINAL, JobState, PrinterState
from .store import BlobStore, Store, SubmissionKey

if TYPE_CHECKING:
    from .broker import BrokerUser

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked against when a name is unknown, so a wrong name takes as long as a wrong password."""
    return generate_password_hash(secrets.token_urlsafe(16), method="scrypt")


LAB_SETTINGS_KEY = "lab"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
PRINTER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
MATERIAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 +._-]{0,31}$")
MAX_NOTE = 500
#: How long a submission's ``Idempotency-Key`` answers with the jobs it made (then it is forgotten).
SUBMISSION_KEY_TTL_S = 24 * 3600.0
#: Expired keys are swept by the first keyed submission after this long.
SUBMISSION_KEY_SWEEP_S = 3600.0
#: A key as the IETF httpapi draft's ``Idempotency-Key`` carries it: printable ASCII, 1 to 128 characters.
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x20-\x7e]{1,128}$")
MAX_FILENAME = 120
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
WRONG_SIGN_IN = "wrong name or password"

#: Enrollment codes: 32 symbols that survive being read aloud or copied by hand (no 0/O, no 1/I).
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
#: 12 symbols of 5 bits: 60 bits, shown as three groups of four.
CODE_LENGTH = 12
CODE_GROUP = 4
INVALID_CODE = "this enrollment code is not valid (unknown, used or expired): ask a manager for a new one"
#: Printer HTTP tokens carry their own prefix, so neither kind is mistaken for the other.
PRINTER_TOKEN_PREFIX = "cfp_"  # noqa: S105 (a prefix, not a secret)
#: Jobs whose running print a member may pause or resume.
PAUSABLE = frozenset({JobState.PRINTING})
RESUMABLE = frozenset({JobState.PAUSED})

#: Tells a printer's node to do something: (printer id, command, job id).
CommandHook = Callable[[str, CommandType, Optional[int]], None]
#: Hashes a broker password into Mosquitto's password-file format.
PasswordHasher = Callable[[str], str]


@dataclass(frozen=True)
class Submission:
    jobs: list[Job]
    analysis: Analysis


@dataclass(frozen=True)
class QueueEntry:
    job: Job
    member_name: str
    explanation: Optional[scheduler.Explanation]


@dataclass(frozen=True)
class PrinterBoard:
    """One printer as the dashboard shows it: its record, what its node last said, and its job."""

    printer: Printer
    live: Optional[LiveStatus]
    job: Optional[Job]
    #: The name of the member whose job the printer holds.
    member_name: Optional[str]
    #: Waiting for a bed clear: the member whose print is on the plate (they, or a manager, clear it).
    plate_owner: Optional[int]


@dataclass(frozen=True)
class MqttEndpoint:
    """The broker address nodes are told to use (which may differ from the one the fleet uses)."""

    host: str
    port: int
    tls: bool = False


@dataclass(frozen=True)
class Enrollment:
    """A newly enrolled printer and its secrets: shown once, stored only hashed."""

    printer: Printer
    token: str
    mqtt_username: str
    mqtt_password: str
    mqtt: MqttEndpoint


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
    from .broker import hash_password  # the broker module only where a password is hashed

    return hash_password(password)


def actor_of(member: Member) -> str:
    return f"{member.role.value}:{member.id}"


def clean_filename(name: str | None) -> str:
    """A display name for an uploaded file: no path, no control characters, bounded length."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C")
    base = base.strip().lstrip(".")
    stem, dot, ext = base.rpartition(".")
    if len(base) > MAX_FILENAME and dot and len(ext) <= 16:  # shorten the name, not its extension
        base = stem[: MAX_FILENAME - len(ext) - 1] + dot + ext
    return base[:MAX_FILENAME] or "upload.gcode"


def check_material(value: Any, field: str = "material") -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not MATERIAL_RE.match(value.strip()):
        raise Invalid(
            f"{field} must be a material name such as PLA, PETG or ABS (letters, digits, up to 32)",
            field=field,
            key="material_name",
        )
    return value.strip().upper()


def check_idempotency_key(value: Any, field: str = "Idempotency-Key") -> str:
    """A submission's idempotency key: 1 to 128 printable ASCII characters."""
    if not isinstance(value, str) or not IDEMPOTENCY_KEY_RE.match(value) or not value.strip():
        raise Invalid(
            f"{field} must be 1 to 128 printable ASCII characters (a fresh random value, such as a "
            "UUID, for each new submission)",
            field=field,
            key="idempotency_key_invalid",
        )
    return value


def submission_hash(file_sha256: str, copies: int, material: Optional[str], note: str) -> str:
    """What a submission asked for, as one SHA-256: a retry with the same key must ask for the same."""
    asked = json.dumps([file_sha256, copies, material, note], separators=(",", ":"))
    return hashlib.sha256(asked.encode("utf-8")).hexdigest()


class FleetService:
    """Every operation of the fleet, checked for who may do it; the API and the CLI both call it."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        *,
        clock: Callable[[], float] = time.time,
        node_mqtt: Optional[MqttEndpoint] = None,
        password_hasher: Optional[PasswordHasher] = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.clock = clock
        #: Where enrolled nodes connect; None while the fleet runs without a broker.
        self.node_mqtt = node_mqtt
        self._hash_password = password_hasher or _default_hasher
        self._credential_hooks: list[Callable[[], None]] = []
        self._command_hooks: list[CommandHook] = []
        self._work_hooks: list[Callable[[], None]] = []
        self._live: dict[str, LiveStatus] = {}
        self._live_lock = threading.Lock()
        #: Counters and latencies the fleet link and the dashboard keep (``/api/v1/metrics``).
        self.metrics = FleetMetrics()
        #: When keyed submissions next sweep the expired keys (a fleet may run for months).
        self._next_key_sweep = float("-inf")

    # -- hooks ----------------------------------------------------------------------------------

    def on_credentials_changed(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` after a printer is enrolled or revoked (the managed broker reloads then)."""
        self._credential_hooks.append(hook)

    def on_printer_command(self, hook: CommandHook) -> None:
        """Call ``hook(printer_id, command, job_id)`` when a person's action must reach a printer."""
        self._command_hooks.append(hook)

    def on_work_available(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` when a dispatch pass may find something new (a job queued, a printer freed)."""
        self._work_hooks.append(hook)

    @staticmethod
    def _notify(hooks: list[Any], *args: Any) -> int:
        """Run every hook; one that fails is logged, never fatal to the request. Returns how many ran."""
        for hook in hooks:
            try:
                hook(*args)
            except Exception:
                log.exception("a fleet hook failed (%r)", hook)
        return len(hooks)

    def _tell_printer(self, printer_id: str, command: CommandType, job_id: Optional[int]) -> bool:
        """Hand a command to the fleet link; False when nothing links the fleet to its printers."""
        return self._notify(self._command_hooks, printer_id, command, job_id) > 0

    def _work_available(self) -> None:
        self._notify(self._work_hooks)

    # -- identity -------------------------------------------------------------------------------

    def authenticate(self, token: Optional[str]) -> Member:
        if not token:
            raise Unauthorized("sign in: send your API token as 'Authorization: Bearer <token>'")
        if token.startswith(PRINTER_TOKEN_PREFIX):
            raise Unauthorized("this is a printer's token; this endpoint needs a member's API token")
        member = self.store.member_for_token(hash_token(token), now=self.clock())
        if member is None:
            raise Unauthorized("this API token is not valid (revoked, or the member is deactivated)")
        return member

    @staticmethod
    def require_manager(actor: Member) -> None:
        if actor.role is not Role.MANAGER:
            raise Forbidden("only a lab manager may do this", key="managers_only")

    # -- members --------------------------------------------------------------------------------

    def add_member(
        self, name: str, role: Role = Role.MEMBER, *, requires_approval: Optional[bool] = None
    ) -> tuple[Member, str]:
        """Create a member and return it with its API token: the only time the token is shown."""
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise Invalid(
                "name must be 1-64 characters: letters, digits, '.', '_', '@' or '-', starting with a letter "
                "or digit",
                field="name",
            )
        now = self.clock()
        member = self.store.create_member(name, role, requires_approval=requires_approval, now=now)
        token = new_token()
        self.store.add_token(member.id, hash_token(token), "initial", now=now)
        return member, token

    def create_member(
        self, actor: Member, name: str, role: Role, *, requires_approval: Optional[bool] = None
    ) -> tuple[Member, str]:
        self.require_manager(actor)
        return self.add_member(name, role, requires_approval=requires_approval)

    def list_members(self, actor: Member) -> list[Member]:
        self.require_manager(actor)
        return self.store.list_members()

    def get_member(self, actor: Member, member_id: int) -> Member:
        if actor.id != member_id:
            self.require_manager(actor)
        return self.store.get_member(member_id)

    def update_member(self, actor: Member, member_id: int, changes: dict[str, Any]) -> Member:
        self.require_manager(actor)
        kwargs: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "role":
                try:
                    kwargs["role"] = Role(value)
                except ValueError:
                    raise Invalid("role must be 'member' or 'manager'", field="role") from None
            elif key == "requires_approval":
                if value is not None and not isinstance(value, bool):
                    raise Invalid(
                        "requires_approval must be true, false or null (follow the lab)",
                        field="requires_approval",
                    )
                kwargs["requires_approval"] = value
            elif key == "active":
                if not isinstance(value, bool):
                    raise Invalid("active must be true or false", field="active")
                kwargs["active"] = value
            else:
                raise Invalid(f"unknown member field: {key}", field=key)
        if member_id == actor.id and (kwargs.get("role") is Role.MEMBER or kwargs.get("active") is False):
            raise Conflict("a manager cannot demote or deactivate themselves; ask another manager")
        return self.store.update_member(member_id, **kwargs)

    def new_token_for(self, actor: Member, member_id: int) -> str:
        """Revoke a member's tokens and issue a fresh one (a lost or leaked token)."""
        if actor.id != member_id:
            self.require_manager(actor)
        self.store.get_member(member_id)
        self.store.revoke_tokens(member_id)
        token = new_token()
        self.store.add_token(member_id, hash_token(token), "reissued", now=self.clock())
        return token

    def grant(self, actor: Member, member_id: int, printer_id: str) -> None:
        self.require_manager(actor)
        self.store.get_member(member_id)
        self.store.get_printer(printer_id)
        self.store.grant(member_id, printer_id)

    def revoke_grant(self, actor: Member, member_id: int, printer_id: str) -> None:
        self.require_manager(actor)
        self.store.revoke_grant(member_id, printer_id)

    def grants_for(self, actor: Member, member_id: int) -> frozenset[str]:
        if actor.id != member_id:
            self.require_manager(actor)
        return self.store.grants_for(member_id)

    # -- dashboard sign-in ----------------------------------------------------------------------

    def set_password(self, actor: Member, member_id: int, password: Any) -> None:
        """Set the password a member signs in to the dashboard with (the member, or a manager)."""
        if actor.id != member_id:
            self.require_manager(actor)
        if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise Invalid(
                f"password must be text of {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password"
            )
        self.store.get_member(member_id)
        self.store.set_password_hash(member_id, generate_password_hash(password, method="scrypt"))

    def sign_in(self, name: str, password: str) -> Member:
        """The member whose name and password these are; one message for every failure, so none leaks."""
        found = self.store.member_with_password(name) if isinstance(name, str) else None
        stored = found[1] if found is not None else None
        # An unknown name costs the same hash as a known one, so timing does not tell them apart.
        matches = check_password_hash(stored or _dummy_hash(), password if isinstance(password, str) else "")
        if found is None or stored is None or not matches or not found[0].active:
            raise Unauthorized(WRONG_SIGN_IN)
        return found[0]

    def password_stamp(self, member_id: int) -> str:
        """A short fingerprint of a member's password: a session carries it, and a new password ends it."""
        stored = self.store.password_hash(member_id) or ""
        return hashlib.sha256(stored.encode("utf-8")).hexdigest()[:16]

    def session_member(self, member_id: int, stamp: str) -> Member:
        """The member a dashboard session belongs to, while it is active and its password unchanged."""
        try:
            member = self.store.get_member(member_id)
        except NotFound:
            raise Unauthorized("sign in again") from None
        if not member.active or not hmac.compare_digest(stamp, self.password_stamp(member_id)):
            raise Unauthorized("sign in again")
        return member

    # -- dashboard views ------------------------------------------------------------------------

    def printer_board(self) -> list[PrinterBoard]:
        """Every printer with its live status and current job, in name order (any member may see it)."""
        printers = sorted(self.store.list_printers(), key=lambda p: (p.name.lower(), p.id))
        active = {j.id: j for j in self.store.list_jobs(states=ACTIVE)}
        names = {m.id: m.name for m in self.store.list_members()}
        board = []
        for p in printers:
            job = active.get(p.current_job_id) if p.current_job_id is not None else None
            owner = None
            if p.state is PrinterState.AWAITING_BED_CLEAR:
                owner = self.plate_owner(p.id)
            member_name = names.get(job.member_id) if job is not None else None
            board.append(PrinterBoard(p, self.live(p.id), job, member_name, owner))
        return board

    def queue_signature(self) -> tuple[tuple[int, str, int], ...]:
        """What changes whenever the queue does: the waiting jobs, their states and priorities."""
        return tuple((j.id, j.state.value, j.priority) for j in self.store.list_jobs(states=PENDING))

    # -- lab settings ---------------------------------------------------------------------------

    def lab_settings(self) -> LabSettings:
        return LabSettings.from_dict(self.store.get_setting(LAB_SETTINGS_KEY, {}))

    def update_lab_settings(self, actor: Member, changes: Any) -> LabSettings:
        self.require_manager(actor)
        settings = self.lab_settings().updated(changes)
        self.store.set_setting(LAB_SETTINGS_KEY, settings.to_dict())
        return settings

    # -- intake ---------------------------------------------------------------------------------

    def analyze_upload(self, stream: BinaryIO, *, material: Optional[str] = None) -> Analysis:
        """Analyse a file without keeping it (the dashboard's preview before a member confirms)."""
        lab = self.lab_settings()
        with self.blobs.staging(max_bytes=lab.max_upload_bytes) as staged:
            staged.write_from(stream)
            with staged.open() as written:
                return analyze_stream(written, rules=lab.rules, material=material)

    def submit_job(
        self,
        actor: Member,
        stream: BinaryIO,
        *,
        filename: Optional[str],
        copies: int = 1,
        material: Optional[str] = None,
        note: str = "",
        idempotency_key: Optional[str] = None,
    ) -> Submission:
        """Analyse an upload and queue it; a refused file leaves nothing behind.

        With ``idempotency_key``, a repeat of the same request within :data:`SUBMISSION_KEY_TTL_S`
        answers the jobs the first one made and creates nothing; the same key with another file,
        copies, material or note is :class:`Invalid`.
        """
        lab = self.lab_settings()
        key = None if idempotency_key is None else check_idempotency_key(idempotency_key)
        now = self.clock()
        if key is not None and now >= self._next_key_sweep:
            self._next_key_sweep = now + SUBMISSION_KEY_SWEEP_S
            self.store.remove_expired_submission_keys(now - SUBMISSION_KEY_TTL_S)
        if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= lab.max_copies:
            raise Invalid(
                f"copies must be a whole number from 1 to {lab.max_copies}",
                field="copies",
                key="copies_range",
                params={"max": lab.max_copies},
            )
        requested_material = check_material(material)
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise Invalid(
                f"note must be text of at most {MAX_NOTE} characters",
                field="note",
                key="note_too_long",
                params={"max": MAX_NOTE},
            )
        note = note.strip()
        claim: Optional[SubmissionKey] = None
        with self.blobs.staging(max_bytes=lab.max_upload_bytes) as staged:
            staged.write_from(stream)
            if key is not None:
                asked = submission_hash(staged.sha256, copies, requested_material, note)
                claim = SubmissionKey(key, asked, valid_after=now - SUBMISSION_KEY_TTL_S)
                earlier = self.store.keyed_submission(actor.id, claim)
                if earlier:
                    # A repeat: the staged copy goes (the file is stored already), the jobs are the first's.
                    return Submission(jobs=earlier, analysis=Analysis.from_dict(earlier[0].analysis))
            with staged.open() as written:
                analysis = analyze_stream(written, rules=lab.rules, material=requested_material)
            if analysis.refused:
                raise Invalid(
                    refusal_message(analysis),
                    field="file",
                    details={"findings": [f.to_dict() for f in analysis.findings]},
                )
            blob = staged.commit()
        job_material = requested_material or check_material(analysis.material, "the file's material")
        needs_approval = (
            actor.requires_approval if actor.requires_approval is not None else lab.approval_required
        )
        if needs_approval:
            target, why = JobState.AWAITING_APPROVAL, "the lab asks a manager to approve this member's jobs"
        else:
            target, why = JobState.QUEUED, "the file passed the lab's checks"
        # One transaction from upload to queue: a crash leaves either no job or a waiting one.
        queued = self.store.create_jobs(
            actor.id,
            count=copies,
            state=JobState.SUBMITTED,
            file_sha256=blob.sha256,
            filename=clean_filename(filename),
            size_bytes=blob.size,
            material=job_material,
            note=note,
            analysis=analysis.to_dict(),
            actor=actor_of(actor),
            reason="uploaded",
            now=now,
            then=[(target, "system", why)],
            idempotency=claim,
        )
        if target is JobState.QUEUED:
            self._work_available()
        return Submission(jobs=queued, analysis=analysis)

    # -- jobs -----------------------------------------------------------------------------------

    def remove_orphan_blobs(self, older_than_s: float = 3600.0) -> int:
        """Delete stored files no job refers to, older than ``older_than_s``; returns how many.

        They are left when the fleet stops between storing an upload and recording its job (the
        member got no answer and sends it again). The age keeps a file that another fleet process
        stored a moment ago, and is about to record, out of reach.
        """
        cutoff = self.clock() - older_than_s
        referenced = self.store.referenced_blobs()
        removed = 0
        for sha256, changed_at in list(self.blobs.stored()):
            if changed_at < cutoff and sha256 not in referenced and self.blobs.delete(sha256):
                removed += 1
        return removed

    def remove_expired_submission_keys(self) -> int:
        """Forget idempotency keys older than :data:`SUBMISSION_KEY_TTL_S`; returns how many."""
        return self.store.remove_expired_submission_keys(self.clock() - SUBMISSION_KEY_TTL_S)

    def get_job(self, actor: Member, job_id: int) -> Job:
        job = self.store.get_job(job_id)
        if job.member_id != actor.id and actor.role is not Role.MANAGER:
            raise Forbidden("this job belongs to another member", key="job_not_yours", params={"id": job_id})
        return job

    def job_history(self, actor: Member, job_id: int) -> list[JobEvent]:
        self.get_job(actor, job_id)
        return self.store.job_events(job_id)

    def my_jobs(self, actor: Member, *, states: Optional[frozenset[JobState]] = None) -> list[Job]:
        return self.store.list_jobs(member_id=actor.id, states=states)

    def list_jobs(
        self, actor: Member, *, states: Optional[frozenset[JobState]] = None, member_id: Optional[int] = None
    ) -> list[Job]:
        if member_id != actor.id:
            self.require_manager(actor)
        return self.store.list_jobs(states=states, member_id=member_id)

    def cancel_job(self, actor: Member, job_id: int, reason: str = "") -> Job:
        job = self.get_job(actor, job_id)
        if job.state not in CANCELLABLE:
            raise Conflict(
                f"job {job_id} is already {job.state.value}; there is nothing to cancel",
                key="job_not_cancellable",
                params={"id": job_id, "state": job.state.value},
            )
        why = reason.strip()[:200] or (
            "cancelled by its member" if job.member_id == actor.id else "cancelled by a manager"
        )
        held = job.state in ACTIVE and job.printer_id is not None
        freed: list[PrinterState] = []

        def release(printer: Printer) -> Optional[dict[str, Any]]:
            """A job a person cancelled while a printer held it: free the printer, for a person."""
            if not held or printer.current_job_id != job.id:
                return None  # the printer moved on already
            # A dispatched job that never started left nothing on the plate; any other may have.
            after = PrinterState.IDLE if job.state is JobState.ASSIGNED else PrinterState.AWAITING_BED_CLEAR
            if printer.state in (PrinterState.OFFLINE, PrinterState.MAINTENANCE):
                after = printer.state
            freed.append(after)
            return {"state": after, "current_job_id": None}

        if held:
            # Told first, so the cancel reaches the node before any dispatch to the printer it frees.
            assert job.printer_id is not None
            if not self._tell_printer(job.printer_id, CommandType.CANCEL, job.id):
                log.warning(
                    "job %d was cancelled, but no link to printer %s is running", job.id, job.printer_id
                )
        cancelled = self.store.transition_job(
            job_id,
            JobState.CANCELLED,
            actor=actor_of(actor),
            reason=why,
            now=self.clock(),
            printer_changes=release,
        )
        if freed == [PrinterState.IDLE]:
            self._work_available()
        return cancelled

    def pause_job(self, actor: Member, job_id: int) -> Job:
        """Ask the printer to pause a running job; the job becomes paused when the printer says so."""
        return self._job_command(actor, job_id, CommandType.PAUSE, PAUSABLE)

    def resume_job(self, actor: Member, job_id: int) -> Job:
        """Ask the printer to resume a paused job."""
        return self._job_command(actor, job_id, CommandType.RESUME, RESUMABLE)

    def _job_command(
        self, actor: Member, job_id: int, command: CommandType, allowed: frozenset[JobState]
    ) -> Job:
        job = self.get_job(actor, job_id)
        if job.state not in allowed or job.printer_id is None:
            wanted = " or ".join(sorted(s.value for s in allowed))
            raise Conflict(
                f"job {job_id} is {job.state.value}; only a {wanted} job can be told to {command.value}",
                key=f"job_cannot_{command.value}",
                params={"id": job_id, "state": job.state.value},
            )
        if not self._tell_printer(job.printer_id, command, job.id):
            raise Unavailable(
                "the fleet is not linked to its printers (no MQTT link is running); try again later",
                key="no_printer_link",
            )
        return job

    def approve_job(self, actor: Member, job_id: int) -> Job:
        self.require_manager(actor)
        approved = self.store.transition_job(
            job_id,
            JobState.QUEUED,
            actor=actor_of(actor),
            reason="approved by a manager",
            now=self.clock(),
            expect={JobState.AWAITING_APPROVAL},
        )
        self._work_available()
        return approved

    def reject_job(self, actor: Member, job_id: int, reason: str = "") -> Job:
        self.require_manager(actor)
        why = "rejected by a manager" + (f": {reason.strip()[:200]}" if reason.strip() else "")
        return self.store.transition_job(
            job_id,
            JobState.CANCELLED,
            actor=actor_of(actor),
            reason=why,
            now=self.clock(),
            expect={JobState.AWAITING_APPROVAL},
        )

    def set_priority(self, actor: Member, job_id: int, priority: Any) -> Job:
        self.require_manager(actor)
        if isinstance(priority, bool) or not isinstance(priority, int) or not -100 <= priority <= 100:
            raise Invalid("priority must be a whole number from -100 to 100 (0 is normal)", field="priority")
        job = self.store.get_job(job_id)
        if job.state not in PENDING:
            raise Conflict(f"job {job_id} is {job.state.value}: only a waiting job's priority can change")
        return self.store.set_priority(job_id, priority, actor=actor_of(actor), now=self.clock())

    def blob_path(self, actor: Member, job_id: int) -> str:
        job = self.get_job(actor, job_id)
        return str(self.blobs.path(job.file_sha256))

    # -- printers -------------------------------------------------------------------------------

    def list_printers(self) -> list[Printer]:
        return self.store.list_printers()

    def get_printer(self, printer_id: str) -> Printer:
        return self.store.get_printer(printer_id)

    def add_printer(self, actor: Member, data: dict[str, Any]) -> Printer:
        self.require_manager(actor)
        printer_id = data.get("id")
        if not isinstance(printer_id, str) or not PRINTER_ID_RE.match(printer_id):
            raise Invalid(
                "id must be 1-48 lowercase letters, digits or '-', starting with a letter or digit",
                field="id",
            )
        name = data.get("name", printer_id)
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 80:
            raise Invalid("name must be text of 1 to 80 characters", field="name")
        printer = Printer(
            id=printer_id,
            name=name.strip(),
            state=PrinterState.IDLE,
            volume=self.check_volume(data.get("volume")),
            nozzle_diameter=self.check_nozzle(data.get("nozzle_diameter", 0.4)),
            material=check_material(data.get("material")),
            restricted=self._bool(data.get("restricted", False), "restricted"),
            current_job_id=None,
            last_seen=None,
            created_at=self.clock(),
        )
        return self.store.create_printer(printer)

    def update_printer(self, actor: Member, printer_id: str, data: dict[str, Any]) -> Printer:
        self.require_manager(actor)
        printer = self.store.get_printer(printer_id)
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if key == "name":
                if not isinstance(value, str) or not 1 <= len(value.strip()) <= 80:
                    raise Invalid("name must be text of 1 to 80 characters", field="name")
                changes["name"] = value.strip()
            elif key == "material":
                changes["material"] = check_material(value)
            elif key == "nozzle_diameter":
                changes["nozzle_diameter"] = self.check_nozzle(value)
            elif key == "volume":
                changes["volume"] = self.check_volume(value)
            elif key == "restricted":
                changes["restricted"] = self._bool(value, "restricted")
            elif key == "maintenance":
                down = self._bool(value, "maintenance")
                if down and printer.state is not PrinterState.MAINTENANCE:
                    if printer.current_job_id is not None:
                        raise Conflict("this printer holds a job: cancel or finish it before maintenance")
                    changes["state"] = PrinterState.MAINTENANCE
                elif not down and printer.state is PrinterState.MAINTENANCE:
                    changes["state"] = PrinterState.IDLE
            else:
                raise Invalid(f"unknown printer field: {key}", field=key)
        updated = self.store.update_printer(printer_id, **changes)
        if updated.state is PrinterState.IDLE and printer.state is not PrinterState.IDLE:
            self._work_available()
        return updated

    # -- enrollment and printer credentials -----------------------------------------------------

    def create_enrollment_code(self, actor: Optional[Member], ttl_s: float = 86400.0) -> tuple[str, float]:
        """A single-use code for enrolling one printer, and when it expires; only its hash is kept.

        ``actor`` None is the console (the data dir's owner), which needs no manager.
        """
        if actor is not None:
            self.require_manager(actor)
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not 60 <= ttl_s <= 30 * 86400:
            raise Invalid("ttl_s must be from 60 seconds to 30 days", field="ttl_s")
        code = new_enrollment_code()
        normalized = normalize_code(code)
        assert normalized is not None
        now = self.clock()
        created = self.store.add_enrollment_code(
            hash_token(normalized),
            created_by=None if actor is None else actor.id,
            now=now,
            expires_at=now + ttl_s,
        )
        return code, created.expires_at

    def enroll(self, code: Any, name: Any, capabilities: Any) -> Enrollment:
        """Spend an enrollment code on a new printer; its token and broker password are returned once."""
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 80:
            raise Invalid("name must be text of 1 to 80 characters", field="name")
        if not isinstance(capabilities, dict):
            raise Invalid(
                "capabilities must be an object with volume, nozzle_diameter and material",
                field="capabilities",
            )
        unknown = sorted(set(capabilities) - {"volume", "nozzle_diameter", "material"})
        if unknown:
            raise Invalid(f"unknown capability: {unknown[0]}", field=f"capabilities.{unknown[0]}")
        volume = self.check_volume(capabilities.get("volume"))
        nozzle = self.check_nozzle(capabilities.get("nozzle_diameter", 0.4))
        material = check_material(capabilities.get("material"), "capabilities.material")
        normalized = normalize_code(code) if isinstance(code, str) else None
        if normalized is None:
            raise Unauthorized(INVALID_CODE, field="code")
        if self.node_mqtt is None:
            raise Unavailable(
                "this fleet runs without an MQTT broker, so a printer could not connect: start it with "
                "'crowdfab-fleet serve' (managed broker) or --mqtt-url"
            )
        now = self.clock()
        token = PRINTER_TOKEN_PREFIX + secrets.token_urlsafe(32)
        password = secrets.token_urlsafe(24)
        printer_id = slugify(name)
        if printer_id == "enroll":  # would shadow the route that enrolls printers
            printer_id = "printer-enroll"
        template = Printer(
            id=printer_id,
            name=name.strip(),
            state=PrinterState.OFFLINE,  # until its node says otherwise
            volume=volume,
            nozzle_diameter=nozzle,
            material=material,
            restricted=False,
            current_job_id=None,
            last_seen=None,
            created_at=now,
        )
        printer = self.store.enroll_printer(
            hash_token(normalized),
            template,
            mqtt_password_hash=self._hash_password(password),
            http_token_hash=hash_token(token),
            now=now,
        )
        if printer is None:
            raise Unauthorized(INVALID_CODE, field="code")
        log.info("printer %s (%s) enrolled", printer.id, printer.name)
        self._notify(self._credential_hooks)
        return Enrollment(printer, token, printer.id, password, self.node_mqtt)

    def revoke_printer(self, actor: Member, printer_id: str) -> Printer:
        """Withdraw an enrolled printer's credentials and take it out of the pool.

        Its broker login and file downloads stop working; a job it held becomes unknown (a
        manager settles it), and the printer stays in maintenance until it is enrolled again.
        """
        self.require_manager(actor)
        if not self.store.revoke_credentials(printer_id, now=self.clock()):
            raise Conflict(
                f"printer {printer_id} has no active credentials (never enrolled, or already revoked)"
            )
        printer = self.store.get_printer(printer_id)
        if printer.current_job_id is not None:
            self._job_unreachable(
                printer.current_job_id, actor_of(actor), "the printer's credentials were revoked"
            )
        printer = self.store.release_printer(printer_id, PrinterState.MAINTENANCE)
        self.clear_live(printer_id)
        log.info("printer %s: credentials revoked by %s", printer_id, actor_of(actor))
        self._notify(self._credential_hooks)
        return printer

    def broker_users(self) -> list[BrokerUser]:
        """The managed broker's printer logins: every enrolled printer that is not revoked."""
        from .broker import BrokerUser

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
        return job, str(self.blobs.path(job.file_sha256))

    # -- what the printers report (called by the fleet link) ----------------------------------

    def live(self, printer_id: str) -> Optional[LiveStatus]:
        with self._live_lock:
            return self._live.get(printer_id)

    def set_live(self, printer_id: str, status: LiveStatus) -> None:
        with self._live_lock:
            self._live[printer_id] = status

    def clear_live(self, printer_id: str) -> None:
        with self._live_lock:
            self._live.pop(printer_id, None)

    def printer_offline(
        self, printer_id: str, reason: str = "printer unreachable, outcome unknown"
    ) -> Printer:
        """A printer's node is gone: the printer is offline, and a job it held has an unknown outcome.

        The job stays with the printer (not back in the queue: it may still be printing); when the
        node returns, what it reports settles the job.
        """
        printer = self.store.get_printer(printer_id)
        if printer.current_job_id is not None:
            self._job_unreachable(printer.current_job_id, f"printer:{printer_id}", reason)
        if printer.state in (PrinterState.OFFLINE, PrinterState.MAINTENANCE):
            return printer
        return self.store.update_printer(printer_id, state=PrinterState.OFFLINE)

    def _job_unreachable(self, job_id: int, actor: str, reason: str) -> None:
        with suppress(Conflict):  # already unknown, or settled meanwhile
            self.store.transition_job(
                job_id,
                JobState.UNKNOWN,
                actor=actor,
                reason=reason,
                now=self.clock(),
                expect={JobState.ASSIGNED, JobState.PRINTING, JobState.PAUSED},
            )

    def printer_job_event(self, printer_id: str, job_id: int, target: JobState, reason: str) -> bool:
        """A printer reports its job moved to ``target``; False when the job was already there.

        Events arrive at least once: a repeat is a no-op. A printer may only report its own job
        (:class:`Forbidden` otherwise). Terminal outcomes leave the printer waiting for a bed clear.
        """
        job = self.store.get_job(job_id)
        if job.printer_id != printer_id:
            raise Forbidden(f"job {job_id} is not dispatched to printer {printer_id}", field="job_id")
        if job.state is target:
            return False
        actor = f"printer:{printer_id}"
        if target in TERMINAL:
            self.finish_job(job_id, target, actor=actor, reason=reason)
            return True
        now = self.clock()

        def hold(printer: Printer) -> Optional[dict[str, Any]]:
            if printer.current_job_id in (None, job_id) and printer.state is not PrinterState.MAINTENANCE:
                return {"state": PrinterState(target.value), "current_job_id": job_id, "last_seen": now}
            return None

        self.store.transition_job(job_id, target, actor=actor, reason=reason, now=now, printer_changes=hold)
        return True

    def requeue_assignment(self, job_id: int, printer_id: str, reason: str) -> bool:
        """A dispatch the printer refused or never answered: the job waits again, the printer is free.

        Also a job that went unknown before it started, whose printer declined when asked again.
        False when the job is no longer assigned to that printer (it started, or was cancelled).
        """
        job = self.store.get_job(job_id)
        # An unknown job that never started is one its printer was asked about again, and declined.
        never_started = job.state is JobState.UNKNOWN and job.started_at is None
        if (job.state is not JobState.ASSIGNED and not never_started) or job.printer_id != printer_id:
            return False

        def free(printer: Printer) -> Optional[dict[str, Any]]:
            if printer.current_job_id != job_id:
                return None  # the printer holds something else now; leave it
            after = PrinterState.OFFLINE if printer.state is PrinterState.OFFLINE else PrinterState.IDLE
            if printer.state is PrinterState.MAINTENANCE:
                after = PrinterState.MAINTENANCE
            return {"state": after, "current_job_id": None}

        try:
            self.store.transition_job(
                job_id,
                JobState.QUEUED,
                actor=f"printer:{printer_id}",
                reason=reason,
                now=self.clock(),
                expect={job.state},
                printer_id=None,
                printer_changes=free,
            )
        except Conflict:
            return False
        self._work_available()
        return True

    @staticmethod
    def check_volume(value: Any) -> Box:
        if value is None:
            raise Invalid("volume is required: the build volume's min_x … max_z in mm", field="volume")
        box = Box.from_dict(value, "volume")
        if min(box.size) <= 0:
            raise Invalid("volume must have a positive size on every axis", field="volume")
        return box

    @staticmethod
    def check_nozzle(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.05 <= value <= 3.0:
            raise Invalid("nozzle_diameter must be a number of mm from 0.05 to 3", field="nozzle_diameter")
        return float(value)

    @staticmethod
    def _bool(value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise Invalid(f"{field} must be true or false", field=field)
        return value

    def plate_owner(self, printer_id: str) -> Optional[int]:
        """The member whose print is on a printer's plate: the job that ended there last.

        By when it ended, not by job id: a job submitted earlier often prints later (priority,
        fair share), and the plate holds the later print.
        """
        last = self.store.last_finished_job(printer_id)
        return None if last is None else last.member_id

    def confirm_bed_cleared(self, actor: Member, printer_id: str) -> Printer:
        """A person at the printer confirms its plate is empty: it may take work again."""
        printer = self.store.get_printer(printer_id)
        if printer.state is not PrinterState.AWAITING_BED_CLEAR:
            raise Conflict(
                f"printer {printer_id} is {printer.state.value}, not waiting for its bed to be cleared",
                key="bed_not_waiting",
                params={"name": printer.name, "printer_state": printer.state.value},
            )
        if actor.role is not Role.MANAGER and self.plate_owner(printer_id) != actor.id:
            raise Forbidden(
                "only a manager or the member whose print is on the plate may clear it", key="bed_not_yours"
            )
        # Tell the node first: commands reach it in order on its topic, so a dispatch made as soon
        # as the printer is idle cannot overtake the news that its plate is clear.
        self._tell_printer(printer_id, CommandType.BED_CLEARED, None)
        cleared = self.store.update_printer(printer_id, state=PrinterState.IDLE)
        self._work_available()
        return cleared

    def finish_job(self, job_id: int, outcome: JobState, *, actor: str, reason: str) -> Job:
        """A printer reports a job's end: the job settles and the printer waits for its bed to be cleared."""
        if outcome not in TERMINAL:
            raise Invalid(f"{outcome.value} is not an outcome")

        def settle(printer: Printer) -> Optional[dict[str, Any]]:
            if printer.current_job_id not in (None, job_id):
                return None
            after = PrinterState.AWAITING_BED_CLEAR
            if printer.state in (PrinterState.MAINTENANCE, PrinterState.OFFLINE):
                after = printer.state
            return {"state": after, "current_job_id": None}

        return self.store.transition_job(
            job_id, outcome, actor=actor, reason=reason, now=self.clock(), printer_changes=settle
        )

    # -- scheduling -----------------------------------------------------------------------------

    def _plan(
        self, *, hide_printers: Collection[str] = (), hide_jobs: Collection[int] = (), explain: bool = True
    ) -> tuple[scheduler.Plan, list[Job]]:
        now = self.clock()
        lab = self.lab_settings()
        jobs = [j for j in self.store.list_jobs(states=PENDING) if j.id not in hide_jobs]
        active = self.store.list_jobs(states=ACTIVE)
        printers = [p for p in self.store.list_printers() if p.id not in hide_printers]
        busy_until = self._busy_until(printers, active, now)
        infos = [
            scheduler.PrinterInfo(
                id=p.id,
                state=p.state,
                volume=p.volume,
                nozzle_diameter=p.nozzle_diameter,
                material=p.material,
                restricted=p.restricted,
                busy_until=busy_until.get(p.id),
            )
            for p in printers
        ]
        usage = scheduler.decayed_usage(
            self.store.usage_records(since=now - 8 * lab.fair_share_half_life_s),
            now,
            half_life_s=lab.fair_share_half_life_s,
        )
        plan = scheduler.plan(
            infos,
            [self._job_info(j) for j in jobs],
            usage=usage,
            grants=self.store.grants(),
            now=now,
            explain=explain,
        )
        return plan, jobs

    @staticmethod
    def _busy_until(printers: list[Printer], active: list[Job], now: float) -> dict[str, float]:
        by_id = {j.id: j for j in active}
        result: dict[str, float] = {}
        for p in printers:
            job = by_id.get(p.current_job_id) if p.current_job_id is not None else None
            if job is not None:
                start = job.started_at or now
                result[p.id] = max(now, start + FleetService.estimate(job))
        return result

    @staticmethod
    def estimate(job: Job) -> float:
        analysis = job.analysis
        value = analysis.get("estimated_time_s") or analysis.get("own_time_estimate_s") or 0.0
        return float(value)

    @staticmethod
    def _job_info(job: Job) -> scheduler.JobInfo:
        bounds = job.analysis.get("bounds")
        return scheduler.JobInfo(
            id=job.id,
            member_id=job.member_id,
            state=job.state,
            submitted_at=job.submitted_at,
            estimated_seconds=FleetService.estimate(job),
            bounds=Box.from_dict(bounds) if bounds else None,
            nozzle_diameter=job.analysis.get("nozzle_diameter"),
            material=job.material,
            priority=job.priority,
        )

    def queue(self, actor: Member) -> list[QueueEntry]:
        """Every waiting job in queue order, each with the scheduler's explanation of where it stands."""
        plan, jobs = self._plan()
        names = {m.id: m.name for m in self.store.list_members()}
        by_id = {j.id: j for j in jobs}
        ordered = [by_id[i] for i in plan.order if i in by_id]
        seen = set(plan.order)
        ordered += [j for j in jobs if j.id not in seen]
        return [QueueEntry(j, names.get(j.member_id, "?"), plan.explanations.get(j.id)) for j in ordered]

    def dispatch_pass(self, avoid: Collection[tuple[int, str]] = ()) -> list[tuple[int, str]]:
        """Assign what the scheduler says; a job or printer another process claimed first is skipped.

        ``avoid`` holds (job, printer) pairs not to make now (the printer just refused that job).
        When the plan wants one, the pass plans again without that printer, so the job may go to
        another, then without that job, so the printer may take another.
        """
        avoid = frozenset(avoid)
        assigned: list[tuple[int, str]] = []
        blocked = self._assign_planned(avoid, assigned)
        if blocked:
            self._assign_planned(avoid, assigned, hide_printers={p for _, p in blocked})
            self._assign_planned(avoid, assigned, hide_jobs={j for j, _ in blocked})
        return assigned

    def _assign_planned(
        self,
        avoid: frozenset[tuple[int, str]],
        assigned: list[tuple[int, str]],
        *,
        hide_printers: Collection[str] = (),
        hide_jobs: Collection[int] = (),
    ) -> list[tuple[int, str]]:
        """Plan once and claim the assignments (added to ``assigned``); returns the avoided ones."""
        # Dispatch needs only the assignments: the scheduler's fast pass, without explanations.
        plan, _ = self._plan(hide_printers=hide_printers, hide_jobs=hide_jobs, explain=False)
        now = self.clock()
        blocked = []
        for job_id, printer_id in plan.assignments:
            if (job_id, printer_id) in avoid:
                blocked.append((job_id, printer_id))
            elif self.store.assign_job(job_id, printer_id, actor="system", now=now):
                assigned.append((job_id, printer_id))
        return blocked

    # -- history and statistics (the dashboard's read-only views) ---------------------------------

    def print_history(self, actor: Member, *, since: float = 0.0) -> list[Job]:
        """Every job that reached a printer and did not end before ``since``, for the lab's statistics.

        Any member may ask (a member's page shows only their own row beside the lab's totals);
        jobs still printing come with ``finished_at`` None.
        """
        del actor  # signed in is enough: the caller decides which rows a person sees
        return [
            j
            for j in self.store.list_jobs()
            if j.started_at is not None and (j.finished_at is None or j.finished_at >= since)
        ]

    def member_names(self, actor: Member) -> dict[int, str]:
        """Members' names by id: every member's for a manager, only their own for anyone else."""
        if actor.role is Role.MANAGER:
            return {m.id: m.name for m in self.store.list_members()}
        return {actor.id: actor.name}

    def all_grants(self, actor: Member) -> dict[int, frozenset[str]]:
        """Every member's granted printers (a manager's view)."""
        self.require_manager(actor)
        return self.store.grants()
