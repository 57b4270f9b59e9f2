"""Stream G-code to a printer's firmware over a serial port: the one module that imports pyserial.

Two threads per connection. The reader parses each reply (:mod:`.lineproto`) and updates the
:class:`~.window.LineLedger`; the sender writes whatever the window allows, in this order: lines the
firmware asked for again, queued commands (manual, housekeeping, pause and cancel G-code), then the
file. Every line is numbered and checksummed, housekeeping included, so a garbled ``M105`` is caught
like any other line and the numbering never has gaps.

How far ahead of the ``ok``s it sends is the :class:`~.learning.WindowPolicy`'s: a receive buffer
the user gave, or one learned from ping-pong upwards (and remembered per printer).

A lost ``ok`` (nothing but temperature reports for ``ok_timeout_s``, and no ``busy:``) is recovered
by taking the oldest line as answered and sending a fresh numbered ``M105``: its ``ok T:...`` tells
which lines are done, and a line that truly never arrived makes the firmware ask for it by number.
A firmware's ``wait`` (idle, nothing buffered) answers every line in flight at once. While the oldest
line in flight heats, homes or levels, no ``ok`` is expected for up to ``slow_timeout_s``.
A numbered line is sent twice only when the firmware asks for it; when the firmware's counter has run
past the last line sent, ``M110`` renumbers and what it did not run goes again under new numbers.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Optional

import serial

from .jobfile import BadGcodeFile, Job, check_file, peek_command
from .learning import WindowPolicy, start_level
from .lineproto import ErrorClass, Reply, ReplyKind, last_line_of, parse_reply, strip_comment
from .stream_types import (
    HOUSEKEEPING,
    JOB_STATES,
    MAX_REPLY_BYTES,
    FirmwareInfo,
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


class SerialStreamer:
    """One printer on one serial port: connect, stream jobs, send commands, report progress."""

    def __init__(
        self,
        port: str,
        baud: int,
        *,
        config: StreamerConfig = StreamerConfig(),
        listener: Optional[StreamListener] = None,
    ) -> None:
        self.port = port
        self.baud = baud
        self.config = config
        self._listener = listener
        self._cond = threading.Condition()
        self._serial: Optional[serial.Serial] = None
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

    def _new_policy(self) -> WindowPolicy:
        return WindowPolicy(
            fixed_bytes=self.config.rx_buffer_bytes,
            widen_after=self.config.widen_after,
            max_lines=self.config.max_inflight,
        )

    def _new_ledger(self) -> LineLedger:
        ledger = LineLedger(history=self.config.history, resend_limit=self.config.resend_limit)
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

    # --- public API ------------------------------------------------------------------------------

    def connect(self) -> FirmwareInfo:
        """Open the port, agree on line numbers (M110), ask the firmware what it is (M115) and start
        temperature reports. Raises :class:`PrinterUnreachable` when the firmware does not answer."""
        with self._cond:
            if self._state is not StreamState.DISCONNECTED:
                raise RuntimeError(f"already connected to {self.port}")
            try:
                self._serial = serial.Serial(
                    self.port, self.baud, timeout=self.config.read_timeout_s, write_timeout=None
                )
            except (serial.SerialException, OSError) as exc:
                raise PrinterUnreachable(f"cannot open the serial port {self.port}: {exc}") from exc
            self._closing = False
            self._error = None
            self._fatal = []
            self._policy = self._new_policy()
            self._ledger = self._new_ledger()
            self._set_state(StreamState.CONNECTING)
            self._last_progress = time.monotonic()
        self._threads = [
            threading.Thread(target=self._read_loop, name=f"serial-reader {self.port}", daemon=True),
            threading.Thread(target=self._send_loop, name=f"serial-sender {self.port}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        try:
            return self._handshake()
        except BaseException:
            self.close()
            raise

    def _handshake(self) -> FirmwareInfo:
        deadline = time.monotonic() + self.config.connect_timeout_s
        hello = self._enqueue("M110 N0", _Kind.RESET)
        while not hello.done.wait(self.config.hello_interval_s):
            self._check_alive()
            if time.monotonic() > deadline:
                raise PrinterUnreachable(
                    f"no answer from the printer on {self.port} at {self.baud} baud within "
                    f"{self.config.connect_timeout_s:g} s: check that it is on, the port and the baud rate"
                )
            hello = self._enqueue("M110 N0", _Kind.RESET)
        self._enqueue("M115")
        probe = self._enqueue("M105")
        if not probe.done.wait(max(0.0, deadline - time.monotonic())):
            self._check_alive()
            raise PrinterUnreachable(
                f"the printer on {self.port} answered M110 but not M115/M105 within "
                f"{self.config.connect_timeout_s:g} s"
            )
        with self._cond:
            self._autoreport = self._capabilities.get("AUTOREPORT_TEMP", False)
            self._advanced_ok = self._advanced_ok or self._capabilities.get("ADVANCED_OK", False)
            info = FirmwareInfo(
                name=self._firmware.get("FIRMWARE_NAME", "unknown firmware"),
                capabilities=dict(self._capabilities),
                advanced_ok=self._advanced_ok,
            )
            remembered = self._memory.recall(self.port, info.name) if self._memory else None
            self._remembered = remembered
            self._policy.start(*start_level(info.name, info.advanced_ok, remembered))
            self._apply_window()
            self._firmware_name = info.name
        if self._autoreport:
            interval = max(1, round(self.config.temperature_interval_s))
            self._enqueue(f"M155 S{interval}").done.wait(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._check_alive()
            self._next_poll = time.monotonic() + self.config.temperature_interval_s
            self._set_state(StreamState.IDLE)
        self._flush_events()
        return info

    def _check_alive(self) -> None:
        with self._cond:
            if self._state is StreamState.ERROR:
                raise PrinterUnreachable(self._error or f"the printer on {self.port} stopped")

    def start_job(self, path: Path, *, line_times: Optional[Sequence[float]] = None) -> None:
        """Start streaming ``path`` and return at once (see :meth:`wait_job`).

        ``line_times``: the estimated seconds of each command line of the file, in order (from the
        G-code analysis), for ``progress_time``.
        """
        path = Path(path)
        total_lines = check_file(path)
        stream = path.open("rb")
        with self._cond:
            if self._state is not StreamState.IDLE:
                stream.close()
                raise RuntimeError(f"cannot start a job while the streamer is {self._state.value}")
            now = time.monotonic()
            self._job = Job(
                path=path,
                stream=stream,
                total_bytes=path.stat().st_size,
                total_lines=total_lines,
                line_times=line_times,
                total_time=float(sum(line_times)) if line_times else 0.0,
                started=now,
                resends_at_start=self._ledger.resends,
            )
            self._set_state(StreamState.PRINTING)
            self._last_progress = now
            self._cond.notify_all()
        self._flush_events()

    def wait_job(self, timeout: Optional[float] = None) -> Optional[JobResult]:
        """The result of the current (or last) job once it ends; None on timeout or with no job."""
        with self._cond:
            job = self._job or self._last_job
        if job is None or not job.finished.wait(timeout):
            return None
        return job.result

    def pause(self) -> None:
        """Stop sending the file (lines in flight still run) and send the pause G-code."""
        with self._cond:
            if self._state is not StreamState.PRINTING:
                return
            self._set_state(StreamState.PAUSED)
            for command in self.config.pause_gcode:
                self._outbox.append(_Outgoing(command))
            self._cond.notify_all()
        self._flush_events()

    def resume(self) -> None:
        with self._cond:
            if self._state is not StreamState.PAUSED:
                return
            self._set_state(StreamState.PRINTING)
            self._last_progress = time.monotonic()
            self._cond.notify_all()
        self._flush_events()

    def cancel(self) -> None:
        """Stop sending the file, then send the cancel G-code; the job ends CANCELLED once it ran."""
        with self._cond:
            if self._state not in (StreamState.PRINTING, StreamState.PAUSED):
                return
            self._set_state(StreamState.CANCELLING)
            self._outbox.clear()
            if self._ledger.pending_resend() is not None:
                # Lines the firmware still wants belong to the cancelled file: renumber past them.
                self._outbox.append(_Outgoing(f"M110 N{self._ledger.next_number}", _Kind.RESET))
            for command in self.config.cancel_gcode:
                self._outbox.append(_Outgoing(command))
            self._cond.notify_all()
        self._flush_events()

    def send(self, command: str) -> None:
        """Queue a manual command (numbered in sequence; sent before the file's next line)."""
        command = strip_comment(command)
        if not command:
            return
        with self._cond:
            if self._state in (StreamState.DISCONNECTED, StreamState.ERROR):
                raise RuntimeError(f"cannot send {command!r}: the streamer is {self._state.value}")
            self._outbox.append(_Outgoing(command))
            self._cond.notify_all()

    def snapshot(self) -> StreamerSnapshot:
        with self._cond:
            return self._snapshot_locked()

    def close(self) -> None:
        """Close the port and stop the threads; a job still running ends FAILED."""
        with self._cond:
            self._closing = True
            self._fail_job("the connection was closed during the print")
            if self._state is not StreamState.ERROR:
                self._set_state(StreamState.DISCONNECTED)
            self._cond.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5.0)
        self._threads = []
        with self._cond:
            if self._serial is not None:
                with contextlib.suppress(Exception):
                    self._serial.close()
                self._serial = None
            self._state = StreamState.DISCONNECTED
        self._flush_events()

    def __enter__(self) -> SerialStreamer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the reader ------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        port = self._serial
        assert port is not None
        buffer = b""
        dropping = False
        while not self._closing:
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                if not self._closing:
                    self._lost(f"lost the connection to the printer on {self.port}: {exc}")
                return
            if not data:
                continue
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            if dropping and lines:  # the first line ending closes the overlong line being dropped
                lines, dropping = lines[1:], False
            if len(buffer) > MAX_REPLY_BYTES:  # no newline in sight: keep memory bounded
                buffer, dropping = b"", True
            with self._cond:
                try:
                    for line in lines:
                        self._on_reply(parse_reply(line))
                except Exception as exc:  # as in the sender: fail loudly
                    self._halt(f"the streamer stopped on an internal error: {exc!r}")
                # Write what the answers made room for from this thread: one thread hop less per ok.
                self._pump_guarded()
                self._cond.notify_all()
            self._flush_events()

    def _lost(self, message: str) -> None:
        with self._cond:
            self._error = message
            self._set_state(StreamState.ERROR)
            self._fail_job(message)
            self._cond.notify_all()
        self._flush_events()

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
            self._last_progress = now
            self._timeouts = 0
        elif kind is ReplyKind.RESEND:
            self._last_progress = now
            if reply.line is not None:
                self._resend(reply.line)
        elif kind is ReplyKind.BUSY:
            self._last_progress = now
            self._timeouts = 0
        elif kind is ReplyKind.WAIT:
            # Idle with nothing buffered: every line written well before this has been answered.
            if self._ledger.in_flight and now - self._last_write > WAIT_SETTLE_S:
                self._answer_all()
            self._last_progress = now
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

    def _resend(self, line: int) -> None:
        """Act on the firmware's request for ``line``: send it again, renumber, or give up."""
        if self._state is StreamState.ERROR:
            return
        in_flight = self._ledger.in_flight
        decision = self._ledger.request_resend(line)
        if decision.action in (ResendAction.RESEND, ResendAction.RESYNC):
            # A garbled line with several in flight: the receive buffer may be smaller than counted.
            if self._policy.on_corruption(in_flight):
                self._apply_window()
        if decision.action is ResendAction.FAILED:
            self._halt(decision.message)
        elif decision.action is ResendAction.RESYNC:
            redo = self._ledger.renumber()
            for command, token in reversed(redo):
                item = token if isinstance(token, _Outgoing) else _Outgoing(command)
                self._outbox.appendleft(item)
            self._outbox.appendleft(_Outgoing(f"M110 N{self._ledger.next_number}", _Kind.RESET))

    def _answer_all(self) -> None:
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
            try:
                self._memory.remember(self.port, name, held)
            except OSError:
                pass  # a read-only data dir costs only the learning next time

    def _halt(self, message: str) -> None:
        """Stop sending anything at once: the firmware is in trouble."""
        self._outbox.clear()
        self._error = message
        if self._state is not StreamState.ERROR:
            self._set_state(StreamState.ERROR)
        self._fail_job(message)

    # --- the sender ------------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                if self._closing:
                    return
                try:
                    self._pump_guarded()
                    now = time.monotonic()
                    self._tick(now)
                    wait = self._next_deadline(now)
                except Exception as exc:  # a bug must fail the job loudly, not leave it waiting for ever
                    self._halt(f"the streamer stopped on an internal error: {exc!r}")
                    wait = self.config.snapshot_interval_s
            self._flush_events()
            with self._cond:
                if not self._closing:
                    self._cond.wait(wait)

    def _pump_guarded(self) -> None:
        try:
            self._pump()
        except (serial.SerialException, OSError) as exc:
            self._error = f"lost the connection to the printer on {self.port}: {exc}"
            self._set_state(StreamState.ERROR)
            self._fail_job(self._error)

    def _pump(self) -> None:
        """Write every line the window has room for."""
        port = self._serial
        if port is None or self._state in (StreamState.ERROR, StreamState.DISCONNECTED):
            return
        ledger = self._ledger
        while True:
            resend = ledger.pending_resend()
            if resend is not None:
                number, data = resend
                if not ledger.fits(len(data)):
                    return
                port.write(data)
                self._last_write = time.monotonic()
                ledger.sent(number, len(data))
                continue
            if self._outbox:
                item = self._outbox[0]
                if item.kind is _Kind.RESET:
                    data = ledger.preview(item.command)  # same length as the reset line
                    if not ledger.fits(len(data)):
                        return
                    number, data = ledger.reset(int(item.command.split("N")[-1]))
                else:
                    data = ledger.preview(item.command)
                    if not ledger.fits(len(data)):
                        return
                    number, data = ledger.number(item.command)
                self._outbox.popleft()
                port.write(data)
                self._last_write = time.monotonic()
                ledger.sent(
                    number,
                    len(data),
                    asks_temperature=item.command == "M105",
                    token=item,
                    slow=_code(item.command) in SLOW_COMMANDS,
                )
                continue
            job = self._job
            if job is None or self._state is not StreamState.PRINTING:
                return
            command = peek_command(job)
            if command is None:
                return
            data = ledger.preview(command)
            if not ledger.fits(len(data)):
                return
            number, data = ledger.number(command)
            port.write(data)
            self._last_write = time.monotonic()
            code = _code(command)
            ledger.sent(number, len(data), asks_temperature=code == "M105", slow=code in SLOW_COMMANDS)
            job.pending = None
            job.sent_lines += 1
            job.bytes_done = job.pending_end
            if job.line_times is not None and job.sent_lines <= len(job.line_times):
                job.time_done += job.line_times[job.sent_lines - 1]

    def _tick(self, now: float) -> None:
        """Timers: the ok timeout, temperature polling, the end of a job, progress reports."""
        if self._state in (StreamState.ERROR, StreamState.DISCONNECTED):
            return
        ledger = self._ledger
        if ledger.in_flight and ledger.oldest_slow:
            # Heating, homing or levelling: reports and busy lines come, the ok only at the end.
            if now - max(self._last_progress, self._last_heard) > self.config.slow_timeout_s:
                self._halt(
                    f"the printer on {self.port} has said nothing for {self.config.slow_timeout_s:g} s "
                    "while heating, homing or levelling: check the printer's screen"
                )
                return
        elif ledger.in_flight and now - self._last_progress > self.config.ok_timeout_s:
            self._timeouts += 1
            self._last_progress = now
            if self._timeouts > self.config.max_timeouts:
                waited = self.config.ok_timeout_s * self.config.max_timeouts
                self._halt(
                    f"the printer on {self.port} has not answered for {waited:g} s: "
                    "check the USB cable and the printer's screen"
                )
                return
            ledger.forget_oldest()
            self._outbox.appendleft(_Outgoing("M105"))
        if (
            self._state is not StreamState.CONNECTING
            and not self._autoreport
            and now >= self._next_poll
            and not ledger.asking_temperature
        ):
            self._next_poll = now + self.config.temperature_interval_s
            self._outbox.append(_Outgoing("M105"))
        job = self._job
        if job is None:
            return
        if ledger.idle and not self._outbox:
            if self._state is StreamState.CANCELLING:
                self._finish_job(JobOutcome.CANCELLED, "cancelled; the cancel G-code ran")
                return
            if self._state is StreamState.PRINTING and peek_command(job) is None:
                self._finish_job(JobOutcome.DONE, f"printed {job.sent_lines} lines of {job.path.name}")
                return
        if now >= self._next_snapshot and self._listener is not None:
            self._next_snapshot = now + self.config.snapshot_interval_s
            self._emit_snapshot()

    def _next_deadline(self, now: float) -> float:
        deadlines = [self.config.snapshot_interval_s]
        if self._ledger.in_flight and not self._ledger.oldest_slow:
            deadlines.append(self._last_progress + self.config.ok_timeout_s - now)
        if not self._autoreport and self._state is not StreamState.CONNECTING:
            deadlines.append(self._next_poll - now)
        return max(0.001, min(deadlines))

    # --- jobs and listeners ----------------------------------------------------------------------

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


