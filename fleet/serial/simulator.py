"""A Marlin-like firmware on a real pseudo-terminal: a device any host opens by path, like a USB printer.

One thread runs the device: it ``select()``s on the pty and keeps a time model of everything else
(the line rate in both directions, the receive buffer, the command queue, moves, heaters, timers),
so it costs little Python per line. It stays one module of some 600 lines because that loop and the
time model share every timer; its options, M115 reply and pure pieces live in ``sim_options.py`` and
``sim_core.py``, reply wording per firmware family in ``dialects.py``.

Choices worth knowing:

- The command queue holds ``buffer_size`` commands, the one executing included. A command gets its
  ``ok`` when it enters the queue; while the queue is full nothing more is read from the receive
  buffer, so the ``ok`` is withheld. Commands whose handler waits in Marlin (G4, G28, M109, M190, M400,
  M114 and unknown commands) get their ``ok`` only when they finish, and nothing is read meanwhile.
- Host queries (``HOST_COMMANDS``: M105, M110, M115, M155) are answered as soon as they are read and
  are not part of ``executed``; M112 acts as soon as it is received (Marlin's emergency parser).
- M0, M1 and M600 wait for ``press_button()`` (the user's click) or their own S/P time, in wall-clock
  time whatever the speedup, saying the dialect's ``paused for user`` line every ``busy_interval_s``.
  A dialect that says ``wait`` when idle (Marlin 1.1) does so every ``idle_wait_s`` with nothing
  received and nothing queued.
- ``speedup=math.inf`` makes moves, dwells, homing and heating take no time; 0 is refused.
- After a kill (M112, thermal runaway) the device stays silent and discards what it receives; M999
  does not revive it, as a real board needs a reset. Start a new ``SimulatedFirmware`` instead.
- After a line error the receive buffer is not flushed (as on 32-bit boards), so lines the host sent
  ahead are refused one by one, each with its own ``Resend:``.
- Bytes that reach a full receive buffer are dropped, as a board drops them, and counted in
  ``overrun_bytes``: a host that keeps to the buffer's size leaves it at 0.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import select
import threading
import time
import tty
from collections import deque
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import IO, Optional

from fleet.serial.dialects import dialect
from fleet.serial.sim_core import (
    BUSY,
    KILLED,
    PAUSED,
    RESEND,
    THERMAL_RUNAWAY,
    UNKNOWN_COMMAND,
    Heater,
    LineError,
    Motion,
    check_line,
    command_code,
    temperature_report,
    words,
)
from fleet.serial.sim_options import SimulatorOptions, capability_lines

HOST_COMMANDS = frozenset({"M105", "M110", "M115", "M155"})
"""Host bookkeeping and polling: answered, but not recorded in ``SimulatedFirmware.executed``."""

HEATING_REPORT_INTERVAL_S = 1.0
_READ_CHUNK = 4096
_WAKE_EARLY_S = 0.0001
_BYTE_TOLERANCE = 1e-3  # clock arithmetic near 1e5 s loses ~1e-11 s; never a whole byte
_MAX_STAGED_BYTES = 65536

_SILENT = frozenset(
    {"G21", "G90", "G91", "G92", "M17", "M18", "M82", "M83", "M84", "M104", "M106", "M107", "M140", "M999"}
    | {"M73", "M117", "M201", "M203", "M204", "M205", "M220", "M221", "M900", "M907", "T0", "G29", "G80"}
)
_MOVES = frozenset({"G0", "G1", "G2", "G3"})
_ERROR_KINDS = {
    LineError.CHECKSUM: "checksum",
    LineError.LINE_NUMBER: "line_number",
    LineError.NO_CHECKSUM: "no_checksum",
}
#: Wait for the user's click on the knob (``press_button``), or for their S (seconds) or P (ms) if given.
_PAUSES = frozenset({"M0", "M1", "M600"})
_WAITING = frozenset({"G4", "G28", "M109", "M190", "M400", "M114"}) | _PAUSES


class Reply(Enum):
    """When a queued command's ``ok`` is sent."""

    ON_ENQUEUE = "on enqueue"
    ON_DONE = "on done"


@dataclass(frozen=True)
class _Entry:
    command: str
    code: str
    number: Optional[int]
    reply: Reply
    duration_s: float = 0.0


