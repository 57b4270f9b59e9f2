"""Stream G-code to a printer's firmware over a serial port: the one module that imports pyserial.

Two threads per connection. The reader parses each reply (:mod:`.lineproto`) and updates the
:class:`~.window.LineLedger`; the sender writes whatever the window allows, in this order: lines the
firmware asked for again, queued commands (manual, housekeeping, pause and cancel G-code), then the
file. Every line is numbered and checksummed, housekeeping included, so a garbled ``M105`` is caught
like any other line and the numbering never has gaps.

How far ahead of the ``ok``s it sends is the :class:`~.learning.WindowPolicy`'s: a receive buffer
the user gave, or one learned from ping-pong upwards (and remembered per printer).

After ``ok_timeout_s`` of nothing but temperature reports (no ``ok``, no ``busy:``) it asks with a
fresh numbered ``M105``, sent when it fits the window like any line: its ``ok T:...`` tells which
lines are done, and a line that truly never arrived makes the firmware ask for it by number. The
lines in flight stay counted meanwhile, as the ``ok`` may only be late: while one long move runs,
Marlin answers nothing and the lines sent ahead still fill its receive buffer. Only after
``lost_ok_s`` of such silence does the oldest line's ``ok`` count as lost and its bytes free, making
room for the ``M105`` when lost ``ok``s left the window full of lines the firmware already answered.
A firmware's ``wait`` (idle, nothing buffered) answers every line in flight at once. While the oldest
line in flight heats, homes or levels, no ``ok`` is expected for up to ``slow_timeout_s``.
A numbered line is sent twice only when the firmware asks for it; when the firmware's counter has run
past the last line sent, ``M110`` renumbers and what it did not run goes again under new numbers.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import serial

from .jobfile import BadGcodeFile, Job, check_file, peek_command
from .learning import start_level
from .lineproto import parse_reply, strip_comment
from .stream_core import SLOW_COMMANDS, StreamerCore, _code, _Kind, _Outgoing
from .stream_types import (
    HOUSEKEEPING,
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


class SerialStreamer(StreamerCore):
    """One printer on one serial port: connect, stream jobs, send commands, report progress.

    Constructed as :class:`~.stream_core.StreamerCore` is; the port opens in :meth:`connect`.
    """

    _serial: Optional[serial.Serial] = None  # the open port, between connect() and close()

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
            self._progress(time.monotonic())
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
            self._progress(now)
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
            self._progress(time.monotonic())
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
                if not ledger.fits(len(data)) or time.monotonic() < self._quiet_until:
                    return
                if self._partial_may_linger:
                    # End a line cut short in the firmware's buffer, so the resent one is not
                    # merged into it; wait for what the firmware says about it, then resend.
                    self._partial_may_linger = False
                    port.write(b"\n")
                    self._last_write = time.monotonic()
                    self._progress(self._last_write)
                    self._quiet_until = self._last_write + self._resend_settle()
                    return
                self._write(port, data)
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
                self._write(port, data)
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
            self._write(port, data)
            code = _code(command)
            ledger.sent(number, len(data), asks_temperature=code == "M105", slow=code in SLOW_COMMANDS)
            job.pending = None
            job.sent_lines += 1
            job.bytes_done = job.pending_end
            if job.line_times is not None and job.sent_lines <= len(job.line_times):
                job.time_done += job.line_times[job.sent_lines - 1]

    def _write(self, port: serial.Serial, data: bytes) -> None:
        """Write one line; the ok timeout of a line sent with nothing else in flight starts now.

        The timeout counts from the last answer, which may be long past when the printer had nothing to
        answer (idle, temperatures reported on their own): that wait is not the printer's silence.
        """
        port.write(data)
        self._last_write = time.monotonic()
        if not self._ledger.in_flight:
            self._progress(self._last_write)

    # --- jobs and listeners ----------------------------------------------------------------------


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
    config: StreamerConfig = StreamerConfig(),  # noqa: B008 (frozen, so one shared default is safe)
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
    "check_file",
    "stream_file",
]
