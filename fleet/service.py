"""The fleet's application service: who may do what, and the rules that tie store, analysis and scheduler."""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Optional

from . import scheduler
from .auth import hash_token, new_token
from .errors import Conflict, Forbidden, Invalid, Unauthorized
from .gcode import Analysis, analyze_stream, refusal_message
from .geometry import Box
from .lab import LabSettings
from .models import Job, JobEvent, Member, Printer, Role
from .states import ACTIVE, CANCELLABLE, PENDING, TERMINAL, JobState, PrinterState
from .store import BlobStore, Store

LAB_SETTINGS_KEY = "lab"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
PRINTER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
MATERIAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 +._-]{0,31}$")
MAX_NOTE = 500


@dataclass(frozen=True)
class Submission:
    jobs: list[Job]
    analysis: Analysis


@dataclass(frozen=True)
class QueueEntry:
    job: Job
    member_name: str
    explanation: Optional[scheduler.Explanation]


def actor_of(member: Member) -> str:
    return f"{member.role.value}:{member.id}"


def clean_filename(name: str | None) -> str:
    """A display name for an uploaded file: no path, no control characters, bounded length."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C")
    base = base.strip().lstrip(".")
    return base[:120] or "upload.gcode"


def check_material(value: Any, field: str = "material") -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not MATERIAL_RE.match(value.strip()):
        raise Invalid(
            f"{field} must be a material name such as PLA, PETG or ABS (letters, digits, up to 32)",
            field=field,
        )
    return value.strip().upper()


class FleetService:
    """Every operation of the fleet, checked for who may do it; the API and the CLI both call it."""

    def __init__(self, store: Store, blobs: BlobStore, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.blobs = blobs
        self.clock = clock

    # -- identity -------------------------------------------------------------------------------

    def authenticate(self, token: Optional[str]) -> Member:
        if not token:
            raise Unauthorized("sign in: send your API token as 'Authorization: Bearer <token>'")
        member = self.store.member_for_token(hash_token(token), now=self.clock())
        if member is None:
            raise Unauthorized("this API token is not valid (revoked, or the member is deactivated)")
        return member

    @staticmethod
    def require_manager(actor: Member) -> None:
        if actor.role is not Role.MANAGER:
            raise Forbidden("only a lab manager may do this")

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
    ) -> Submission:
        """Analyse an upload and queue it; a refused file leaves nothing behind."""
        lab = self.lab_settings()
        if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= lab.max_copies:
            raise Invalid(f"copies must be a whole number from 1 to {lab.max_copies}", field="copies")
        requested_material = check_material(material)
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise Invalid(f"note must be text of at most {MAX_NOTE} characters", field="note")
        with self.blobs.staging(max_bytes=lab.max_upload_bytes) as staged:
            staged.write_from(stream)
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
        now = self.clock()
        jobs = self.store.create_jobs(
            actor.id,
            count=copies,
            state=JobState.SUBMITTED,
            file_sha256=blob.sha256,
            filename=clean_filename(filename),
            size_bytes=blob.size,
            material=job_material,
            note=note.strip(),
            analysis=analysis.to_dict(),
            actor=actor_of(actor),
            reason="uploaded",
            now=now,
        )
        if needs_approval:
            target, why = JobState.AWAITING_APPROVAL, "the lab asks a manager to approve this member's jobs"
        else:
            target, why = JobState.QUEUED, "the file passed the lab's checks"
        queued = [
            self.store.transition_job(job.id, target, actor="system", reason=why, now=now) for job in jobs
        ]
        return Submission(jobs=queued, analysis=analysis)

    # -- jobs -----------------------------------------------------------------------------------

    def get_job(self, actor: Member, job_id: int) -> Job:
        job = self.store.get_job(job_id)
        if job.member_id != actor.id and actor.role is not Role.MANAGER:
            raise Forbidden("this job belongs to another member")
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
            raise Conflict(f"job {job_id} is already {job.state.value}; there is nothing to cancel")
        why = reason.strip()[:200] or (
            "cancelled by its member" if job.member_id == actor.id else "cancelled by a manager"
        )
        return self.store.transition_job(
            job_id, JobState.CANCELLED, actor=actor_of(actor), reason=why, now=self.clock()
        )

    def approve_job(self, actor: Member, job_id: int) -> Job:
        self.require_manager(actor)
        return self.store.transition_job(
            job_id,
            JobState.QUEUED,
            actor=actor_of(actor),
            reason="approved by a manager",
            now=self.clock(),
            expect={JobState.AWAITING_APPROVAL},
        )

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
            volume=self._volume(data.get("volume")),
            nozzle_diameter=self._nozzle(data.get("nozzle_diameter", 0.4)),
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
                changes["nozzle_diameter"] = self._nozzle(value)
            elif key == "volume":
                changes["volume"] = self._volume(value)
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
        return self.store.update_printer(printer_id, **changes)

    @staticmethod
    def _volume(value: Any) -> Box:
        if value is None:
            raise Invalid("volume is required: the build volume's min_x … max_z in mm", field="volume")
        box = Box.from_dict(value, "volume")
        if min(box.size) <= 0:
            raise Invalid("volume must have a positive size on every axis", field="volume")
        return box

    @staticmethod
    def _nozzle(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.05 <= value <= 3.0:
            raise Invalid("nozzle_diameter must be a number of mm from 0.05 to 3", field="nozzle_diameter")
        return float(value)

    @staticmethod
    def _bool(value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise Invalid(f"{field} must be true or false", field=field)
        return value

    def confirm_bed_cleared(self, actor: Member, printer_id: str) -> Printer:
        """A person at the printer confirms its plate is empty: it may take work again."""
        printer = self.store.get_printer(printer_id)
        if printer.state is not PrinterState.AWAITING_BED_CLEAR:
            raise Conflict(
                f"printer {printer_id} is {printer.state.value}, not waiting for its bed to be cleared"
            )
        if actor.role is not Role.MANAGER:
            last = self.store.list_jobs(states=TERMINAL, printer_id=printer_id, limit=1, newest_first=True)
            if not last or last[0].member_id != actor.id:
                raise Forbidden("only a manager or the member whose print is on the plate may clear it")
        return self.store.update_printer(printer_id, state=PrinterState.IDLE)

    def finish_job(self, job_id: int, outcome: JobState, *, actor: str, reason: str) -> Job:
        """A printer reports a job's end: the job settles and the printer waits for its bed to be cleared."""
        if outcome not in TERMINAL:
            raise Invalid(f"{outcome.value} is not an outcome")
        job = self.store.transition_job(job_id, outcome, actor=actor, reason=reason, now=self.clock())
        if job.printer_id is not None:
            self.store.update_printer(
                job.printer_id, state=PrinterState.AWAITING_BED_CLEAR, current_job_id=None
            )
        return job

    # -- scheduling -----------------------------------------------------------------------------

    def _plan(self) -> tuple[scheduler.Plan, list[Job]]:
        now = self.clock()
        lab = self.lab_settings()
        jobs = self.store.list_jobs(states=PENDING)
        active = self.store.list_jobs(states=ACTIVE)
        printers = self.store.list_printers()
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
            infos, [self._job_info(j) for j in jobs], usage=usage, grants=self.store.grants(), now=now
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
                result[p.id] = max(now, start + FleetService._estimate(job))
        return result

    @staticmethod
    def _estimate(job: Job) -> float:
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
            estimated_seconds=FleetService._estimate(job),
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

    def dispatch_pass(self) -> list[tuple[int, str]]:
        """Assign what the scheduler says; a job or printer another process claimed first is skipped."""
        plan, _ = self._plan()
        now = self.clock()
        assigned = []
        for job_id, printer_id in plan.assignments:
            if self.store.assign_job(job_id, printer_id, actor="system", now=now):
                assigned.append((job_id, printer_id))
        return assigned