class SimulatedFirmware:
    """A Marlin-like printer behind a pty: ``start()`` returns the device path a host opens."""

    def __init__(self, options: SimulatorOptions = SimulatorOptions()) -> None:  # noqa: B008 (frozen)
        self.options = options
        self._dialect = dialect(options.dialect) if options.dialect else None
        busy = self._dialect.busy if self._dialect else BUSY
        self._busy_line = busy or ""
        self._busy_interval = options.busy_interval_s if busy else 0.0
        self._paused_line = (self._dialect.paused if self._dialect else PAUSED) or ""
        self._busy_now = self._busy_line
        self._says_wait = self._dialect is not None and self._dialect.wait_when_idle
        self._next_wait = math.inf
        self._rate = options.baud / 10.0 if options.baud else math.inf
        self._speedup = options.speedup
        self._rng = random.Random(options.seed)  # noqa: S311 (reproducible noise, not secrets)
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._master = -1
        self._slave = -1
        self._wake_r, self._wake_w = -1, -1
        self._stopping = False
        self._log: Optional[IO[str]] = None
        # Device state, touched only by the device thread (under self._cond where readers look).
        self._executed: list[str] = []
        self._killed = False
        self._halted_reason: Optional[str] = None
        self._closed = False
        self._hotend = Heater(options.heat_rate_c_per_s * options.speedup)
        self._bed = Heater(options.heat_rate_c_per_s * options.speedup)
        self._motion = Motion()
        self._last_line = 0
        self._numbered_oks = 0
        self._staged = bytearray()
        self._staged_start = 0.0
        self._rx = bytearray()
        self._overrun_bytes = 0
        self._queue: deque[_Entry] = deque()
        self._head_end = math.inf
        self._waiting_on_head = False
        self._next_busy = math.inf
        self._next_heating_report = math.inf
        self._autoreport_s = 0.0
        self._next_autoreport = math.inf
        self._out_free = 0.0
        self._out: deque[tuple[float, bytes]] = deque()
        self._write_buf = bytearray()

    # -- public API -----------------------------------------------------------------------------

    def start(self) -> str:
        """Create the pty, boot (``start``) and run the device thread; returns the device path."""
        if self._thread is not None:
            raise RuntimeError("this simulated firmware was already started; make a new one")
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self._wake_r, self._wake_w = os.pipe()
        if self.options.log_path is not None:
            self._log = open(self.options.log_path, "a", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        path = os.ttyname(self._slave)
        # Marlin's boot line, written before the path is handed out: it waits in the pty for whoever
        # opens it first (pyserial discards it on open, as it would a board's boot chatter).
        for line in self._dialect.boot if self._dialect else ("start",):
            self._emit(line, time.monotonic())
        self._flush_due(math.inf)
        self._idle_from(time.monotonic())
        self._thread = threading.Thread(target=self._run, name=f"simulated-firmware {path}", daemon=True)
        self._thread.start()
        return path

    def stop(self) -> None:
        """Stop the device thread and close the pty; safe to call more than once."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join()
        self._close_device()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SimulatedFirmware:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def executed(self) -> list[str]:
        """Every command executed so far, in order, without line number or checksum; no host queries."""
        with self._cond:
            return list(self._executed)

    @property
    def killed(self) -> bool:
        with self._cond:
            return self._killed

    @property
    def overrun_bytes(self) -> int:
        """Bytes that reached a full receive buffer and were dropped, as a real board drops them."""
        with self._cond:
            return self._overrun_bytes

    @property
    def halted_reason(self) -> Optional[str]:
        """Why the device stopped executing (kill or disconnect), or None while it runs."""
        with self._cond:
            return self._halted_reason

    def temperatures(self) -> dict[str, tuple[float, float]]:
        """``{"T0": (actual, target), "B": (actual, target)}`` now."""
        now = time.monotonic()
        with self._cond:
            return {
                "T0": (self._hotend.actual(now), self._hotend.target),
                "B": (self._bed.actual(now), self._bed.target),
            }

    def press_button(self) -> bool:
        """The user's click on the knob: ends an M0/M1/M600 wait. False if none is waiting."""
        with self._cond:
            if self._killed or self._closed or not self._queue or self._queue[0].code not in _PAUSES:
                return False
            self._head_end = min(self._head_end, time.monotonic())
        os.write(self._wake_w, b"x")
        return True

    def wait_paused(self, timeout: float) -> bool:
        """Wait until an M0/M1/M600 waits for the user; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._queue) and self._queue[0].code in _PAUSES, timeout)

    def wait_executed(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` commands have been executed; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._executed) >= count, timeout)

    # -- the device loop ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            # select() wakes up about a tenth of a millisecond late, so aim that much early.
            horizon = time.monotonic() + _WAKE_EARLY_S
            with self._cond:
                if self._stopping:
                    return
                self._advance(horizon)
                self._flush_due(horizon)
                wake = self._next_wake() - _WAKE_EARLY_S
            if self._closed:
                return
            readers = [self._master, self._wake_r]
            writers = [self._master] if self._write_buf else []
            timeout = None if math.isinf(wake) else max(0.0, wake - time.monotonic())
            readable, writable, _ = select.select(readers, writers, [], timeout)
            if self._wake_r in readable:
                os.read(self._wake_r, 64)
            if self._master in writable:
                self._write()
            if self._master in readable and len(self._staged) < _MAX_STAGED_BYTES:
                self._read()

    def _read(self) -> None:
        try:
            data = os.read(self._master, _READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # no slave open: nothing to read
            return
        now = time.monotonic()
        with self._cond:
            self._advance(now)
            if self._killed:
                return
            if math.isinf(self._rate):
                self._arrive(bytes(data), now)
            else:
                if not self._staged:
                    self._staged_start = max(self._staged_start, now)
                self._staged += data
                self._advance(now)
                # Lines already here are handled now, at the time their last byte crosses the line:
                # the outcome only depends on that time, and it saves a wake-up per line.
                end = _line_end(self._staged)
                while end >= 0 and self._reading() and not self._killed and not self._closed:
                    left = len(self._staged)
                    self._advance(self._staged_start + (end + 1) / self._rate)
                    if len(self._staged) == left:
                        break
                    end = _line_end(self._staged)
            self._advance(now)

    def _write(self) -> None:
        try:
            written = os.write(self._master, self._write_buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._write_buf.clear()
            return
        del self._write_buf[:written]

    def _next_wake(self) -> float:
        wake = min(self._head_end, self._next_busy, self._next_heating_report, self._next_autoreport)
        wake = min(wake, self._next_wait)
        if self._out:
            wake = min(wake, self._out[0][0])
        if self._staged and self._reading():
            end = _line_end(self._staged)
            if end >= 0:
                wake = min(wake, self._staged_start + (end + 1) / self._rate)
        return wake

    def _advance(self, now: float) -> None:
        """Play every event up to ``now`` in time order: bytes arriving, commands finishing, timers."""
        while not self._killed and not self._closed and self._head_end <= now:
            due = self._head_end
            self._timers(due)
            self._transfer(due)
            self._parse(due)
        if not self._killed and not self._closed:
            self._timers(now)
            self._transfer(now)
            self._parse(now)

    def _timers(self, until: float) -> None:
        while self._next_busy <= until:
            self._emit(self._busy_now, self._next_busy)
            self._next_busy += self._busy_interval
        while self._next_heating_report <= until:
            at = self._next_heating_report
            self._emit(f" {temperature_report(self._hotend, self._bed, at)} W:?", at)
            self._next_heating_report += HEATING_REPORT_INTERVAL_S
        while self._next_autoreport <= until:
            at = self._next_autoreport
            self._emit(f" {temperature_report(self._hotend, self._bed, at)}", at)
            self._next_autoreport += self._autoreport_s
        while self._next_wait <= until:
            if self._queue or self._rx or self._staged:
                self._next_wait = math.inf  # armed again when the queue empties
                break
            self._emit("wait", self._next_wait)
            self._next_wait += self.options.idle_wait_s

    def _idle_from(self, at: float) -> None:
        """Marlin 1.1 says ``wait`` after ``idle_wait_s`` with nothing received and nothing queued."""
        if self._says_wait:
            self._next_wait = at + self.options.idle_wait_s

    # -- receiving ------------------------------------------------------------------------------

    def _reading(self) -> bool:
        """Marlin reads its receive buffer only while the command queue has room and no handler waits."""
        return len(self._queue) < self.options.buffer_size and not self._waiting_on_head

    def _arrive(self, data: bytes, at: float) -> None:
        """Bytes landing in the receive buffer at once: what does not fit is lost. While the firmware
        reads, its first line passes whole even if longer than the buffer (it drains as bytes come)."""
        reading = self._reading()
        held = 0 if reading else len(self._rx)
        room = max(0, self.options.rx_buffer_bytes - held)
        if reading and not self._rx:
            room = max(room, _line_end(data) + 1)
        self._rx += data[:room]
        self._overrun_bytes += max(0, len(data) - room)
        if not self._reading() and b"M112" in self._rx:
            self._kill("M112 emergency stop", at)
            return
        self._parse(at)

    def _transfer(self, until: float) -> None:
        """Move the bytes that have crossed the line by ``until`` into the receive buffer (baud mode)."""
        while self._staged and not self._killed and not self._closed:
            arrived = min(len(self._staged), int((until - self._staged_start) * self._rate + _BYTE_TOLERANCE))
            if arrived <= 0:
                return
            if not self._reading():
                self._arrive(self._take_staged(arrived), until)
                return
            end = _line_end(self._staged)
            if end < 0 or end >= arrived:
                self._rx += self._take_staged(arrived)
                return
            at = self._staged_start + (end + 1) / self._rate
            self._rx += self._take_staged(end + 1)
            self._parse(at)

    def _take_staged(self, count: int) -> bytes:
        taken = bytes(self._staged[:count])
        del self._staged[:count]
        self._staged_start += count / self._rate
        return taken

    def _parse(self, at: float) -> None:
        """Finish what is due, then turn complete lines in the receive buffer into commands."""
        while not self._killed and not self._closed:
            while self._head_end <= at:
                self._finish_head(self._head_end)
            if not self._reading():
                return
            end = _line_end(self._rx)
            if end < 0:
                return
            raw = bytes(self._rx[:end])
            del self._rx[: end + 1]
            self._handle(raw, at)

    def _handle(self, raw: bytes, at: float) -> None:
        text = raw.split(b";", 1)[0].strip()
        self._idle_from(at)
        if not text:
            return
        if self.options.corrupt_rate > 0 and self._rng.random() < self.options.corrupt_rate:
            # One bit of one byte, never a numbered line's leading N: a line that lost its N would
            # pass unchecked, and noise here stands for what a checksum catches.
            flipped = bytearray(text)
            first = 1 if text.startswith(b"N") and len(text) > 1 else 0
            flipped[self._rng.randrange(first, len(flipped))] ^= 0x01
            text = bytes(flipped)
        received = check_line(text.decode("latin-1"), self._last_line)
        if received.error is not None:
            if self._dialect is None:
                self._emit(received.error.message(self._last_line), at)
                self._emit(RESEND.format(line=self._last_line + 1), at)
            else:
                self._emit(self._dialect.error(_ERROR_KINDS[received.error], self._last_line), at)
                self._emit(self._dialect.resend.format(line=self._last_line + 1), at)
            self._emit("ok", at)
            return
        if received.number is not None:
            self._last_line = received.number
            if received.number == self.options.disconnect_at_line:
                self._disconnect(f"disconnected at line {received.number}")
                return
        command = received.command
        code = command_code(command)
        if code in HOST_COMMANDS or code == "M112":
            self._answer_now(code, command, received.number, at)
        else:
            self._enqueue(code, command, received.number, at)

    def _answer_now(self, code: str, command: str, number: Optional[int], at: float) -> None:
        if code == "M112":
            self._kill("M112 emergency stop", at)
        elif code == "M105":
            self._emit(f"ok {temperature_report(self._hotend, self._bed, at)}", at)
        elif code == "M110":
            if number is None and "N" in words(command):
                self._last_line = int(words(command)["N"])
            self._ok(number, at, counted=False)
        elif code == "M115":
            for line in capability_lines(self.options, self._dialect):
                self._emit(line, at)
            self._ok(number, at, counted=False)
        elif code == "M155" and self.options.autoreport_temperature:
            self._autoreport_s = max(0.0, words(command).get("S", 0.0))
            self._next_autoreport = at + self._autoreport_s if self._autoreport_s > 0 else math.inf
            self._ok(number, at, counted=False)
        else:
            self._emit(UNKNOWN_COMMAND.format(command=command), at)
            self._ok(number, at, counted=False)

    # -- the queue and execution ----------------------------------------------------------------

    def _enqueue(self, code: str, command: str, number: Optional[int], at: float) -> None:
        params = words(command)
        duration = 0.0
        if code in _MOVES:
            duration = self._motion.move(code, params)
        elif code == "G28":
            duration = self._motion.home(params)
        elif code == "G4":
            duration = params.get("S", 0.0) + params.get("P", 0.0) / 1000.0
        elif code in _PAUSES:
            timed = "S" in params or "P" in params
            duration = params.get("S", 0.0) + params.get("P", 0.0) / 1000.0 if timed else math.inf
        elif code in ("G90", "G91", "M82", "M83"):
            self._motion.set_mode(code)
        elif code == "G92":
            self._motion.set_position(params)
        waits = code in _WAITING or (code not in _SILENT and code not in _MOVES)
        entry = _Entry(command, code, number, Reply.ON_DONE if waits else Reply.ON_ENQUEUE, duration)
        self._queue.append(entry)
        if waits:
            self._waiting_on_head = True
        else:
            self._ok(number, at)
        if len(self._queue) == 1:
            self._start_head(at)

    def _start_head(self, at: float) -> None:
        entry = self._queue[0]
        if entry.number is not None and entry.number == self.options.thermal_runaway_at_line:
            self._emit(THERMAL_RUNAWAY.format(heater=0), at)
            self._kill(f"thermal runaway at line {entry.number}", at)
            return
        params = words(entry.command)
        seconds = 0.0 if math.isinf(self._speedup) else entry.duration_s / self._speedup
        if entry.code in _PAUSES:
            seconds = entry.duration_s  # the user's time, not the machine's: never compressed
        heaters = {"M104": self._hotend, "M109": self._hotend, "M140": self._bed, "M190": self._bed}
        heater = heaters.get(entry.code)
        if heater is not None:
            heater.set_target(at, params.get("S", params.get("R", heater.target)))
        if heater is not None and entry.code in ("M109", "M190"):
            seconds = heater.seconds_to_reach(at)  # the heater's rate already includes the speedup
            self._next_heating_report = at + HEATING_REPORT_INTERVAL_S if seconds > 0 else math.inf
        self._head_end = at + seconds
        interval, self._busy_now = self._busy_interval, self._busy_line
        if entry.code in _PAUSES:
            self._busy_now = self._paused_line
            interval = self.options.busy_interval_s if self._paused_line else 0.0
            self._cond.notify_all()  # wait_paused
        self._next_busy = at + interval if interval > 0 and seconds > interval else math.inf

    def _finish_head(self, at: float) -> None:
        entry = self._queue.popleft()
        self._head_end = math.inf
        self._next_busy = self._next_heating_report = math.inf
        self._idle_from(at)
        if entry.code == "M114":
            self._emit(self._motion.report(), at)
        elif entry.code not in _WAITING and entry.code not in _SILENT and entry.code not in _MOVES:
            self._emit(UNKNOWN_COMMAND.format(command=entry.command), at)
        self._executed.append(entry.command)
        if self._log is not None:
            self._log.write(entry.command + "\n")
            self._log.flush()
        self._cond.notify_all()
        if entry.reply is Reply.ON_DONE:
            self._waiting_on_head = False
            self._ok(entry.number, at)
        if self._queue:
            self._start_head(at)

    # -- replies and endings --------------------------------------------------------------------

    def _ok(self, number: Optional[int], at: float, counted: bool = True) -> None:
        if number is not None and counted:
            self._numbered_oks += 1
            every = self.options.drop_ok_every
            if every is not None and self._numbered_oks % every == 0:
                return
        if not self.options.advanced_ok:
            self._emit("ok", at)
            return
        free = self.options.buffer_size - len(self._queue)
        prefix = f" N{number}" if number is not None else ""
        self._emit(f"ok{prefix} P{free} B{free}", at)

    def _emit(self, text: str, at: float) -> None:
        """Queue one reply line; it reaches the host after the line time and the USB latency."""
        data = text.encode("latin-1", "replace") + b"\n"
        if math.isinf(self._rate):
            deliver = at
        else:
            self._out_free = max(self._out_free, at) + len(data) / self._rate
            deliver = self._out_free
        self._out.append((deliver + self.options.usb_latency_s, data))

    def _flush_due(self, now: float) -> None:
        while self._out and self._out[0][0] <= now:
            self._write_buf += self._out.popleft()[1]
        if self._write_buf and not self._closed:
            self._write()

    def _kill(self, reason: str, at: float) -> None:
        self._emit(KILLED, at)
        self._killed = True
        self._halted_reason = reason
        self._queue.clear()
        self._head_end = self._next_busy = self._next_heating_report = self._next_autoreport = math.inf
        self._next_wait = math.inf
        self._rx.clear()
        self._staged.clear()
        self._cond.notify_all()

    def _disconnect(self, reason: str) -> None:
        self._halted_reason = reason
        self._closed = True
        self._close_device()
        self._cond.notify_all()

    def _close_device(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1


def _line_end(buffer: bytes | bytearray) -> int:
    """Index of the first line terminator (LF or CR), or -1."""
    lf, cr = buffer.find(b"\n"), buffer.find(b"\r")
    if lf < 0:
        return cr
    return lf if cr < 0 else min(lf, cr)


__all__ = ["HOST_COMMANDS", "SimulatedFirmware", "SimulatorOptions"]
