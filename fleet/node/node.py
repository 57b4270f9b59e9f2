"""``PrinterNode``: one printer's presence in the fleet, over any :class:`PrinterPort` and MQTT link.

One class of a little over 500 lines: every command, printer callback and status goes through its one
worker thread and its journal, so their handlers stay side by side; the pure rules (what to report,
when to refuse a dispatch) are in ``rules.py``, the plate photo in ``plate.py``, the journal in
``journal.py``.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Protocol

from ..lending import Lending
from ..protocol import (
    MAX_ANSWER_WITHIN_S,
    OFFLINE,
    ONLINE,
    Ack,
    AckStatus,
    Capabilities,
    Channel,
    Command,
    CommandType,
    Event,
    EventType,
    ProtocolError,
    decode_command,
    encode_ack,
    encode_event,
    encode_status,
    topic,
)
from .download import DownloadError, Fetcher
from .journal import ACTIVE, FINISHED, FleetJob, JobPhase, Journal, Offer
from .plate import PlateReporter
from .printer import PrinterPort, PrintOutcome
from .rules import StatusGate, build_status, dispatch_refusal, stored_name
from .worker import Executor, Worker

log = logging.getLogger(__name__)

#: The longest event message the protocol's decoder takes (``fleet.protocol``: 500 characters).
MAX_EVENT_MESSAGE = 500

_OUTCOME_EVENTS = {
    PrintOutcome.DONE: EventType.JOB_DONE,
    PrintOutcome.FAILED: EventType.JOB_FAILED,
    PrintOutcome.CANCELLED: EventType.JOB_CANCELLED,
}


class Receipt(Protocol):
    """What became of a published message (``fleet.mqtt.Delivery`` is one)."""

    @property
    def delivered(self) -> bool: ...

    @property
    def lost(self) -> bool: ...


class Link(Protocol):
    """What the node needs of its MQTT connection (``fleet.mqtt.MqttLink`` has it)."""

    @property
    def connected(self) -> bool: ...

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None], qos: int = 1) -> None: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> Optional[Receipt]:
        """Queue a message; a link that cannot tell what became of it returns None."""

    def start(self) -> None: ...

    def close(self, timeout: float = 5.0) -> None: ...


@dataclass(frozen=True)
class NodeSettings:
    #: Start dispatched jobs at once; when False the owner answers each offer.
    auto_accept: bool = True
    #: An offer the owner leaves unanswered this long is declined, so the fleet offers it elsewhere.
    accept_timeout_s: float = 300.0
    #: While printing, at most one status message per this many seconds (state changes go at once).
    status_interval_s: float = 1.0
    #: A dispatch that arrives while the printer finishes its last print (end script running) waits
    #: this long for it to be free before it is declined (less than the fleet's dispatch lease).
    finishing_wait_s: float = 15.0
    capabilities: Capabilities = field(default_factory=Capabilities)
    #: The owner's lending terms, sent in every status (None: lent whenever idle, any material).
    lending: Optional[Lending] = None


class PrinterNode:
    """Publishes a printer's status and events and carries out the fleet's commands for it.

    All work runs on one worker thread; the public methods only queue it, so they are safe to call from
    MQTT's network thread and OctoPrint's event and printer threads.
    """

    def __init__(
        self,
        link: Link,
        printer_id: str,
        printer: PrinterPort,
        journal_path: Path,
        fetcher: Fetcher,
        settings: NodeSettings = NodeSettings(),  # frozen, so one shared default is safe
        *,
        clock: Callable[[], float] = time.time,
        executor: Optional[Executor] = None,
        work_dir: Optional[Path] = None,
        tick_interval_s: float = 0.5,
        plate: Optional[PlateReporter] = None,
    ) -> None:
        self.printer_id = printer_id
        #: Sends the photo of the plate after each fleet job (None: the printer has no webcam).
        self._plate = plate
        self.settings = settings
        self._link = link
        self._printer = printer
        self._fetcher = fetcher
        self._clock = clock
        self._journal = Journal.load(journal_path)
        #: A dispatch waiting for the printer to finish its last print, and until when it waits.
        self._waiting: Optional[tuple[Command, float]] = None
        self._work_dir = work_dir or journal_path.parent / "downloads"
        self._worker = Worker(f"crowdfab-node-{printer_id}", idle=self.tick, idle_interval=tick_interval_s)
        self._executor: Executor = executor or self._worker
        self._gate = StatusGate(settings.status_interval_s)
        #: Events handed to the link whose delivery is not confirmed yet (worker thread only).
        self._in_flight: dict[Event, Receipt] = {}
        self._reconciled = False
        self._topics = {channel: topic(printer_id, channel) for channel in Channel}

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Reconcile the journal with the printer, subscribe to commands and connect."""
        if self._executor is self._worker:
            self._worker.start()
        self._executor.submit(self._clear_partial_downloads)
        self._executor.submit(self._reconcile)
        self._link.subscribe(self._topics[Channel.CMD], self._on_message, qos=1)
        self._link.start()

    def _clear_partial_downloads(self) -> None:
        """Remove what a download cut short by a stop left behind (never a file the printer holds)."""
        for partial in self._work_dir.glob("*.part"):
            log.info("removing %s, left by a download the node's stop interrupted", partial.name)
            partial.unlink(missing_ok=True)

    def close(self, timeout: float = 5.0) -> None:
        if self._link.connected:
            self._link.publish(self._topics[Channel.AVAILABILITY], OFFLINE.encode(), retain=True)
        if self._executor is self._worker:
            self._worker.close(timeout)
        self._link.close(timeout)
        if self._plate is not None:
            self._plate.close()

    # -- called from other threads ---------------------------------------------------------------

    def on_connected(self) -> None:
        """The link (re)connected: announce the node, its status and every unreported event."""
        self._executor.submit(self._announce)

    def printer_changed(self) -> None:
        """The printer's state, temperatures or progress changed."""
        self._executor.submit(self._publish_status)

    def on_print_started(self, name: str) -> None:
        self._executor.submit(self._printer_event, EventType.JOB_STARTED, name)

    def on_print_done(self, name: str) -> None:
        self._executor.submit(self._printer_event, EventType.JOB_DONE, name)

    def on_print_failed(self, name: str, reason: str = "") -> None:
        """``reason`` (the printer's own words, when it has them) goes to the fleet with the event."""
        self._executor.submit(self._printer_event, EventType.JOB_FAILED, name, reason)

    def on_print_cancelled(self, name: str) -> None:
        self._executor.submit(self._printer_event, EventType.JOB_CANCELLED, name)

    def on_print_paused(self, name: str) -> None:
        self._executor.submit(self._printer_event, EventType.JOB_PAUSED, name)

    def on_print_resumed(self, name: str) -> None:
        self._executor.submit(self._printer_event, EventType.JOB_RESUMED, name)

    @property
    def plate(self) -> Optional[PlateReporter]:
        """What sends the photo of the plate after each job (None without a webcam)."""
        return self._plate

    def pending_offer(self) -> Optional[Offer]:
        """The dispatch waiting for the owner's answer, if any."""
        return self._journal.offer

    def current_job(self) -> Optional[FleetJob]:
        return self._journal.job

    def accept_offer(self) -> Future[bool]:
        """Take the pending offer; the future says whether there was one to take."""
        return self._executor.submit(self._accept_offer)

    def decline_offer(self) -> Future[bool]:
        return self._executor.submit(self._decline_offer, "declined by the printer's owner")

    def tick(self) -> None:
        """Periodic work (run by the worker when idle): offer timeouts, rate-limited status, events whose
        delivery is not confirmed yet."""
        waiting = self._waiting
        if waiting is not None:
            self._waiting = None
            if waiting[0].expired(self._clock()):
                self._ack(waiting[0], AckStatus.DECLINED, "expired while the printer finished its last print")
            else:
                self._dispatch(waiting[0], waiting[1])
        offer = self._journal.offer
        if offer is not None and self._clock() >= offer.deadline:
            self._decline_offer(f"no answer from the owner within {self.settings.accept_timeout_s:g} s")
        self._publish_status()
        if self._in_flight:
            self._flush_events()

    # -- commands (worker thread) ----------------------------------------------------------------

    def _on_message(self, _topic: str, payload: bytes) -> None:
        self._executor.submit(self._handle_command, payload)

    def _handle_command(self, payload: bytes) -> None:
        try:
            command = decode_command(payload)
        except ProtocolError as exc:
            log.warning("dropped a malformed command: %s", exc.message)
            return
        previous = self._journal.ack_for(command.id)
        if previous is not None:
            offer = self._journal.offer
            if previous.status is AckStatus.PENDING and offer is not None and offer.command.id == command.id:
                # Still asking: say again how long the owner has left.
                left = max(0.0, offer.deadline - self._clock())
                previous = replace(previous, answer_within_s=round(left, 3))
            self._publish(Channel.ACK, encode_ack(previous))
            return
        if command.expired(self._clock()):
            self._ack(command, AckStatus.DECLINED, "expired")
            return
        handlers: dict[CommandType, Callable[[Command], None]] = {
            CommandType.DISPATCH: self._dispatch,
            CommandType.PAUSE: self._job_action,
            CommandType.RESUME: self._job_action,
            CommandType.CANCEL: self._job_action,
            CommandType.BED_CLEARED: self._bed_cleared,
            CommandType.SNAPSHOT: self._snapshot,
        }
        handlers[command.type](command)
        self._publish_status()

    def _dispatch(self, command: Command, wait_until: Optional[float] = None) -> None:
        job = self._journal.job
        if job is not None and job.command_id == command.id:
            # Acted on before a crash lost the ack: answer again, never act twice.
            self._ack(command, AckStatus.ACCEPTED)
            return
        if self._waiting is not None and self._waiting[0].id == command.id:
            return  # the fleet sent it again while it waits for the printer to finish: keep waiting
        taking = self._journal.taking
        snapshot = self._printer.snapshot()
        reason = dispatch_refusal(snapshot, job, self._journal.offer)
        if taking is not None and not reason:
            reason = f"already fetching fleet job {_job_id(taking)}"
        if reason and snapshot.finishing and job is None and taking is None and self._journal.offer is None:
            # The last print's end script is running: the printer is free in a moment. Answer then
            # (the fleet re-sends the same command meanwhile, which changes nothing).
            deadline = self._clock() + self.settings.finishing_wait_s if wait_until is None else wait_until
            if self._clock() < deadline:
                self._waiting = (command, deadline)
                return
        if reason:
            self._ack(command, AckStatus.DECLINED, reason)
        elif self.settings.auto_accept:
            self._take(command)
        else:
            within = min(self.settings.accept_timeout_s, MAX_ANSWER_WITHIN_S)
            self._journal.set_offer(Offer(command, self._clock() + within))
            self._ack(command, AckStatus.PENDING, "waiting for the printer's owner", answer_within_s=within)

    def _accept_offer(self) -> bool:
        offer = self._journal.offer
        if offer is None:
            return False
        self._journal.set_offer(None)
        if self._clock() >= offer.deadline:
            # The fleet has stopped waiting for this answer (it may have given the job to another
            # printer): taking it now could print it twice.
            self._ack(offer.command, AckStatus.DECLINED, "the owner answered after the offer's deadline")
            self._publish_status()
            return False
        reason = dispatch_refusal(self._printer.snapshot(), self._journal.job, None)
        if reason:
            self._ack(offer.command, AckStatus.DECLINED, reason)
        else:
            self._take(offer.command)
        self._publish_status()
        return True

    def _decline_offer(self, reason: str) -> bool:
        offer = self._journal.offer
        if offer is None:
            return False
        self._journal.set_offer(None)
        self._ack(offer.command, AckStatus.DECLINED, reason)
        return True

    def _take(self, command: Command) -> None:
        """Accept a dispatched job, then download, store and start it; every way out answers the command.

        The answer ``accepted`` goes before the download, which may take longer than the dispatch's
        lease: the fleet then waits for ``job_started`` (or a ``failed`` for the same command) instead
        of giving the job to another printer meanwhile. The command stays in the journal until the job
        is on the printer, so a node that stops during the download takes it again when it restarts.
        """
        self._journal.set_taking(command)
        self._ack(command, AckStatus.ACCEPTED)
        self._fetch_and_start(command)

    def _resume_take(self, command: Command) -> None:
        """Take again a dispatch that was being downloaded when the node stopped (it was accepted)."""
        assert command.job is not None
        reason = dispatch_refusal(self._printer.snapshot(), None, self._journal.offer)
        if reason:
            self._journal.set_taking(None)
            self._ack(command, AckStatus.FAILED, f"the node restarted while fetching the job, and {reason}")
            return
        log.info("job %s was being fetched when the node stopped: fetching it again", command.job.job_id)
        self._fetch_and_start(command)

    def _fetch_and_start(self, command: Command) -> None:
        ref = command.job
        assert ref is not None  # the decoder guarantees a dispatch carries its job
        try:
            downloaded = self._fetcher.fetch(ref, self._work_dir)
        except DownloadError as exc:
            self._journal.set_taking(None)
            self._ack(command, AckStatus.FAILED, str(exc))
            return
        try:
            path = self._printer.store_file(ref.job_id, stored_name(ref.job_id, ref.filename), downloaded)
        except Exception as exc:
            log.exception("could not store job %s on the printer", ref.job_id)
            self._journal.set_taking(None)
            self._ack(command, AckStatus.FAILED, f"could not store the file: {exc}")
            return
        finally:
            downloaded.unlink(missing_ok=True)
        job = FleetJob(ref.job_id, command.id, str(path), JobPhase.PRINTING)
        # Journal first: a crash after start must find the job, not mistake it for a local print.
        self._journal.set_job(job)
        try:
            self._printer.start(path)
        except Exception as exc:
            log.exception("could not start job %s", ref.job_id)
            self._journal.set_job(None)
            self._ack(command, AckStatus.FAILED, f"could not start the print: {exc}")
            return
        self._journal.set_job(job, self._event(EventType.JOB_STARTED, job.job_id))
        self._flush_events()

    def _job_action(self, command: Command) -> None:
        job = self._journal.job
        offer = self._journal.offer
        offered = offer is not None and _job_id(offer.command) == command.job_id
        if command.type is CommandType.CANCEL and offered:
            self._decline_offer("cancelled by the fleet")
            self._ack(command, AckStatus.DONE)
            return
        if job is None or job.job_id != command.job_id or job.phase not in ACTIVE:
            self._ack(command, AckStatus.DECLINED, f"job {command.job_id} is not running on this printer")
            return
        wanted = {CommandType.PAUSE: JobPhase.PAUSED, CommandType.RESUME: JobPhase.PRINTING}.get(command.type)
        if wanted is job.phase:
            self._ack(command, AckStatus.DONE, f"already {wanted.value}")
            return
        action = {
            CommandType.PAUSE: self._printer.pause,
            CommandType.RESUME: self._printer.resume,
            CommandType.CANCEL: self._printer.cancel,
        }[command.type]
        try:
            action()
        except Exception as exc:
            log.exception("printer refused %s", command.type.value)
            self._ack(command, AckStatus.FAILED, str(exc))
            return
        self._ack(command, AckStatus.ACCEPTED)

    def _bed_cleared(self, command: Command) -> None:
        job = self._journal.job
        if job is None:
            self._ack(command, AckStatus.DONE, "the bed was already clear")
        elif job.phase not in FINISHED:
            self._ack(command, AckStatus.DECLINED, f"job {job.job_id} is still on the printer")
        else:
            self._journal.set_job(None, self._event(EventType.BED_CLEARED, job.job_id))
            self._ack(command, AckStatus.DONE)
            self._flush_events()

    def _snapshot(self, command: Command) -> None:
        """Send a photo of the plate now, for the job the fleet names (the one on the plate)."""
        if self._plate is None:
            self._ack(command, AckStatus.DECLINED, "this printer has no webcam")
        elif command.job_id is None:
            self._ack(command, AckStatus.DECLINED, "a photo of the plate is sent for a job: none was named")
        elif self._plate.after_job(command.job_id):
            self._ack(command, AckStatus.DONE)
        else:
            self._ack(command, AckStatus.FAILED, "the webcam or the fleet failed: see the printer's log")

    def _ack(
        self,
        command: Command,
        status: AckStatus,
        reason: str = "",
        *,
        answer_within_s: Optional[float] = None,
    ) -> None:
        ack = Ack(command.id, status, self._clock(), _job_id(command), reason, answer_within_s)
        self._journal.record_ack(ack)
        self._publish(Channel.ACK, encode_ack(ack))

    # -- printer events and status (worker thread) -----------------------------------------------

    def _printer_event(self, event_type: EventType, name: str, message: str = "") -> None:
        job = self._journal.job
        # The protocol carries at most MAX_EVENT_MESSAGE characters of text, and no NUL.
        message = message.replace("\0", "").strip()[:MAX_EVENT_MESSAGE]
        if (
            job is not None
            and job.matches(name)
            and self._journal.advance(self._event(event_type, job.job_id, message))
        ):
            self._flush_events()
            if event_type in _OUTCOME_EVENTS.values() and self._plate is not None:
                # After the outcome is on its way: the photo may take seconds, the outcome may not wait.
                self._executor.submit(self._plate.after_job, job.job_id)
        self._publish_status()

    def _reconcile(self) -> None:
        """Settle a job the journal thinks is running with what the printer says (once it can say), and
        take again a dispatch whose download a stop cut short."""
        job = self._journal.job
        taking = self._journal.taking
        if (job is None or job.phase not in ACTIVE) and taking is None:
            self._reconciled = True
            return
        snapshot = self._printer.snapshot()
        if not snapshot.operational:
            return  # the printer is not connected yet: try again on its next change
        self._reconciled = True
        if job is None and taking is not None:
            self._resume_take(taking)
            return
        if job is None or job.phase not in ACTIVE:
            return
        if snapshot.busy and job.matches(snapshot.file_path or snapshot.file_name):
            if snapshot.paused != (job.phase is JobPhase.PAUSED):
                kind = EventType.JOB_PAUSED if snapshot.paused else EventType.JOB_RESUMED
                self._journal.advance(self._event(kind, job.job_id))
        else:
            outcome = self._printer.last_result(Path(job.path))
            kind = _OUTCOME_EVENTS[outcome] if outcome is not None else EventType.JOB_FAILED
            message = "" if outcome is not None else "the print stopped while the node was not running"
            self._journal.advance(self._event(kind, job.job_id, message))
        self._flush_events()

    def _publish_status(self) -> None:
        if not self._reconciled:
            self._reconcile()
        if not self._link.connected:
            return
        now = self._clock()
        status = build_status(
            self._printer.snapshot(),
            self._journal.job,
            self.settings.capabilities,
            now,
            self.settings.lending,
        )
        if self._gate.should_publish(status, now):
            self._publish(Channel.STATUS, encode_status(status), retain=True)

    def _announce(self) -> None:
        self._publish(Channel.AVAILABILITY, ONLINE.encode(), retain=True)
        self._gate.reset()
        self._publish_status()
        self._flush_events()

    def _event(self, event_type: EventType, job_id: Optional[int], message: str = "") -> Event:
        return Event(event_type, self._clock(), job_id, message)

    def _flush_events(self) -> None:
        """Send unreported events, oldest first; what cannot be sent now goes on the next connect.

        An event leaves the journal only once the broker has it. A link that died unnoticed (a Wi-Fi
        drop) swallows what is published on it: the link sends that again after its reconnect, and if
        the node stops first, the journal still has it and the next start sends it.
        """
        for event in self._journal.outbox:
            receipt = self._in_flight.get(event)
            if receipt is not None:
                if receipt.delivered:
                    del self._in_flight[event]
                    self._journal.mark_reported(event)
                    continue
                if not receipt.lost:
                    continue  # the link holds it and sends it again after a reconnect
            if not self._link.connected:
                continue
            sent = self._publish(Channel.EVENTS, encode_event(event))
            if sent is None:
                self._journal.mark_reported(event)
            else:
                self._in_flight[event] = sent

    def _publish(self, channel: Channel, payload: bytes, *, retain: bool = False) -> Optional[Receipt]:
        return self._link.publish(self._topics[channel], payload, qos=1, retain=retain)


def _job_id(command: Command) -> Optional[int]:
    if command.job_id is not None:
        return command.job_id
    return command.job.job_id if command.job is not None else None
