"""The fleet's end of the MQTT link: what nodes report goes to the services, jobs go out to printers.

One :class:`FleetLink` per fleet process. Messages arrive on the link's thread (``handle``); the
dispatch loop runs on the link's own thread (``tick``); both take one lock, so the store sees one
writer from here at a time. Nothing here opens a socket: the link is given (an ``MqttLink`` in
production, an in-memory fake in tests), and so is the clock. With several fleet processes on one
database every link ingests, but only the one whose process holds the ``dispatch`` duty
(:mod:`fleet.duties`) runs the loop's once-only part: follow-ups, the scheduler's pass, silent
printers.

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

With ``queued`` (as ``serve`` runs it) messages are not handled on the MQTT network thread: they
wait in a :class:`~fleet.ingest.CoalescingQueue` for the link's ingest thread, where a printer's
newer status replaces its older one still waiting, so under overload the status lag stays about
one publishing interval while events and acks are all handled, in order. The one exception is the
bulk of the traffic: a status that says what its printer's last one said, when nothing of that
printer waits or is being handled, is taken on the network thread at once (it changes only the live
view), so it never waits behind another printer's store reads. With ``share_group`` the
link subscribes through MQTT 5 shared subscriptions (``$share/<group>/...``), so fleet processes
on one broker split statuses, availability and events between them: each reaches one of them, and
what it changes goes through the store, where a repeat changes nothing. Acks alone reach every
process, as only the one that sent a command follows it up.

A printer in maintenance keeps that state whatever its node says. Only ``availability: offline``
(the node's last will) makes a held job ``unknown``; ``disconnected`` does not, because the node is
still there and will report what happened.

Dispatch commands, their leases, re-sends and answers are followed by :mod:`fleet.dispatches`.

A little over 500 lines, most of it the table above and the checks it drives: the table is worth
reading beside the code that applies it, and sending commands already lives in ``dispatches.py``.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

from . import protocol as p
from .app import FleetApp
from .dispatches import Dispatch, Dispatches
from .errors import FleetError, Invalid, NotFound
from .ingest import CoalescingQueue
from .lending import Lending
from .models import LiveStatus, Printer
from .states import BUSY, JobState, PrinterState

log = logging.getLogger(__name__)

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


#: The longest the dispatch loop rests after a scheduling pass (it rests as long as the pass took).
MAX_PASS_REST_S = 2.0


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
class Reported:
    """What a printer's last status handled in full said, and when the store was checked for it."""

    state: p.NodeState
    job_id: Optional[int]
    capabilities: p.Capabilities
    lending: Optional[Lending]
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
        status_recheck_s: Optional[float] = 30.0,
        tick_interval_s: Optional[float] = 1.0,
        log_interval_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        dispatch_duty: Optional[Callable[[], bool]] = None,
        queued: bool = False,
        share_group: Optional[str] = None,
        commands: Optional[Link] = None,
    ) -> None:
        self.app = app
        self.link = link
        #: Where commands to printers are published: a connection of their own, whose broker answers
        #: (QoS 1 acknowledgements) do not queue behind the statuses coming in on ``link``. Under
        #: overload those wait in the socket for seconds, and while the first few commands waited
        #: for their answers the others were held back, so no job reached its printer. None: ``link``.
        self.commands = link if commands is None else commands
        self.base_url = base_url.rstrip("/")
        self.ack_timeout_s = ack_timeout_s
        self.lease_s = lease_s
        self.dispatch_interval_s = dispatch_interval_s
        #: A printer not heard from for this long is offline; None trusts the broker's last will alone.
        self.offline_after_s = offline_after_s
        self.seen_write_interval_s = seen_write_interval_s
        #: A status that says what the printer's last one said is checked against the store about this
        #: often (see :meth:`_unchanged`); anything this link learns about the printer checks it at once.
        #: None: only then, and when the owner says the store changed (:meth:`recheck_statuses`, which
        #: PostgreSQL's change notes call for every change of a printer, whoever made it).
        self.status_recheck_s = status_recheck_s
        self._jitter = random.Random()  # noqa: S311 (spreads rechecks over time; not a secret)
        #: None: no thread; the owner calls :meth:`tick` (tests do).
        self.tick_interval_s = tick_interval_s
        #: Whether this process holds the once-only dispatch duty now (several fleet processes on one
        #: database: see :mod:`fleet.duties`, which calls :meth:`take_over` and :meth:`hand_over`).
        #: None: this link is the only one, and holds it from :meth:`start` on.
        self.dispatch_duty = dispatch_duty
        self.clock = clock
        self._log = RateLimitedLog(log_interval_s)
        self._lock = threading.RLock()
        self.dispatches = Dispatches(
            app,
            self._publish,
            base_url=self.base_url,
            ack_timeout_s=ack_timeout_s,
            lease_s=lease_s,
            resend_limit=resend_limit,
            start_timeout_s=start_timeout_s,
            decline_cooldown_s=decline_cooldown_s,
            clock=clock,
            printer_news=self.recheck_statuses,
            want_dispatch=self._want_dispatch,
        )
        self._next_question = float("-inf")
        self._heard: dict[str, float] = {}
        self._seen_written: dict[str, float] = {}
        self._reported: dict[str, Reported] = {}
        # Rechecks asked for from other threads (PostgreSQL's change notes) take this small lock, not
        # the link's: they must not wait behind a status being handled. Each is numbered, so that a
        # status handled from a store read that began before a recheck of its printer is not taken as
        # up to date (:meth:`_remember_reported`).
        self._recheck_lock = threading.Lock()
        self._rechecks = 0
        self._rechecked: dict[str, int] = {}
        self._all_rechecked = 0
        self._next_seen_write = float("-inf")
        self._dispatch_wanted = True
        self._next_dispatch = float("-inf")
        self._last_pass_s = 0.0
        self._started_at = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.share_group = share_group
        #: Messages waiting for the ingest thread (None: handled on the caller's thread).
        self.queue: Optional[CoalescingQueue[tuple[str, bytes, Optional[Callable[[], None]]]]] = (
            CoalescingQueue() if queued else None
        )
        self._ingest: Optional[threading.Thread] = None

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe, take over what a previous process left assigned, and start the dispatch loop."""
        now = self.clock()
        self._started_at = now
        self.app.hooks.on_printer_command(self.send_command)
        self.app.hooks.on_work_available(self.request_dispatch)
        self.app.hooks.on_credentials_changed(self.recheck_statuses)
        if self.dispatch_duty is None:
            with self._lock:
                self.dispatches.recover(now)
        # Status is taken at QoS 0: each one replaces the last and the broker keeps the latest
        # (retained), sent again on every subscribe. So the fleet owes the broker no acknowledgement
        # per status, statuses never wait behind the broker's in-flight window, and none are queued
        # for the fleet while it is away, where they would crowd out the events and acks it must get.
        # A shared subscription gets no retained message: a process that joins learns each printer's
        # state from its next status instead.
        receive = self.handle if self.queue is None else self.receive
        if self.queue is not None:
            self._ingest = threading.Thread(target=self._drain, name="fleet-ingest", daemon=True)
            self._ingest.start()
        for channel in (p.Channel.STATUS, p.Channel.AVAILABILITY, p.Channel.EVENTS, p.Channel.ACK):
            # Acks are never shared: only the process that sent a command follows it, so each process
            # must see every answer (the others note it and ignore it).
            group = None if channel is p.Channel.ACK else self.share_group
            self.link.subscribe(
                p.shared(p.wildcard(channel), group), receive, 0 if channel is p.Channel.STATUS else 1
            )
        if self.tick_interval_s is not None:
            self._thread = threading.Thread(target=self._run, name="fleet-dispatch", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the dispatch loop; what waits in the ingest queue is handled first (within ``timeout``)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.queue is not None:
            self.queue.close()
        if self._ingest is not None:
            self._ingest.join(timeout)
            self._ingest = None

    # -- the ingest queue -----------------------------------------------------------------------

    def receive(self, topic: str, payload: bytes, ack: Optional[Callable[[], None]] = None) -> None:
        """Queue one message for the ingest thread (called on the MQTT network thread: cheap).

        ``ack`` (a link with manual acknowledgements) is called once the message is handled, so the
        broker keeps an event or an ack until then and a crash of the fleet loses none of them.
        """
        assert self.queue is not None
        # The topic up to its channel names the printer; a malformed one is refused when handled.
        key, _, channel = topic.rpartition("/")
        if channel == p.Channel.STATUS.value:
            if not self._link_behind() and not self.queue.holds(key) and self._took_unchanged(topic, payload):
                # Nothing of this printer waits or is being handled, and the status says what its
                # last one said: it changes only the live view, here, instead of waiting behind the
                # store reads of other printers' messages. Not while more waits in the socket than
                # one read takes: the queue then keeps each printer's newest status only, and the
                # network thread only reads, so the lag stays bounded.
                if ack is not None:
                    ack()
                return
            if self.queue.put_status(key, (topic, payload, None)):
                self.app.metrics.count("status.superseded")
            if ack is not None:
                ack()  # statuses come at QoS 0: nothing to acknowledge, nothing kept for a crash
        else:
            # Never dropped: when too many wait, this holds the network thread (the broker keeps the rest).
            self.queue.put(key, (topic, payload, ack))

    def _drain(self) -> None:
        assert self.queue is not None
        metrics = self.app.metrics
        while True:
            stale = self.queue.dropped_stale
            taken = self.queue.get()
            if self.queue.dropped_stale != stale:  # statuses dropped at their turn: a newer one waits
                metrics.count("status.superseded", self.queue.dropped_stale - stale)
            if taken is None:
                return
            _, (topic, payload, ack), _, waited = taken
            metrics.observe("ingest.wait_s", waited)
            try:
                self.handle(topic, payload)
            finally:
                self.queue.done()
                if ack is not None:
                    ack()

    def _link_behind(self) -> bool:
        behind: bool = getattr(self.link, "behind", False)  # a link that cannot tell is never behind
        return behind

    def _took_unchanged(self, topic: str, payload: bytes) -> bool:
        """Handle a status on the spot if it says what the printer's last one handled in full said
        (:meth:`_unchanged`); False, having changed nothing, for any other (the ingest thread's work).

        Called on the MQTT network thread, without the link's lock: it reads what the ingest thread
        remembers of the printer, writes only the live view and when the printer was last heard, and
        the caller makes sure no message of the printer is waiting or being handled meanwhile.
        """
        now = self.clock()
        try:
            printer_id, _ = p.parse_topic(topic)
            reported = self._reported.get(printer_id)
            if reported is None:
                return False
            status = p.decode_status(payload)
            if not self._unchanged(printer_id, reported, status, now):
                return False
            self._take_unchanged(printer_id, status, now)
        except Exception:
            return False  # anything wrong with it: the ingest thread handles it again, and says what
        metrics = self.app.metrics
        metrics.count("mqtt.messages", kind=p.Channel.STATUS.value)
        metrics.observe("status.handled_s", self.clock() - now)
        return True

    def _take_unchanged(self, printer_id: str, status: p.Status, now: float) -> None:
        self._heard[printer_id] = now
        self._set_live(printer_id, status, now)
        self.app.metrics.observe("status.lag_s", self.clock() - status.ts)

    def _run(self) -> None:
        assert self.tick_interval_s is not None
        while not self._stop.is_set():
            # Cleared before the round, so a request made during it wakes the next one at once.
            self._wake.clear()
            try:
                self.tick()
            except Exception:
                log.exception("the dispatch loop hit an error; it carries on")
            # A scheduling pass reads every printer and job: after one, rest as long as it took, so that
            # printers freed one after another (hundreds at a large fleet's start) do not keep passes
            # running back to back, taking the processor from the ingest thread.
            rest, self._last_pass_s = min(self._last_pass_s, MAX_PASS_REST_S), 0.0
            if rest and self._stop.wait(rest):
                return
            self._wake.wait(self.tick_interval_s)

    def take_over(self) -> None:
        """This process now holds the dispatch duty: take over the assignments the last holder left
        (their commands are sent again, the same) and give silent printers their full time from now."""
        now = self.clock()
        with self._lock:
            self._started_at = now
            self.dispatches.recover(now)
            self._next_question = float("-inf")
        self.request_dispatch()

    def hand_over(self) -> None:
        """Another process holds the dispatch duty now: what this one waited for is its to follow."""
        with self._lock:
            self.dispatches.waiting.clear()

    def request_dispatch(self) -> None:
        """Run a dispatch pass at the next tick (a printer became free, a job was queued)."""
        self._dispatch_wanted = True
        self._wake.set()

    def recheck_statuses(self, printer_id: Optional[str] = None) -> None:
        """Check the next status of a printer (None: of every printer) against the store in full.

        Any thread may call this, at once: it never waits for a status being handled.
        """
        with self._recheck_lock:
            self._rechecks += 1
            if printer_id is None:
                self._reported.clear()
                self._rechecked.clear()
                self._all_rechecked = self._rechecks
            else:
                self._reported.pop(printer_id, None)
                self._rechecked[printer_id] = self._rechecks

    def outstanding(self) -> dict[int, Dispatch]:
        """The dispatches waiting for an answer, by job id."""
        with self._lock:
            return dict(self.dispatches.waiting)

    def _want_dispatch(self) -> None:
        self._dispatch_wanted = True

    # -- the loop -------------------------------------------------------------------------------

    def tick(self, now: Optional[float] = None) -> None:
        """One round: write when printers were last seen; and, holding the dispatch duty, re-send or
        give up unanswered dispatches, mark silent printers, dispatch."""
        now = self.clock() if now is None else now
        with self._lock:
            # The once-only part: one fleet process among those on the database does it.
            duty = self.dispatch_duty is None or self.dispatch_duty()
            if duty:
                self.dispatches.follow_up(now)
                if now >= self._next_question:
                    self._next_question = now + self.ack_timeout_s
                    self.dispatches.ask_about_held_unknowns(self._heard)
                self._mark_silent(now)
            due = duty and (self._dispatch_wanted or now >= self._next_dispatch)
            if due:
                self._dispatch_wanted = False
                self._next_dispatch = now + self.dispatch_interval_s
                avoid = self.dispatches.cooling(now)
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
            for printer_id, at in list(self._heard.items())  # a copy: statuses are taken meanwhile
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
        self._last_pass_s = time.perf_counter() - started
        self.app.metrics.observe("dispatch.pass_s", self._last_pass_s)
        with self._lock:
            for job_id, printer_id in assigned:
                self.dispatches.send(job_id, printer_id, now)

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

    # -- commands people give -------------------------------------------------------------------

    def send_command(self, printer_id: str, command_type: p.CommandType, job_id: Optional[int]) -> None:
        """Send a cancel, pause, resume or bed-cleared command (the service's command hook)."""
        now = self.clock()
        command = p.Command(uuid.uuid4().hex, command_type, now, now + self.lease_s, job_id=job_id)
        with self._lock:
            if command_type is p.CommandType.CANCEL and job_id is not None:
                self.dispatches.forget(job_id)
            self._reported.pop(printer_id, None)
            self._publish(printer_id, command)
        log.info("%s sent to printer %s (job %s)", command_type.value, printer_id, job_id)

    def _publish(self, printer_id: str, command: p.Command) -> None:
        self.commands.publish(
            p.topic(printer_id, p.Channel.CMD), p.encode_command(command), qos=1, retain=False
        )

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
            metrics.count("mqtt.messages", kind=channel.value)
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
                    self._take_unchanged(printer_id, status, now)
                    return
        else:
            # Whatever else a node says (availability, events, acks) may change what its status means.
            self._reported.pop(printer_id, None)
        read_from = self._rechecks  # the store is read after every recheck numbered up to here
        printer, revoked = self.app.reports.printer_and_revoked(printer_id)
        if revoked:
            raise Invalid(f"printer {printer_id}'s credentials are revoked")
        if channel is p.Channel.STATUS:
            self._on_status(printer, status or p.decode_status(payload), now, read_from)
        elif channel is p.Channel.AVAILABILITY:
            self._on_availability(printer, p.decode_availability(payload), now)
        elif channel is p.Channel.EVENTS:
            self._heard[printer_id] = now
            self._on_event(printer, p.decode_event(payload))
        elif channel is p.Channel.ACK:
            self._heard[printer_id] = now
            self.dispatches.on_ack(printer, p.decode_ack(payload), now)

    def _on_availability(self, printer: Printer, online: bool, now: float) -> None:
        if online:
            self._heard[printer.id] = now  # what the node reports next settles its state
            return
        log.info("printer %s went offline", printer.id)
        self._heard.pop(printer.id, None)
        self.app.reports.clear_live(printer.id)
        self.dispatches.forget_printer(printer.id)
        self.app.reports.printer_offline(printer.id)

    def _unchanged(self, printer_id: str, reported: Reported, status: p.Status, now: float) -> bool:
        """Whether a status may skip the store: it says what the printer's last one said, which was
        handled in full less than about ``status_recheck_s`` ago.

        Such a status changes only the live view (temperatures, progress). What the store holds
        about the printer can have changed meanwhile only through this link, which then forgets
        what the printer reported (so its next status is handled in full), through the service's
        hooks (credentials), or through another process (a manager's edit, a second fleet on the
        same PostgreSQL), which the recheck catches up with: on a timer, or at the change notes of
        PostgreSQL, which name each printer whose record, job, credentials or spool changed.
        """
        return (
            status.state is reported.state
            and status.job_id == reported.job_id
            and status.capabilities == reported.capabilities
            and status.lending == reported.lending
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

    def _on_status(self, printer: Printer, status: p.Status, now: float, read_from: int) -> None:
        self._heard[printer.id] = now
        self._set_live(printer.id, status, now)
        self.app.metrics.count("status.store_checks")
        printer = self._settle_held_job(printer, status)
        changes = self._capability_changes(printer, status.capabilities, now)
        target = printer_state_for(status.state, printer)
        if target is not None and target is not printer.state:
            changes["state"] = target
        if status.lending != printer.lending:
            # Each status states the owner's whole terms: none sent means none set (lent whenever idle).
            changes["lending"] = status.lending
        if changes:
            changes["last_seen"] = now
            self._seen_written[printer.id] = now
            self.app.reports.record_status(printer.id, changes)
            self.app.metrics.count("status.printer_writes")
        recheck_at = (
            math.inf
            if self.status_recheck_s is None
            else now + self.status_recheck_s * (0.5 + 0.5 * self._jitter.random())
        )
        self._remember_reported(
            printer.id,
            Reported(status.state, status.job_id, status.capabilities, status.lending, recheck_at),
            read_from,
        )
        # From the node's clock to the fleet's: meaningful when both keep time (NTP), as they do here.
        self.app.metrics.observe("status.lag_s", self.clock() - status.ts)

    def _remember_reported(self, printer_id: str, reported: Reported, read_from: int) -> None:
        """Let the printer's next statuses that say the same skip the store, unless a recheck of it was
        asked for since the store was read (``read_from``): that read may predate the change."""
        with self._recheck_lock:
            if max(self._rechecked.get(printer_id, 0), self._all_rechecked) <= read_from:
                self._reported[printer_id] = reported

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
            self.dispatches.started(job.id, self.clock())
        elif job.state is JobState.UNKNOWN and not running:
            if job.started_at is None:
                # The printer keeps the job until it says whether it took it.
                self.dispatches.ask_again(job, printer.id)
                return printer
            # The node is back and not running it: the outcome stays for its events or a manager to
            # settle, and someone has to look at the plate before the printer takes more work.
            self.app.reports.back_without_job(printer.id, job.id)
        return self.app.printers.get_printer(printer.id)

    def _capability_changes(self, printer: Printer, caps: p.Capabilities, now: float) -> dict[str, object]:
        try:
            return self.app.reports.capability_changes(printer, caps)
        except Invalid as exc:
            self._log.warning(
                f"caps:{printer.id}", now, "ignored capabilities of %s: %s", printer.id, exc.message
            )
            return {}

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
        if target is JobState.PRINTING:
            self.dispatches.started(event.job_id, self.clock())
        elif target is not JobState.PAUSED:
            self.dispatches.forget(event.job_id)
