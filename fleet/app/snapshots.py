"""Photos of the plate: a printer sends one after each job; whoever may see the job may see it.

Only the printer the job ran on may send its photo (with its own token), only a JPEG or PNG (told by
its first bytes, not by what the sender claims), and no larger than the lab's ``snapshot_max_bytes``.
They are forgotten after the lab's ``snapshot_retention_days``: a photo is for deciding whether the
plate is clear, not an archive. A manager sets both (the lab settings; 2 MiB and 14 days at first).
"""

from __future__ import annotations

from typing import Optional

from ..errors import Conflict, Forbidden, Invalid, NotFound, TooLarge, Unavailable
from ..http_protocol import image_type
from ..models import Member, Printer, Role
from ..protocol import CommandType
from ..store import PlateSnapshot
from .base import Context, require_manager
from .jobs import Jobs

#: How often sending a photo also sweeps the expired ones (a fleet may run for months).
SNAPSHOT_SWEEP_S = 3600.0


class Snapshots:
    """Keeps the printers' plate photos and hands them to those who may see the job."""

    def __init__(self, ctx: Context, jobs: Jobs) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.jobs = jobs
        self._next_sweep = float("-inf")

    @property
    def retention_s(self) -> float:
        """How long a photo is kept: the lab's setting, in seconds."""
        return self.ctx.lab_settings().snapshot_retention_days * 86400.0

    @property
    def max_bytes(self) -> int:
        """The largest photo a printer may send: the lab's setting."""
        return self.ctx.lab_settings().snapshot_max_bytes

    def receive(self, printer: Printer, printer_id: str, job_id: int, data: bytes) -> PlateSnapshot:
        """Keep the photo ``printer`` (the token's) took after job ``job_id``, which it must have run."""
        if printer.id != printer_id:
            raise Forbidden(f"this token belongs to printer {printer.id}, not {printer_id}")
        limit = self.max_bytes
        if len(data) > limit:
            raise TooLarge(
                f"the snapshot is {len(data)} bytes; this lab takes at most {limit} bytes "
                "(a manager sets snapshot_max_bytes)",
                field="snapshot",
            )
        media_type = image_type(data)
        if media_type is None:
            raise Invalid("the snapshot must be a JPEG or PNG image", field="snapshot")
        job = self.store.get_job(job_id)
        if job.printer_id != printer.id:
            raise Forbidden(f"job {job_id} did not run on printer {printer.id}")
        now = self.ctx.clock()
        if now >= self._next_sweep:
            self._next_sweep = now + SNAPSHOT_SWEEP_S
            self.remove_expired()
        snapshot = PlateSnapshot(printer.id, job_id, media_type, now, data)
        self.store.add_snapshot(snapshot)
        self.ctx.job_changed(job)
        return snapshot

    def for_job(self, actor: Member, job_id: int) -> PlateSnapshot:
        """The latest photo of job ``job_id``'s plate, for whoever may see the job."""
        self.jobs.get_job(actor, job_id)
        found = self.store.job_snapshot(job_id)
        if found is None:
            raise NotFound(f"job {job_id} has no photo of the plate", key="no_snapshot")
        return found

    def has_snapshot(self, actor: Member, job_id: int) -> bool:
        self.jobs.get_job(actor, job_id)
        return bool(self.store.jobs_with_snapshots([job_id]))

    def plate_photo_job(self, actor: Member, printer_id: str) -> Optional[int]:
        """The job whose print is on the printer's plate, when it has a photo ``actor`` may see."""
        last = self.store.last_finished_job(printer_id)
        if last is None or (last.member_id != actor.id and actor.role is not Role.MANAGER):
            return None
        return last.id if self.store.jobs_with_snapshots([last.id]) else None

    def ask(self, actor: Member, printer_id: str) -> int:
        """A manager asks the printer for a photo of its plate now; the job it is filed under."""
        require_manager(actor)
        printer = self.store.get_printer(printer_id)
        job_id = printer.current_job_id
        if job_id is None:
            last = self.store.last_finished_job(printer_id)
            job_id = None if last is None else last.id
        if job_id is None:
            raise Conflict(
                f"printer {printer_id} has printed no job yet: a photo of the plate is kept with a job",
                key="no_plate_job",
            )
        if not self.ctx.tell_printer(printer_id, CommandType.SNAPSHOT, job_id):
            raise Unavailable("the fleet has no link to its printers now; ask again once it has")
        return job_id

    def remove_expired(self) -> int:
        """Forget the photos older than the retention; returns how many."""
        return self.store.remove_snapshots_before(self.ctx.clock() - self.retention_s)
