"""The fleet's end of the MQTT link: what nodes report goes to the services, jobs go out to printers.

One :class:`FleetLink` per fleet process. Messages arrive on the link's thread (``handle``); the
dispatch loop runs on the link's own thread (``tick``); both take one lock, so the store sees one
writer from here at a time. Nothing here opens a socket: the link is given (an ``MqttLink`` in
production, an in-memory fake in tests), and so is the clock.

How a node's state maps onto the fleet's printer state (:func:`printer_state_for`):

==================  ==========================================  ===========================
node says           printer holds no job                        printer holds a job
==================  ==========================================  ===========================
idle                idle (awaiting_bed_clear stays so)          unchanged while assigned/
                                                                printing/paused (an event
                                                                settles it), else
                                                                awaiting_bed_clear
printing, paused    printing, paused                            printing, paused
busy_local          printing (busy, but not with fleet work)    printing
awaiting_bed_clear  awaiting_bed_clear                          awaiting_bed_clear
error               error                                       error
disconnected        offline (the printer is not on its node)    offline
==================  ==========================================  ===========================

Status is the bulk of the traffic (every printer, up to once a second), so its path is kept cheap:
a status that says what the printer's last one said (state, job, capabilities) only refreshes the
live view, without the store (:meth:`FleetLink._unchanged`); "last seen" goes to the store for all
printers in one write per ``seen_write_interval_s``; the fleet subscribes to status at QoS 0.

A printer in maintenance keeps that state whatever its node says. Only ``availability: offline``
(the node's last will) makes a held job ``unknown``; ``disconnected`` does not, because the node is
still there and will report what happened.

Dispatches: each assignment the scheduler makes is sent as a ``dispatch`` command with a lease.
Without an ack it is re-sent with the same command id (up to ``resend_limit`` times, within the
lease); ``accepted`` waits for ``job_started``; ``pending`` (the owner is asked) waits until the
lease ends; ``declined``/``failed`` or an expired lease put the job back in the queue and keep that
printer from being offered that job again for ``decline_cooldown_s``. Dispatches live in memory; a
command's id is derived from its assignment, so after a restart each assigned job's command is sent
again, the same, and its printer's answer settles it (see ``_recover``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Callable, Optional, Protocol

from . import protocol as p
from .app import FleetApp
from .app.checks import check_material, check_nozzle, check_volume
from .app.dispatch import estimate
from .errors import FleetError, Invalid, NotFound
from .models import Job, LiveStatus, Printer
from .states import BUSY, JobState, PrinterState

log = logging.getLogger(__name__)

#: Namespace of dispatch command ids, which are derived from the assignment they carry out.
_DISPATCH_IDS = uuid.UUID("5b0f3c1e-8d7a-4e2b-9c61-2f4e8a9d7c30")

#: What a job event means for the job.
EVENT_TARGETS = {
    p.EventType.JOB_STARTED: JobState.PRINTING,
    p.EventType.JOB_PAUSED: JobState.PAUSED,
    p.EventType.JOB_RESUMED: JobState.PRINTING,
    p.EventType.JOB_DONE: JobState.DONE,
    p.EventType.JOB_FAILED: JobState.FAILED,
    p.EventType.JOB_CANCELLED: JobState.CANCELLED,
}
_DIRECT = {
    p.NodeState.PRINTING: PrinterState.PRINTING,
    p.NodeState.PAUSED: PrinterState.PAUSED,
    p.NodeState.BUSY_LOCAL: PrinterState.PRINTING,
    p.NodeState.AWAITING_BED_CLEAR: PrinterState.AWAITING_BED_CLEAR,
    p.NodeState.ERROR: PrinterState.ERROR,
    p.NodeState.DISCONNECTED: PrinterState.OFFLINE,
}


class Link(Protocol):
    """What FleetLink needs of an MQTT connection (``fleet.mqtt.MqttLink`` has it)."""

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None], qos: int = 1) -> None: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> object: ...


def printer_state_for(node: p.NodeState, printer: Printer) -> Optional[PrinterState]:
    """The printer state a node's status implies, or None to leave it as it is (see the module doc)."""
    if printer.state is PrinterState.MAINTENANCE:
        return None
    if node is p.NodeState.IDLE:
        if printer.current_job_id is None:
            return printer.state if printer.state is PrinterState.AWAITING_BED_CLEAR else PrinterState.IDLE
        return None if printer.state in BUSY else PrinterState.AWAITING_BED_CLEAR
    return _DIRECT[node]


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


