"""Dispatch commands on their way to printers, until each printer answers (the fleet link's half that sends).

Each assignment the scheduler makes is sent as a ``dispatch`` command with a lease. Without an ack it
is re-sent with the same command id (up to ``resend_limit`` times, within the lease); ``accepted``
waits for ``job_started``; ``pending`` (the owner is asked) waits until the lease ends;
``declined``/``failed`` or an expired lease put the job back in the queue and keep that printer from
being offered that job again for ``decline_cooldown_s``. Dispatches live in memory; a command's id
is derived from its assignment, so after a restart each assigned job's command is sent again, the
same, and its printer's answer settles it (see :meth:`Dispatches.recover`).

Not thread-safe on its own: :class:`fleet.fleetlink.FleetLink` calls it under its lock.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Callable, Optional

from . import protocol as p
from .app import FleetApp
from .app.dispatch import estimate
from .errors import Invalid
from .http_protocol import job_file_path
from .models import Job, Printer
from .states import JobState

log = logging.getLogger(__name__)

#: Namespace of dispatch command ids, which are derived from the assignment they carry out.
_DISPATCH_IDS = uuid.UUID("5b0f3c1e-8d7a-4e2b-9c61-2f4e8a9d7c30")
_TAKEN = (p.AckStatus.ACCEPTED, p.AckStatus.DONE)


@dataclass(frozen=True)
class Dispatch:
    """A dispatch command waiting for its printer's answer."""

    job_id: int
    printer_id: str
    #: None: there is no command to send again.
    command: Optional[p.Command]
    expires_at: float
    sent_at: float
    sends: int = 1
    answer: Optional[p.AckStatus] = None
    answered_at: Optional[float] = None
    #: Taken over from a previous process, which may have sent the command under another id.
    recovered: bool = False


