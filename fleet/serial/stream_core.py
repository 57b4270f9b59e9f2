"""The streamer's protocol state, without the port: replies in, window and timers, jobs and listeners.

:class:`StreamerCore` holds everything one serial connection knows (the :class:`~.window.LineLedger`,
the :class:`~.learning.WindowPolicy`, the queue of commands, the job) and decides what each firmware
reply means; :class:`~.streamer.SerialStreamer` adds the port and its two threads. Every method here
runs under ``self._cond``; listener calls are collected and made outside it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

from .jobfile import Job, peek_command
from .learning import WindowPolicy
from .lineproto import ErrorClass, Reply, ReplyKind, last_line_of
from .stream_types import (
    JOB_STATES,
    JobOutcome,
    JobResult,
    PrinterUnreachable,
    StreamerConfig,
    StreamerSnapshot,
    StreamListener,
    StreamState,
)
from .window import LineLedger, ResendAction
from .window_memory import WindowMemory

#: Commands that may run for minutes before their ok: heating, homing, levelling, dwelling, waiting.
SLOW_COMMANDS = frozenset(
    {"G4", "G26", "G28", "G29", "G33", "G34", "G35", "G76", "G80", "M0", "M1", "M48", "M109", "M116"}
    | {"M190", "M191", "M226", "M303", "M600", "M701", "M702"}
)
#: A ``wait`` this long after the last line written means the firmware has answered all of them.
WAIT_SETTLE_S = 0.5
#: After a resend request, lines still in flight that get no answer for this long plus twice the time
#: the window's bytes take on the line are lost (flushed by the firmware, or cut short in its receive
#: buffer); with none in flight the resend goes out.
RESEND_SETTLE_S = 0.03


class OkTimeout(str, Enum):
    """What one ok timeout does (see :func:`on_ok_timeout`)."""

    PROBE = "probe"  # ask with M105 once it fits; every line in flight stays counted
    LOST = "lost"  # the oldest line's ok counts as lost: free its bytes, then ask
    GONE = "gone"  # the printer counts as gone: stop


def on_ok_timeout(config: StreamerConfig, timeouts: int, quiet_s: float) -> OkTimeout:
    """The ``timeouts``-th ok timeout in a row, ``quiet_s`` after the last ok, busy or resend request.

    A late ok is not a lost one: while one long move runs Marlin answers no line, and the lines sent
    ahead still sit in its receive buffer, so freeing their bytes overruns it. Only a silence longer
    than a move takes (``lost_ok_s``) counts the oldest line's ok as lost.
    """
    if timeouts > config.max_timeouts:
        return OkTimeout.GONE
    if quiet_s >= config.lost_ok_s:
        return OkTimeout.LOST
    return OkTimeout.PROBE


def _code(command: str) -> str:
    return command.split(" ", 1)[0].upper()


class _Kind(str, Enum):
    COMMAND = "command"
    RESET = "reset"  # M110: renumber from here


@dataclass
class _Outgoing:
    command: str
    kind: _Kind = _Kind.COMMAND
    done: threading.Event = field(default_factory=threading.Event)


class StreamerCore:
    """One connection's protocol state; :class:`~.streamer.SerialStreamer` gives it a port."""

    def __init__(
        self,
        port: str,
        baud: int,
        *,
        config: StreamerConfig = StreamerConfig(),  # noqa: B008 (frozen, so one shared default is safe)
        listener: Optional[StreamListener] = None,
    ) -> None:
        self.port = port
        self.baud = baud
        self.config = config
        self._listener = listener
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._state = StreamState.DISCONNECTED
        self._error: Optional[str] = None
        self._policy = self._new_policy()
        self._ledger = self._new_ledger()
        self._outbox: deque[_Outgoing] = deque()
        self._job: Optional[Job] = None
        self._last_job: Optional[Job] = None
        self._temperatures: dict[str, tuple[Optional[float], Optional[float]]] = {}
        self._capabilities: dict[str, bool] = {}
        self._firmware: dict[str, str] = {}
        self._advanced_ok = False
        self._autoreport = False
        self._last_progress = 0.0
        #: When the printer last answered (see _progress); unlike _last_progress, ok timeouts leave it.
        self._quiet_since = 0.0
        self._timeouts = 0
        self._next_poll = 0.0
        self._next_snapshot = 0.0
        self._fatal: list[str] = []
        self._events: list[Callable[[], None]] = []  # listener calls, made outside the lock
        self._memory = WindowMemory(config.window_memory) if config.window_memory else None
        self._remembered: Optional[int] = None
        self._last_write = 0.0
        self._last_heard = 0.0
        self._firmware_name: Optional[str] = None
        #: A line may sit cut short in the firmware's buffer: end it with a bare newline first.
        self._partial_may_linger = False
        self._quiet_until = 0.0  # after that newline, the resend waits for what it stirs up

    def _new_policy(self) -> WindowPolicy:
        return WindowPolicy(
            fixed_bytes=self.config.rx_buffer_bytes,
            widen_after=self.config.widen_after,
            max_lines=self.config.max_inflight,
        )

    def _new_ledger(self) -> LineLedger:
        ledger = LineLedger(history=self.config.history, resend_limit=self.config.resend_limit)
        # A buffer size the user gave is trusted: resends go at its window, with no drain first.
        ledger.careful_resends = self.config.rx_buffer_bytes is None
        self._apply_window(ledger)
        return ledger

    def _apply_window(self, ledger: Optional[LineLedger] = None) -> None:
        """Give the ledger the policy's current limits."""
        ledger = ledger or self._ledger
        window = self._policy.window()
        ledger.rx_buffer_bytes = window.max_bytes
        ledger.max_inflight = window.max_lines

    @property
    def learned_window(self) -> Optional[int]:
        """The widest receive window that held so far (0: one line in flight; None: nothing yet)."""
        with self._cond:
            return self._policy.held_bytes

    @property
    def window_bytes(self) -> Optional[int]:
        """The receive buffer the streamer counts against now (None: one line in flight)."""
        with self._cond:
            return None if self._ledger.max_inflight == 1 else self._ledger.rx_buffer_bytes

    def _check_alive(self) -> None:
        with self._cond:
            if self._state is StreamState.ERROR:
                raise PrinterUnreachable(self._error or f"the printer on {self.port} stopped")

    def snapshot(self) -> StreamerSnapshot:
        with self._cond:
            return self._snapshot_locked()

    def _on_reply(self, reply: Reply) -> None:
        now = time.monotonic()
        self._last_heard = now
        if reply.temperatures:
            self._temperatures.update(reply.temperatures)
        kind = reply.kind
        if kind is ReplyKind.OK:
            if reply.advanced_ok:
                self._advanced_ok = True
            if reply.firmware:
                self._firmware.update(reply.firmware)
            was_full = self._ledger.full()
            for entry in self._ledger.acknowledge(reply):
                if isinstance(entry.token, _Outgoing):
                    entry.token.done.set()
                if self._state in JOB_STATES:
                    self._policy.on_ok(was_full)
            self._apply_window()
            self._learned()
            self._progress(now)
            self._timeouts = 0
        elif kind is ReplyKind.RESEND:
            self._progress(now)
            if reply.line is not None:
                self._resend(reply.line)
        elif kind is ReplyKind.BUSY:
            self._progress(now)
            self._timeouts = 0
        elif kind is ReplyKind.WAIT:
            # Idle with nothing buffered: every line written well before this has been answered.
            if self._ledger.in_flight and now - self._last_write > WAIT_SETTLE_S:
                self._answer_all()
            self._progress(now)
        elif kind is ReplyKind.ERROR:
            if reply.error is ErrorClass.LINE:
                # Some firmwares name the last good line and never send the Resend (or the ok) after.
                last = last_line_of(reply.message)
                if last is not None:
                    self._resend(last + 1)
            if reply.error is ErrorClass.FATAL:
                self._fatal.append(reply.message)
                self._halt("the firmware stopped: " + "; ".join(self._fatal))
        elif kind is ReplyKind.START and self._state in JOB_STATES:
            self._halt("the firmware restarted during the print (a reset or a power glitch)")
        elif kind is ReplyKind.START:
            # A board that (re)booted has forgotten what was in flight and its line number.
            self._ledger.clear_flight()
            if self._state is StreamState.IDLE:
                self._outbox.appendleft(_Outgoing("M110 N0", _Kind.RESET))
        elif kind is ReplyKind.FIRMWARE:
            self._firmware.update(reply.firmware)
        elif kind is ReplyKind.CAPABILITY and reply.capability is not None:
            name, enabled = reply.capability
            self._capabilities[name] = enabled

    def _progress(self, now: float) -> None:
        """The printer answered (or a line went out with none in flight): both silences start again."""
        self._last_progress = self._quiet_since = now

    def _resend(self, line: int) -> None:
        """Act on the firmware's request for ``line``: send it again, renumber, or give up."""
        if self._state is StreamState.ERROR:
            return
        in_flight = self._ledger.in_flight
        decision = self._ledger.request_resend(line)
        # A garbled line with several in flight: the receive buffer may be smaller than counted.
        resent = decision.action in (ResendAction.RESEND, ResendAction.RESYNC)
        if resent and self._policy.on_corruption(in_flight):
            self._apply_window()
        if decision.action is ResendAction.FAILED:
            self._halt(decision.message)
        elif decision.action is ResendAction.REWIND:
            for command in reversed(self._ledger.rewind(decision.line)):
                self._outbox.appendleft(_Outgoing(command))
            self._outbox.appendleft(_Outgoing(f"M110 N{decision.line - 1}", _Kind.RESET))
        elif decision.action is ResendAction.RESYNC:
            redo = self._ledger.renumber()
            for command, token in reversed(redo):
                item = token if isinstance(token, _Outgoing) else _Outgoing(command)
                self._outbox.appendleft(item)
            self._outbox.appendleft(_Outgoing(f"M110 N{self._ledger.next_number}", _Kind.RESET))

    def _resend_settle(self) -> float:
        return RESEND_SETTLE_S + 20.0 * self._ledger.rx_buffer_bytes / max(1, self.baud)

    def _answer_all(self) -> None:
        if self._ledger.pending_resend() is not None and self._ledger.in_flight:
            self._partial_may_linger = self._ledger.careful_resends
        while (entry := self._ledger.forget_oldest()) is not None:
            if isinstance(entry.token, _Outgoing):
                entry.token.done.set()

    def _learned(self) -> None:
        """Remember a window that held, once, for the next connection to this printer."""
        held = self._policy.held_bytes
        if self._memory is None or held is None or self.config.rx_buffer_bytes is not None:
            return
        if self._remembered is not None and held <= self._remembered:
            return
        self._remembered = held
        name = self._firmware_name
        if name is not None:
            with contextlib.suppress(OSError):  # a read-only data dir costs only the learning next time
                self._memory.remember(self.port, name, held)

    def _halt(self, message: str) -> None:
        """Stop sending anything at once: the firmware is in trouble."""
        self._outbox.clear()
        self._error = message
        if self._state is not StreamState.ERROR:
            self._set_state(StreamState.ERROR)
        self._fail_job(message)

    def _tick(self, now: float) -> None:
        """Timers: the ok timeout, temperature polling, the end of a job, progress reports."""
        if self._state in (StreamState.ERROR, StreamState.DISCONNECTED):
            return
        ledger = self._ledger
        if (
            ledger.careful_resends
            and ledger.in_flight
            and ledger.pending_resend() is not None
            and now - max(self._last_progress, self._last_write) > self._resend_settle()
        ):
            # Lines sent behind the one asked for, never answered: dropped or cut short.
            self._answer_all()
        if ledger.in_flight and ledger.oldest_slow:
            # Heating, homing or levelling: reports and busy lines come, the ok only at the end.
            if now - max(self._last_progress, self._last_heard) > self.config.slow_timeout_s:
                self._halt(
                    f"the printer on {self.port} has said nothing for {self.config.slow_timeout_s:g} s "
                    "while heating, homing or levelling: check the printer's screen"
                )
                return
        elif (
            ledger.in_flight
            and self._state is not StreamState.CONNECTING  # the handshake keeps its own deadline
            and now - self._last_progress > self.config.ok_timeout_s
        ):
            self._timeouts += 1
            self._last_progress = now
            action = on_ok_timeout(self.config, self._timeouts, now - self._quiet_since)
            if action is OkTimeout.GONE:
                # Each timeout before this one waited as long, with nothing at all from the printer.
                waited = self.config.ok_timeout_s * (self.config.max_timeouts + 1)
                self._halt(
                    f"the printer on {self.port} has not answered for {waited:g} s: "
                    "check the USB cable and the printer's screen"
                )
                return
            if action is OkTimeout.LOST:
                ledger.forget_oldest()
            # One M105 at a time: its ok T:... answers every line before it.
            if not ledger.asking_temperature and not any(item.command == "M105" for item in self._outbox):
                self._outbox.appendleft(_Outgoing("M105"))
        job = self._job
        # The end of a job first: a temperature poll queued now would keep it from ever looking idle.
        if job is not None and ledger.idle and not self._outbox:
            if self._state is StreamState.CANCELLING:
                self._finish_job(JobOutcome.CANCELLED, "cancelled; the cancel G-code ran")
                return
            if self._state is StreamState.PRINTING and peek_command(job) is None:
                self._finish_job(JobOutcome.DONE, f"printed {job.sent_lines} lines of {job.path.name}")
                return
        if (
            self._state is not StreamState.CONNECTING
            and not self._autoreport
            and now >= self._next_poll
            and not ledger.asking_temperature
        ):
            self._next_poll = now + self.config.temperature_interval_s
            self._outbox.append(_Outgoing("M105"))
        if job is None:
            return
        if now >= self._next_snapshot and self._listener is not None:
            self._next_snapshot = now + self.config.snapshot_interval_s
            self._emit_snapshot()

    def _next_deadline(self, now: float) -> float:
        deadlines = [self.config.snapshot_interval_s]
        if self._ledger.in_flight and not self._ledger.oldest_slow:
            deadlines.append(self._last_progress + self.config.ok_timeout_s - now)
        if self._ledger.pending_resend() is not None and self._ledger.careful_resends:
            if self._ledger.in_flight:
                quiet = max(self._last_progress, self._last_write) + self._resend_settle()
                deadlines.append(quiet - now)
            deadlines.append(self._quiet_until - now)
        if not self._autoreport and self._state is not StreamState.CONNECTING:
            deadlines.append(self._next_poll - now)
        return max(0.001, min(deadlines))

    def _finish_job(self, outcome: JobOutcome, message: str) -> None:
        job = self._job
        if job is None:
            return
        job.stream.close()
        job.result = JobResult(
            outcome=outcome,
            message=message,
            lines_sent=job.sent_lines,
            resends=self._ledger.resends - job.resends_at_start,
            elapsed_s=round(time.monotonic() - job.started, 3),
        )
        self._last_job = job
        self._job = None
        if self._state in JOB_STATES:
            self._set_state(StreamState.IDLE)
        result = job.result
        job.finished.set()
        callback = getattr(self._listener, "on_job_finished", None)
        if callback is not None:
            self._events.append(lambda: callback(result))

    def _fail_job(self, message: str) -> None:
        if self._job is not None:
            self._finish_job(JobOutcome.FAILED, message)

    def _set_state(self, state: StreamState) -> None:
        if state is not self._state:
            self._state = state
            self._emit_snapshot()

    def _emit_snapshot(self) -> None:
        callback = getattr(self._listener, "on_snapshot", None)
        if callback is not None:
            snapshot = self._snapshot_locked()
            self._events.append(lambda: callback(snapshot))

    def _flush_events(self) -> None:
        with self._cond:
            events, self._events = self._events, []
        for event in events:
            event()

    def _snapshot_locked(self) -> StreamerSnapshot:
        job = self._job or self._last_job
        running = self._job is not None
        if job is None:
            return StreamerSnapshot(
                self._state, None, 0, None, 0, 0, 0.0, None, dict(self._temperatures), self._error, 0, 0.0
            )
        elapsed = (
            (time.monotonic() - job.started) if running else (job.result.elapsed_s if job.result else 0.0)
        )
        total = max(1, job.total_bytes)
        progress_time = None
        if job.line_times is not None:
            progress_time = 100.0 * job.time_done / job.total_time if job.total_time > 0 else 100.0
        return StreamerSnapshot(
            state=self._state,
            file=str(job.path),
            sent_lines=job.sent_lines,
            total_lines=job.total_lines,
            bytes_done=job.bytes_done,
            total_bytes=job.total_bytes,
            progress_bytes=min(100.0, 100.0 * job.bytes_done / total),
            progress_time=None if progress_time is None else min(100.0, progress_time),
            temperatures=dict(self._temperatures),
            error=self._error,
            resends=self._ledger.resends - job.resends_at_start,
            elapsed_s=round(elapsed, 3),
        )

    def _enqueue(self, command: str, kind: _Kind = _Kind.COMMAND) -> _Outgoing:
        item = _Outgoing(command, kind)
        with self._cond:
            self._outbox.append(item)
            self._cond.notify_all()
        return item