@dataclass(frozen=True)
class Reported:
    """What a printer's last status handled in full said, and when the store was checked for it."""

    state: p.NodeState
    job_id: Optional[int]
    capabilities: p.Capabilities
    #: When the next status is checked in full anyway (spread out, so not all printers at once).
    recheck_at: float


class RateLimitedLog:
    """Logs each kind of problem at most once per ``interval`` seconds, counting what it held back."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, tuple[float, int]] = {}

    def warning(self, key: str, now: float, message: str, *args: object) -> None:
        last, held = self._last.get(key, (float("-inf"), 0))
        if now - last < self.interval:
            self._last[key] = (last, held + 1)
            return
        suffix = f" ({held} more like it not logged)" if held else ""
        log.warning(message + suffix, *args)
        self._last[key] = (now, 0)


class FleetLink:
    """Ingest of status, availability, events and acks; dispatch of jobs and people's commands."""

    def __init__(
        self,
        app: FleetApp,
        link: Link,
        *,
        base_url: str,
        ack_timeout_s: float = 10.0,
        lease_s: float = 30.0,
        resend_limit: int = 3,
        dispatch_interval_s: float = 5.0,
        offline_after_s: Optional[float] = None,
        start_timeout_s: float = 900.0,
        decline_cooldown_s: float = 300.0,
        seen_write_interval_s: float = 30.0,
        status_recheck_s: float = 30.0,
        tick_interval_s: Optional[float] = 1.0,
        log_interval_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.link = link
        self.base_url = base_url.rstrip("/")
        self.ack_timeout_s = ack_timeout_s
        self.lease_s = lease_s
        self.resend_limit = resend_limit
        self.dispatch_interval_s = dispatch_interval_s
        #: A printer not heard from for this long is offline; None trusts the broker's last will alone.
        self.offline_after_s = offline_after_s
        #: After ``accepted``, how long the printer has to report ``job_started`` (downloading included).
        self.start_timeout_s = start_timeout_s
        self.decline_cooldown_s = decline_cooldown_s
        self.seen_write_interval_s = seen_write_interval_s
        #: A status that says what the printer's last one said is checked against the store about this
        #: often (see :meth:`_unchanged`); anything this link learns about the printer checks it at once.
        self.status_recheck_s = status_recheck_s
        self._jitter = random.Random()  # noqa: S311 (spreads rechecks over time; not a secret)
        #: None: no thread; the owner calls :meth:`tick` (tests do).
        self.tick_interval_s = tick_interval_s
        self.clock = clock
        self._log = RateLimitedLog(log_interval_s)
        self._lock = threading.RLock()
        self._dispatches: dict[int, Dispatch] = {}
        #: When each job was last asked about again after its printer came back (see :meth:`_ask_again`).
        self._asked: dict[int, float] = {}
        self._next_question = float("-inf")
        self._cooldown: dict[tuple[int, str], float] = {}
        self._heard: dict[str, float] = {}
        self._seen_written: dict[str, float] = {}
        self._reported: dict[str, Reported] = {}
        self._next_seen_write = float("-inf")
        self._dispatch_wanted = True
        self._next_dispatch = float("-inf")
        self._started_at = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe, take over what a previous process left assigned, and start the dispatch loop."""
        now = self.clock()
        self._started_at = now
        self.app.hooks.on_printer_command(self.send_command)
        self.app.hooks.on_work_available(self.request_dispatch)
        self.app.hooks.on_credentials_changed(self.recheck_statuses)
        with self._lock:
            self._recover(now)
        # Status is taken at QoS 0: each one replaces the last and the broker keeps the latest
        # (retained), sent again on every subscribe. So the fleet owes the broker no acknowledgement
        # per status, statuses never wait behind the broker's in-flight window, and none are queued
        # for the fleet while it is away, where they would crowd out the events and acks it must get.
        for channel in (p.Channel.STATUS, p.Channel.AVAILABILITY, p.Channel.EVENTS, p.Channel.ACK):
            self.link.subscribe(p.wildcard(channel), self.handle, 0 if channel is p.Channel.STATUS else 1)
        if self.tick_interval_s is not None:
            self._thread = threading.Thread(target=self._run, name="fleet-dispatch", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        assert self.tick_interval_s is not None
        while not self._stop.is_set():
            # Cleared before the round, so a request made during it wakes the next one at once.
            self._wake.clear()
            try:
                self.tick()
            except Exception:
                log.exception("the dispatch loop hit an error; it carries on")
            self._wake.wait(self.tick_interval_s)

    def request_dispatch(self) -> None:
        """Run a dispatch pass at the next tick (a printer became free, a job was queued)."""
        self._dispatch_wanted = True
        self._wake.set()

    def recheck_statuses(self, printer_id: Optional[str] = None) -> None:
        """Check the next status of a printer (None: of every printer) against the store in full."""
        with self._lock:
            if printer_id is None:
                self._reported.clear()
            else:
                self._reported.pop(printer_id, None)

    def outstanding(self) -> dict[int, Dispatch]:
        """The dispatches waiting for an answer, by job id."""
        with self._lock:
            return dict(self._dispatches)

    # -- the loop -------------------------------------------------------------------------------

    def tick(self, now: Optional[float] = None) -> None:
        """One round: re-send or give up unanswered dispatches, mark silent printers, dispatch."""
        now = self.clock() if now is None else now
        with self._lock:
            for dispatch in list(self._dispatches.values()):
                self._follow_up(dispatch, now)
            if now >= self._next_question:
                self._next_question = now + self.ack_timeout_s
                self._ask_about_held_unknowns()
            self._mark_silent(now)
            due = self._dispatch_wanted or now >= self._next_dispatch
            if due:
                self._dispatch_wanted = False
                self._next_dispatch = now + self.dispatch_interval_s
                self._cooldown = {pair: until for pair, until in self._cooldown.items() if until > now}
                avoid = set(self._cooldown)
            seen = self._seen_since_written(now)
        if seen:
            self.app.reports.touch(seen)
            self.app.metrics.count("status.seen_writes")
        if due:
            self._dispatch(now, avoid)

    def _seen_since_written(self, now: float) -> dict[str, float]:
        """Every ``seen_write_interval_s``: when each printer heard from since was last heard.

        Written in one transaction for all printers, instead of one per status.
        """
        if now < self._next_seen_write:
            return {}
        self._next_seen_write = now + self.seen_write_interval_s
        seen = {
            printer_id: at
            for printer_id, at in self._heard.items()
            if at > self._seen_written.get(printer_id, float("-inf"))
        }
        self._seen_written.update(seen)
        return seen

    def _dispatch(self, now: float, avoid: set[tuple[int, str]]) -> None:
        # The pass runs without the lock: planning reads every printer and job, and status from
        # the printers must not wait for it. Claims are safe on their own (the store's
        # transactions); the lock is taken again to record and send each command.
        started = time.perf_counter()
        assigned = self.app.dispatcher.dispatch_pass(avoid=avoid)
        self.app.metrics.observe("dispatch.pass_s", time.perf_counter() - started)
        with self._lock:
            for job_id, printer_id in assigned:
                self._send_dispatch(job_id, printer_id, now)

    def _send_dispatch(self, job_id: int, printer_id: str, now: float) -> None:
        job = self.app.reports.job(job_id)
        if job.state is not JobState.ASSIGNED or job.printer_id != printer_id:
            return  # cancelled or settled between the pass and now (it ran without the lock)
        command = self._dispatch_command(job, printer_id)
        self._dispatches[job_id] = Dispatch(job_id, printer_id, command, command.expires_at, now)
        self._reported.pop(printer_id, None)
        self._publish(printer_id, command)
        self.app.metrics.count("dispatch.sent")
        log.info("job %d dispatched to printer %s (command %s)", job_id, printer_id, command.id)

    def _dispatch_command(self, job: Job, printer_id: str, assigned_at: Optional[float] = None) -> p.Command:
        """The dispatch command of a job's assignment, the same whenever it is built.

        Its id and times come from the assignment as stored (the job, the printer, when it was
        assigned: by default the job's last change, which an assigned job's assignment is), so a
        fleet that restarts sends the very command it may have sent before: a node that took it
        answers again and acts on nothing twice.
        """
        assigned_at = job.updated_at if assigned_at is None else assigned_at
        ref = p.JobRef(
            job_id=job.id,
            url=f"{self.base_url}/api/v1/printers/{printer_id}/jobs/{job.id}/file",
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

    def _follow_up(self, dispatch: Dispatch, now: float) -> None:
        job = self.app.reports.job(dispatch.job_id)
        if job.state is JobState.UNKNOWN and job.printer_id == dispatch.printer_id:
            self._follow_up_question(dispatch, now)
            return
        if job.state is not JobState.ASSIGNED or job.printer_id != dispatch.printer_id:
            self._dispatches.pop(dispatch.job_id, None)  # started, cancelled or settled meanwhile
            return
        if dispatch.answer in (p.AckStatus.ACCEPTED, p.AckStatus.DONE):
            assert dispatch.answered_at is not None
            if now - dispatch.answered_at >= self.start_timeout_s:
                self._dispatches.pop(dispatch.job_id, None)
                self._unknown(
                    job, f"printer {dispatch.printer_id} accepted the job but never reported starting"
                )
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
            self._dispatches[dispatch.job_id] = replace(dispatch, sent_at=now, sends=dispatch.sends + 1)
            self._publish(dispatch.printer_id, dispatch.command)
            self.app.metrics.count("dispatch.resent")
            log.info(
                "job %d: no ack from %s; command %s sent again",
                job.id,
                dispatch.printer_id,
                dispatch.command.id,
            )

    def _follow_up_question(self, dispatch: Dispatch, now: float) -> None:
        """A job asked about again (see :meth:`_ask_again`): an acceptance leaves it to the printer's
        events; without an answer it is asked again at a later status."""
        if dispatch.answer in (p.AckStatus.ACCEPTED, p.AckStatus.DONE) or now >= dispatch.expires_at:
            self._dispatches.pop(dispatch.job_id, None)

    def _unknown(self, job: Job, reason: str) -> None:
        if job.printer_id is not None:
            self._reported.pop(job.printer_id, None)
        self.app.reports.job_unreachable(job.id, "system", reason)

    def _give_back(self, dispatch: Dispatch, reason: str, now: float) -> None:
        self._dispatches.pop(dispatch.job_id, None)
        self._reported.pop(dispatch.printer_id, None)
        self._cooldown[(dispatch.job_id, dispatch.printer_id)] = now + self.decline_cooldown_s
        if self.app.reports.requeue_assignment(dispatch.job_id, dispatch.printer_id, reason):
            log.info("job %d back in the queue: %s", dispatch.job_id, reason)
        self._dispatch_wanted = True

    def _mark_silent(self, now: float) -> None:
        if self.offline_after_s is None:
            return
        for printer in self.app.printers.list_printers():
            if printer.state in (PrinterState.OFFLINE, PrinterState.MAINTENANCE):
                continue
            heard = self._heard.get(printer.id, self._started_at)
            if now - heard >= self.offline_after_s:
                log.warning("printer %s silent for %.0f s: offline", printer.id, now - heard)
                self._reported.pop(printer.id, None)
                self.app.reports.printer_offline(printer.id, "printer silent, outcome unknown")
                self.app.reports.clear_live(printer.id)

    def _recover(self, now: float) -> None:
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
            command = self._dispatch_command(job, job.printer_id)
            self._dispatches[job.id] = Dispatch(
                job.id, job.printer_id, command, expires_at, now, recovered=True
            )
            self._publish(job.printer_id, command)

    # -- commands people give -------------------------------------------------------------------

    def send_command(self, printer_id: str, command_type: p.CommandType, job_id: Optional[int]) -> None:
        """Send a cancel, pause, resume or bed-cleared command (the service's command hook)."""
        now = self.clock()
        command = p.Command(uuid.uuid4().hex, command_type, now, now + self.lease_s, job_id=job_id)
        with self._lock:
            if command_type is p.CommandType.CANCEL and job_id is not None:
                self._dispatches.pop(job_id, None)
            self._reported.pop(printer_id, None)
            self._publish(printer_id, command)
        log.info("%s sent to printer %s (job %s)", command_type.value, printer_id, job_id)

    def _publish(self, printer_id: str, command: p.Command) -> None:
        self.link.publish(p.topic(printer_id, p.Channel.CMD), p.encode_command(command), qos=1, retain=False)

    # -- what nodes report ----------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> None:
        """One message from the broker; anything wrong with it is logged (rate-limited) and dropped."""
        now = self.clock()
        try:
            printer_id, channel = p.parse_topic(topic)
        except p.ProtocolError as exc:
            self._log.warning("topic", now, "dropped a message: %s", exc.message)
            return
        metrics = self.app.metrics
        try:
            with self._lock:
                self._handle(printer_id, channel, payload, now)
            metrics.count(f"mqtt.{channel.value}")
            if channel is p.Channel.STATUS:
                metrics.observe("status.handled_s", self.clock() - now)
            return
        except p.ProtocolError as exc:
            self._log.warning(
                f"bad:{printer_id}", now, "dropped %s from %s: %s", channel.value, printer_id, exc.message
            )
        except NotFound:
            self._log.warning(
                f"unknown:{printer_id}", now, "dropped %s from unknown printer %s", channel.value, printer_id
            )
        except FleetError as exc:
            self._log.warning(
                f"refused:{printer_id}", now, "refused %s from %s: %s", channel.value, printer_id, exc.message
            )
        except Exception:
            log.exception("failed to handle %s from printer %s", channel.value, printer_id)
        metrics.count("mqtt.dropped")

    def _handle(self, printer_id: str, channel: p.Channel, payload: bytes, now: float) -> None:
        status: Optional[p.Status] = None
        if channel is p.Channel.STATUS:
            reported = self._reported.get(printer_id)
            if reported is not None:
                status = p.decode_status(payload)
                if self._unchanged(printer_id, reported, status, now):
                    self._heard[printer_id] = now
                    self._set_live(printer_id, status, now)
                    self.app.metrics.observe("status.lag_s", self.clock() - status.ts)
                    return
        else:
            # Whatever else a node says (availability, events, acks) may change what its status means.
            self._reported.pop(printer_id, None)
        printer, revoked = self.app.reports.printer_and_revoked(printer_id)
        if revoked:
            raise Invalid(f"printer {printer_id}'s credentials are revoked")
        if channel is p.Channel.STATUS:
            self._on_status(printer, status or p.decode_status(payload), now)
        elif channel is p.Channel.AVAILABILITY:
            self._on_availability(printer, p.decode_availability(payload), now)
        elif channel is p.Channel.EVENTS:
            self._heard[printer_id] = now
            self._on_event(printer, p.decode_event(payload))
        elif channel is p.Channel.ACK:
            self._heard[printer_id] = now
            self._on_ack(printer, p.decode_ack(payload), now)

    def _on_availability(self, printer: Printer, online: bool, now: float) -> None:
        if online:
            self._heard[printer.id] = now  # what the node reports next settles its state
            return
        log.info("printer %s went offline", printer.id)
        self._heard.pop(printer.id, None)
        self.app.reports.clear_live(printer.id)
        for job_id, dispatch in list(self._dispatches.items()):
            if dispatch.printer_id == printer.id:
                del self._dispatches[job_id]
        self.app.reports.printer_offline(printer.id)

    def _unchanged(self, printer_id: str, reported: Reported, status: p.Status, now: float) -> bool:
        """Whether a status may skip the store: it says what the printer's last one said, which was
        handled in full less than about ``status_recheck_s`` ago.

        Such a status changes only the live view (temperatures, progress). What the store holds
        about the printer can have changed meanwhile only through this link, which then forgets
        what the printer reported (so its next status is handled in full), through the service's
        hooks (credentials), or through another process (a manager's edit, a second fleet on the
        same PostgreSQL), which the recheck catches up with.
        """
        return (
            status.state is reported.state
            and status.job_id == reported.job_id
            and status.capabilities == reported.capabilities
            and now < reported.recheck_at
        )

    def _set_live(self, printer_id: str, status: p.Status, now: float) -> None:
        self.app.reports.set_live(
            printer_id,
            LiveStatus(
                node_state=status.state.value,
                temperatures={name: (t.actual, t.target) for name, t in status.temperatures.items()},
                progress=status.progress,
                eta=status.eta,
                job_id=status.job_id,
                last_seen=now,
                message=status.message,
            ),
        )

    def _on_status(self, printer: Printer, status: p.Status, now: float) -> None:
        self._heard[printer.id] = now
        self._set_live(printer.id, status, now)
        self.app.metrics.count("status.store_checks")
        printer = self._settle_held_job(printer, status)
        changes = self._capability_changes(printer, status.capabilities, now)
        target = printer_state_for(status.state, printer)
        if target is not None and target is not printer.state:
            changes["state"] = target
        if changes:
            changes["last_seen"] = now
            self._seen_written[printer.id] = now
            self.app.reports.record_status(printer.id, changes)
            self.app.metrics.count("status.printer_writes")
        recheck_at = now + self.status_recheck_s * (0.5 + 0.5 * self._jitter.random())
        self._reported[printer.id] = Reported(status.state, status.job_id, status.capabilities, recheck_at)
        # From the node's clock to the fleet's: meaningful when both keep time (NTP), as they do here.
        self.app.metrics.observe("status.lag_s", self.clock() - status.ts)

    def _settle_held_job(self, printer: Printer, status: p.Status) -> Printer:
        """What the node prints settles a job the fleet lost track of (unknown) or has not seen start."""
        if printer.current_job_id is None:
            return printer
        job = self.app.reports.job(printer.current_job_id)
        running = status.state in (p.NodeState.PRINTING, p.NodeState.PAUSED) and status.job_id == job.id
        if running and job.state in (JobState.ASSIGNED, JobState.UNKNOWN):
            target = JobState.PAUSED if status.state is p.NodeState.PAUSED else JobState.PRINTING
            if job.state is JobState.ASSIGNED:
                target = JobState.PRINTING  # a job is started before it can be paused
            self.app.reports.printer_job_event(
                printer.id, job.id, target, f"printer {printer.id} reports it {target.value}"
            )
            self._dispatches.pop(job.id, None)
        elif job.state is JobState.UNKNOWN and not running:
            if job.started_at is None:
                # The printer keeps the job until it says whether it took it.
                self._ask_again(job, printer.id)
                return printer
            # The node is back and not running it: the outcome stays for its events or a manager to
            # settle, and someone has to look at the plate before the printer takes more work.
            self.app.reports.back_without_job(printer.id, job.id)
        return self.app.printers.get_printer(printer.id)

    def _ask_about_held_unknowns(self) -> None:
        """Ask again about each unknown, never-started job a printer heard from since the start holds.

        A printer that is back but idle sends no status to ask at; its silence must not leave the
        job unknown when one question settles it.
        """
        for job in self.app.reports.jobs_in({JobState.UNKNOWN}):
            printer_id = job.printer_id
            if job.started_at is not None or printer_id is None or printer_id not in self._heard:
                continue
            if self.app.printers.get_printer(printer_id).current_job_id == job.id:
                self._ask_again(job, printer_id)

    def _ask_again(self, job: Job, printer_id: str) -> None:
        """Send a job that went unknown before it started its dispatch command again, the same.

        The printer that is back answers from its journal: ``accepted`` if it took the job (its
        events then settle it), or ``declined`` if the command never reached it (now expired), and
        the job goes back to the queue. A printer that does not answer (it may not be connected
        yet: its status can be an old retained one) is asked again at a later status, at most once
        per ``ack_timeout_s``.
        """
        now = self.clock()
        if job.id in self._dispatches or now - self._asked.get(job.id, float("-inf")) < self.ack_timeout_s:
            return
        self._asked[job.id] = now
        assigned_at = self.app.reports.assigned_at(job.id)
        if assigned_at is None:
            return
        command = self._dispatch_command(job, printer_id, assigned_at)
        dispatch = Dispatch(
            job.id, printer_id, command, now + self.ack_timeout_s, now, self.resend_limit + 1, recovered=True
        )
        self._dispatches[job.id] = dispatch
        self._publish(printer_id, command)
        log.info("job %d: printer %s is back; asked again whether it took the job", job.id, printer_id)

    def _capability_changes(self, printer: Printer, caps: p.Capabilities, now: float) -> dict[str, object]:
        changes: dict[str, object] = {}
        try:
            if caps.material is not None:
                material = check_material(caps.material, "capabilities.material")
                if material != printer.material:
                    changes["material"] = material
            if caps.nozzle_diameter is not None and caps.nozzle_diameter != printer.nozzle_diameter:
                changes["nozzle_diameter"] = check_nozzle(caps.nozzle_diameter)
            if caps.volume is not None and caps.volume != printer.volume:
                changes["volume"] = check_volume(caps.volume.to_dict())
        except Invalid as exc:
            self._log.warning(
                f"caps:{printer.id}", now, "ignored capabilities of %s: %s", printer.id, exc.message
            )
            return {}
        return changes

    def _on_event(self, printer: Printer, event: p.Event) -> None:
        if event.type is p.EventType.BED_CLEARED:
            self.app.printers.node_cleared_bed(printer.id)  # the printers service asks for a dispatch
            return
        if event.type is p.EventType.ERROR:
            log.warning("printer %s reports an error: %s", printer.id, event.message)
            return
        if event.job_id is None:
            raise p.ProtocolError(f"a {event.type.value} event needs its job_id")
        target = EVENT_TARGETS[event.type]
        reason = event.message.strip()[:200] or f"printer {printer.id}: {event.type.value.replace('_', ' ')}"
        if self.app.reports.printer_job_event(printer.id, event.job_id, target, reason):
            log.info("job %d: %s on printer %s", event.job_id, event.type.value, printer.id)
        if target is not JobState.PAUSED:
            self._dispatches.pop(event.job_id, None)

    def _on_ack(self, printer: Printer, ack: p.Ack, now: float) -> None:
        dispatch = next(
            (d for d in self._dispatches.values() if d.command and d.command.id == ack.command_id), None
        )
        if dispatch is None and ack.job_id is not None:
            adopted = self._dispatches.get(ack.job_id)
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
        elif dispatch.answer is not ack.status and dispatch.answer not in (
            p.AckStatus.ACCEPTED,
            p.AckStatus.DONE,
        ):
            expires_at = dispatch.expires_at
            if ack.status is p.AckStatus.PENDING:
                # The owner is asked: hold the job as long as the node says they have (it answers
                # ``declined`` itself at that deadline), and an ack's trip more.
                within = self.lease_s if ack.answer_within_s is None else ack.answer_within_s
                expires_at = max(expires_at, now + within + self.ack_timeout_s)
            self._dispatches[dispatch.job_id] = replace(
                dispatch, answer=ack.status, answered_at=now, expires_at=expires_at
            )