class Dispatches:
    """The dispatches waiting for an answer, by job id, and the pairs a printer recently refused."""

    def __init__(
        self,
        app: FleetApp,
        publish: Callable[[str, p.Command], None],
        *,
        base_url: str,
        ack_timeout_s: float,
        lease_s: float,
        resend_limit: int,
        start_timeout_s: float,
        decline_cooldown_s: float,
        clock: Callable[[], float],
        printer_news: Callable[[str], None],
        want_dispatch: Callable[[], None],
    ) -> None:
        self.app = app
        self._publish = publish
        self.base_url = base_url
        self.ack_timeout_s = ack_timeout_s
        self.lease_s = lease_s
        self.resend_limit = resend_limit
        #: After ``accepted``, how long the printer has to report ``job_started`` (downloading included).
        self.start_timeout_s = start_timeout_s
        self.decline_cooldown_s = decline_cooldown_s
        self.clock = clock
        #: Told a printer's state may have moved (its next status is then checked in full).
        self._printer_news = printer_news
        self._want_dispatch = want_dispatch
        self.waiting: dict[int, Dispatch] = {}
        #: When each job was last asked about again after its printer came back (see :meth:`ask_again`).
        self._asked: dict[int, float] = {}
        self._cooldown: dict[tuple[int, str], float] = {}

    def forget(self, job_id: int) -> None:
        """The job started, ended or was cancelled: nothing more to wait for."""
        self.waiting.pop(job_id, None)

    def started(self, job_id: int, now: float) -> None:
        """The job's printer started it: nothing more to wait for, and the wait since its assignment
        is counted (for dispatches this process sent: a recovered one's wait spans the restart)."""
        dispatch = self.waiting.pop(job_id, None)
        if dispatch is not None and dispatch.command is not None and not dispatch.recovered:
            self.app.metrics.observe("dispatch.latency_s", now - dispatch.command.issued_at, step="started")

    def forget_printer(self, printer_id: str) -> None:
        for job_id, dispatch in list(self.waiting.items()):
            if dispatch.printer_id == printer_id:
                del self.waiting[job_id]

    def cooling(self, now: float) -> set[tuple[int, str]]:
        """The (job, printer) pairs not to make now: that printer refused that job a moment ago."""
        self._cooldown = {pair: until for pair, until in self._cooldown.items() if until > now}
        return set(self._cooldown)

    def send(self, job_id: int, printer_id: str, now: float) -> None:
        """Send the dispatch command of an assignment the scheduler just made."""
        job = self.app.reports.job(job_id)
        if job.state is not JobState.ASSIGNED or job.printer_id != printer_id:
            return  # cancelled or settled between the pass and now (it ran without the lock)
        command = self.command_for(job, printer_id)
        self.waiting[job_id] = Dispatch(job_id, printer_id, command, command.expires_at, now)
        self._printer_news(printer_id)
        self._publish(printer_id, command)
        self.app.metrics.count("dispatch.sent")
        log.info("job %d dispatched to printer %s (command %s)", job_id, printer_id, command.id)

    def command_for(self, job: Job, printer_id: str, assigned_at: Optional[float] = None) -> p.Command:
        """The dispatch command of a job's assignment, the same whenever it is built.

        Its id and times come from the assignment as stored (the job, the printer, when it was
        assigned: by default the job's last change, which an assigned job's assignment is), so a
        fleet that restarts sends the very command it may have sent before: a node that took it
        answers again and acts on nothing twice.
        """
        assigned_at = job.updated_at if assigned_at is None else assigned_at
        ref = p.JobRef(
            job_id=job.id,
            url=self.base_url + job_file_path(printer_id, job.id),
            sha256=job.file_sha256,
            size=job.size_bytes,
            filename=job.filename,
            estimated_s=estimate(job) or None,
        )
        return p.Command(
            id=uuid.uuid5(_DISPATCH_IDS, f"{job.id}/{printer_id}/{assigned_at!r}").hex,
            type=p.CommandType.DISPATCH,
            issued_at=assigned_at,
            expires_at=assigned_at + self.lease_s,
            job_id=job.id,
            job=ref,
        )

    def follow_up(self, now: float) -> None:
        """Re-send what went unanswered, and give up on what ran out of time."""
        for dispatch in list(self.waiting.values()):
            self._follow_up(dispatch, now)

    def _follow_up(self, dispatch: Dispatch, now: float) -> None:
        job = self.app.reports.job(dispatch.job_id)
        if job.state is JobState.UNKNOWN and job.printer_id == dispatch.printer_id:
            # A job asked about again (see ask_again): an acceptance leaves it to the printer's
            # events; without an answer it is asked again at a later status.
            if dispatch.answer in _TAKEN or now >= dispatch.expires_at:
                self.waiting.pop(dispatch.job_id, None)
            return
        if job.state is not JobState.ASSIGNED or job.printer_id != dispatch.printer_id:
            self.waiting.pop(dispatch.job_id, None)  # started, cancelled or settled meanwhile
            return
        if dispatch.answer in _TAKEN:
            assert dispatch.answered_at is not None
            if now - dispatch.answered_at >= self.start_timeout_s:
                self.waiting.pop(dispatch.job_id, None)
                self._printer_news(dispatch.printer_id)
                reason = f"printer {dispatch.printer_id} accepted the job but never reported starting"
                self.app.reports.job_unreachable(job.id, "system", reason)
            return
        if now >= dispatch.expires_at:
            if dispatch.answer is p.AckStatus.PENDING:
                why = "asked its owner, who did not answer in time"
            else:
                why = f"did not answer within {self.lease_s:g} s"
            self._give_back(dispatch, f"printer {dispatch.printer_id} {why}", now)
            return
        if (
            dispatch.answer is None
            and dispatch.command is not None
            and now - dispatch.sent_at >= self.ack_timeout_s
            and dispatch.sends <= self.resend_limit
        ):
            self.waiting[dispatch.job_id] = replace(dispatch, sent_at=now, sends=dispatch.sends + 1)
            self._publish(dispatch.printer_id, dispatch.command)
            self.app.metrics.count("dispatch.resent")
            log.info(
                "job %d: no ack from %s; command %s sent again",
                job.id,
                dispatch.printer_id,
                dispatch.command.id,
            )

    def _give_back(self, dispatch: Dispatch, reason: str, now: float) -> None:
        self.waiting.pop(dispatch.job_id, None)
        self._printer_news(dispatch.printer_id)
        self._cooldown[(dispatch.job_id, dispatch.printer_id)] = now + self.decline_cooldown_s
        if self.app.reports.requeue_assignment(dispatch.job_id, dispatch.printer_id, reason):
            log.info("job %d back in the queue: %s", dispatch.job_id, reason)
        self._want_dispatch()

    def recover(self, now: float) -> None:
        """Take over the assignments a previous process left: each one's command is sent again, as it was.

        A node that took it answers again (and what it reported meanwhile arrives through the fleet's
        lasting broker session); one that never got it takes it, or declines it once its lease is over.
        Either way the printer answers before the job can go back to the queue, so a job a printer took
        is never given to another. A printer that does not answer at all has ``ack_timeout_s``, or
        the rest of the lease, whichever is longer.
        """
        for job in self.app.reports.jobs_in({JobState.ASSIGNED}):
            if job.printer_id is None:
                continue
            expires_at = max(job.updated_at + self.lease_s, now + self.ack_timeout_s)
            command = self.command_for(job, job.printer_id)
            self.waiting[job.id] = Dispatch(job.id, job.printer_id, command, expires_at, now, recovered=True)
            self._publish(job.printer_id, command)

    def ask_about_held_unknowns(self, heard: Collection[str]) -> None:
        """Ask again about each unknown, never-started job a printer heard from since the start holds.

        A printer that is back but idle sends no status to ask at; its silence must not leave the
        job unknown when one question settles it.
        """
        for job in self.app.reports.jobs_in({JobState.UNKNOWN}):
            printer_id = job.printer_id
            if job.started_at is not None or printer_id is None or printer_id not in heard:
                continue
            if self.app.printers.get_printer(printer_id).current_job_id == job.id:
                self.ask_again(job, printer_id)

    def ask_again(self, job: Job, printer_id: str) -> None:
        """Send a job that went unknown before it started its dispatch command again, the same.

        The printer that is back answers from its journal: ``accepted`` if it took the job (its
        events then settle it), or ``declined`` if the command never reached it (now expired), and
        the job goes back to the queue. A printer that does not answer (it may not be connected
        yet: its status can be an old retained one) is asked again at a later status, at most once
        per ``ack_timeout_s``.
        """
        now = self.clock()
        if job.id in self.waiting or now - self._asked.get(job.id, float("-inf")) < self.ack_timeout_s:
            return
        self._asked[job.id] = now
        assigned_at = self.app.reports.assigned_at(job.id)
        if assigned_at is None:
            return
        command = self.command_for(job, printer_id, assigned_at)
        self.waiting[job.id] = Dispatch(
            job.id, printer_id, command, now + self.ack_timeout_s, now, self.resend_limit + 1, recovered=True
        )
        self._publish(printer_id, command)
        log.info("job %d: printer %s is back; asked again whether it took the job", job.id, printer_id)

    def on_ack(self, printer: Printer, ack: p.Ack, now: float) -> None:
        """A printer's answer to a command: a refusal gives the job back, anything else is noted."""
        dispatch = next(
            (d for d in self.waiting.values() if d.command and d.command.id == ack.command_id), None
        )
        if dispatch is None and ack.job_id is not None:
            adopted = self.waiting.get(ack.job_id)
            dispatch = adopted if adopted is not None and adopted.recovered else None
        if dispatch is None:
            log.info(
                "ack %s (%s) from %s: %s", ack.command_id, ack.status.value, printer.id, ack.reason or "-"
            )
            return
        if dispatch.printer_id != printer.id:
            raise Invalid(
                f"command {ack.command_id} was sent to printer {dispatch.printer_id}, not {printer.id}"
            )
        if ack.status in (p.AckStatus.DECLINED, p.AckStatus.FAILED):
            word = "declined" if ack.status is p.AckStatus.DECLINED else "could not take"
            reason = f"printer {printer.id} {word} the job" + (f": {ack.reason[:200]}" if ack.reason else "")
            self._give_back(dispatch, reason, now)
        elif dispatch.answer is not ack.status and dispatch.answer not in _TAKEN:
            if ack.status in _TAKEN and dispatch.command is not None and not dispatch.recovered:
                latency = now - dispatch.command.issued_at
                self.app.metrics.observe("dispatch.latency_s", latency, step="accepted")
            expires_at = dispatch.expires_at
            if ack.status is p.AckStatus.PENDING:
                # The owner is asked: hold the job as long as the node says they have (it answers
                # ``declined`` itself at that deadline), and an ack's trip more.
                within = self.lease_s if ack.answer_within_s is None else ack.answer_within_s
                expires_at = max(expires_at, now + within + self.ack_timeout_s)
            self.waiting[dispatch.job_id] = replace(
                dispatch, answer=ack.status, answered_at=now, expires_at=expires_at
            )
