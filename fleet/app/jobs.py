"""What people do to jobs: look at them, cancel, pause, resume, approve, reject, re-prioritise."""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from ..errors import Conflict, Forbidden, Unavailable
from ..models import Job, JobEvent, JobFilter, JobPage, LiveStatus, Member, Page, Printer, Role
from ..protocol import CommandType
from ..spools import printed_so_far
from ..states import ACTIVE, CANCELLABLE, PENDING, JobState, PrinterState, freed_printer_state
from .base import Context, actor_of, require_manager
from .pricing import Pricing

log = logging.getLogger(__name__)

#: Jobs whose running print a member may pause or resume.
PAUSABLE = frozenset({JobState.PRINTING})
RESUMABLE = frozenset({JobState.PAUSED})


class Jobs:
    """A member acts on their own jobs, a manager on anyone's; the printer is told before the store."""

    def __init__(
        self,
        ctx: Context,
        pricing: Pricing,
        *,
        live: Callable[[str], Optional[LiveStatus]] = lambda printer_id: None,
    ) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.pricing = pricing
        #: What a printer last reported (its progress tells how much of a cancelled job was printed).
        self.live = live

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
            require_manager(actor)
        return self.store.list_jobs(states=states, member_id=member_id)

    def jobs_page(
        self, actor: Member, where: JobFilter, *, after: Optional[int] = None, limit: int = 100
    ) -> JobPage:
        """A page of the jobs ``where`` picks: a member may list their own, a manager anyone's."""
        if where.member_id != actor.id:
            require_manager(actor)
        return self.store.job_page(where, after=after, limit=limit)

    def history_page(
        self, actor: Member, job_id: int, *, after: Optional[int] = None, limit: int = 100
    ) -> Page[JobEvent, int]:
        """A page of a job's history, oldest first (whoever may see the job)."""
        self.get_job(actor, job_id)
        return self.store.event_page(job_id, after=after, limit=limit)

    def blob_path(self, actor: Member, job_id: int) -> str:
        job = self.get_job(actor, job_id)
        return str(self.ctx.blobs.path(job.file_sha256))

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
            wanted = PrinterState.IDLE if job.state is JobState.ASSIGNED else PrinterState.AWAITING_BED_CLEAR
            after = freed_printer_state(printer.state, wanted)
            freed.append(after)
            return {"state": after, "current_job_id": None}

        if held:
            # Told first, so the cancel reaches the node before any dispatch to the printer it frees.
            assert job.printer_id is not None
            if not self.ctx.tell_printer(job.printer_id, CommandType.CANCEL, job.id):
                log.warning(
                    "job %d was cancelled, but no link to printer %s is running", job.id, job.printer_id
                )
        now = self.ctx.clock()
        live = None if job.printer_id is None else self.live(job.printer_id)
        share = printed_so_far(job, live, now) if held else None
        cancelled = self.store.transition_job(
            job_id,
            JobState.CANCELLED,
            actor=actor_of(actor),
            reason=why,
            now=now,
            printer_changes=release,
            then=self.pricing.charge_step(share),
            printed_share=share,
        )
        self.ctx.job_changed(cancelled)
        if freed == [PrinterState.IDLE]:
            self.ctx.work_available()
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
        if not self.ctx.tell_printer(job.printer_id, command, job.id):
            raise Unavailable(
                "the fleet is not linked to its printers (no MQTT link is running); try again later",
                key="no_printer_link",
            )
        return job

    def approve_job(self, actor: Member, job_id: int) -> Job:
        approved = self._decide(actor, job_id, JobState.QUEUED, "approved by a manager")
        self.ctx.work_available()
        return approved

    def reject_job(self, actor: Member, job_id: int, reason: str = "") -> Job:
        why = "rejected by a manager" + (f": {reason.strip()[:200]}" if reason.strip() else "")
        return self._decide(actor, job_id, JobState.CANCELLED, why)

    def _decide(self, actor: Member, job_id: int, to: JobState, why: str) -> Job:
        """A manager's answer to a job awaiting approval: it moves ``to`` that state, for ``why``."""
        require_manager(actor)
        decided = self.store.transition_job(
            job_id,
            to,
            actor=actor_of(actor),
            reason=why,
            now=self.ctx.clock(),
            expect={JobState.AWAITING_APPROVAL},
        )
        self.ctx.job_changed(decided)
        return decided

    def set_priority(self, actor: Member, job_id: int, priority: int) -> Job:
        """A waiting job's place among others: higher goes first (the API keeps it within -100 to 100)."""
        require_manager(actor)
        job = self.store.get_job(job_id)
        if job.state not in PENDING:
            raise Conflict(f"job {job_id} is {job.state.value}: only a waiting job's priority can change")
        changed = self.store.set_priority(job_id, priority, actor=actor_of(actor), now=self.ctx.clock())
        self.ctx.job_changed(changed)
        return changed