@dataclass(frozen=True)
class _ProgressListener:
    on_progress: Optional[Callable[[StreamerSnapshot], None]]

    def on_snapshot(self, snapshot: StreamerSnapshot) -> None:
        if self.on_progress is not None:
            self.on_progress(snapshot)

    def on_job_finished(self, result: JobResult) -> None:
        return None


def stream_file(
    port: str,
    baud: int,
    path: Path,
    *,
    config: StreamerConfig = StreamerConfig(),
    on_progress: Optional[Callable[[StreamerSnapshot], None]] = None,
) -> JobResult:
    """Connect, stream one file, close. A printer that does not answer is a FAILED result."""
    streamer = SerialStreamer(port, baud, config=config, listener=_ProgressListener(on_progress))
    started = time.monotonic()
    try:
        streamer.connect()
    except PrinterUnreachable as exc:
        return JobResult(JobOutcome.FAILED, exc.message, 0, 0, round(time.monotonic() - started, 3))
    try:
        streamer.start_job(path)
        result = streamer.wait_job()
        assert result is not None
        return result
    finally:
        streamer.close()


__all__ = [
    "HOUSEKEEPING",
    "BadGcodeFile",
    "FirmwareInfo",
    "JobOutcome",
    "JobResult",
    "PrinterUnreachable",
    "SerialStreamer",
    "StreamListener",
    "StreamState",
    "StreamerConfig",
    "StreamerSnapshot",
    "stream_file",
]
