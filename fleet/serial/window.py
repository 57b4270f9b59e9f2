"""Line numbers, resend history and the send window of one serial line, as a pure object (no I/O).

The firmware answers every line it reads with one ``ok``, in order, including the lines it rejects
(those also get ``Error:`` and ``Resend: N``). So the lines in flight form a queue: each ``ok`` takes
the oldest off. Some ``ok``s say which line they answer, and resynchronise the queue when an ``ok`` was
lost on the way: ADVANCED_OK's ``ok N12`` and the ``ok T:...`` that answers an ``M105``.

The window keeps the firmware's receive buffer from overflowing: the bytes of every line in flight
count against ``rx_buffer_bytes`` until its ``ok`` (a line that has moved on into the command queue
still counts, which errs on the safe side). ADVANCED_OK's free-slot count (``B``) does not widen the
window: a firmware reads its receive buffer only between commands, so while it is busy every byte
sent waits there, whatever the free slots. What ADVANCED_OK does give is the line number in each
``ok``, which recovers a lost ``ok`` at once instead of after a timeout.
A line is never numbered twice: a resend re-sends the same bytes from the history.

After a resend request the lines go one at a time until the last line asked for is answered: the
firmware may still hold bytes of the lines that were in flight (a firmware that does not flush its
buffer on an error reads them after the request), and a line sent behind them can arrive merged with
a cut one and be lost for good on a firmware that miscounts such a line.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Optional

from .lineproto import Reply, frame, unframe


class ResendAction(str, Enum):
    RESEND = "resend"  # send again from the line asked for
    RESYNC = "resync"  # the firmware counts past what was sent: renumber (M110) and send again
    REWIND = "rewind"  # it asks past a line it never had: reset its counter to before that line
    IGNORED = "ignored"  # a repeat from the same error burst, or a line not sent yet
    FAILED = "failed"  # cannot be honoured: the job must stop


@dataclass(frozen=True)
class ResendDecision:
    action: ResendAction
    line: int
    message: str = ""


@dataclass(frozen=True)
class InFlight:
    """One line sent and not yet answered. ``token`` is the sender's own tag for it."""

    number: Optional[int]
    size: int
    serial: int
    asks_temperature: bool = False
    token: object = None
    slow: bool = False  # a command that may take minutes before its ok (heating, homing, levelling)


class LineLedger:
    """Numbering, bounded history, the lines in flight and resend bookkeeping for one connection."""

    def __init__(
        self,
        *,
        rx_buffer_bytes: int = 128,
        max_inflight: Optional[int] = None,
        history: int = 1000,
        resend_limit: int = 10,
    ) -> None:
        if rx_buffer_bytes < 16:
            raise ValueError("rx_buffer_bytes must be at least 16 (a firmware buffers one line at least)")
        if max_inflight is not None and max_inflight < 1:
            raise ValueError("max_inflight must be 1 (ping-pong) or more, or None")
        if history < 1:
            raise ValueError("history must keep at least one line")
        self.rx_buffer_bytes = rx_buffer_bytes
        self.max_inflight = max_inflight
        self.history_size = history
        self.resend_limit = resend_limit
        self.next_number = 1
        self.resends = 0
        self._history: deque[bytes] = deque()
        self._history_base = 1
        self._floor = 0
        self._flight: deque[InFlight] = deque()
        self._flight_bytes = 0
        self._serial = 0
        #: The firmware's free command-queue slots at its last ADVANCED_OK report (for display).
        self.free_slots: Optional[int] = None
        self._resend_next: Optional[int] = None
        self._resend_end = 0
        self._burst_line: Optional[int] = None
        self._burst_serial = 0
        self._last_request: Optional[int] = None
        self._repeats = 0
        #: While set, one line in flight at a time: a resend up to this line is not yet answered.
        self._recover_until: Optional[int] = None
        #: Whether resends go one line at a time (off when the user gave the buffer size: trusted).
        self.careful_resends = True

    # --- numbering -------------------------------------------------------------------------------

    def preview(self, command: str) -> bytes:
        """The bytes ``command`` would go out as if numbered now."""
        return frame(self.next_number, command)

    def number(self, command: str) -> tuple[int, bytes]:
        """Give ``command`` the next line number and keep its bytes for resends."""
        number = self.next_number
        data = frame(number, command)
        self._history.append(data)
        if len(self._history) > self.history_size:
            self._history.popleft()
            self._history_base += 1
        self.next_number += 1
        return number, data

    def reset(self, number: int = 0) -> tuple[int, bytes]:
        """Number the line ``M110 N<number>`` sets the firmware's counter with; earlier lines are gone.

        Lines still in flight may yet be rejected with a resend request for an older line: those
        requests count as part of the burst before the reset and are not honoured.
        """
        self._history.clear()
        self._history_base = number
        self.next_number = number
        self._floor = number
        self._resend_next = None
        self._burst_line = number
        self._burst_serial = self._serial
        self._last_request = None
        self._repeats = 0
        self._recover_until = None
        return self.number(f"M110 N{number}")

    # --- the window ------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._flight)

    @property
    def in_flight_bytes(self) -> int:
        return self._flight_bytes

    @property
    def idle(self) -> bool:
        """Nothing in flight and nothing waiting to be sent again."""
        return not self._flight and self._resend_next is None

    @property
    def asking_temperature(self) -> bool:
        return any(entry.asks_temperature for entry in self._flight)

    def fits(self, size: int) -> bool:
        """Whether a line of ``size`` bytes may go out now without overfilling the firmware."""
        if not self._flight:
            return True
        if self._recover_until is not None:
            return False
        if self.max_inflight is not None and len(self._flight) >= self.max_inflight:
            return False
        return self._flight_bytes + size <= self.rx_buffer_bytes

    def sent(
        self,
        number: Optional[int],
        size: int,
        *,
        asks_temperature: bool = False,
        token: object = None,
        slow: bool = False,
    ) -> InFlight:
        """Record a line written to the port (``number`` None for an un-numbered line)."""
        self._serial += 1
        entry = InFlight(number, size, self._serial, asks_temperature, token, slow)
        self._flight.append(entry)
        self._flight_bytes += size
        if number is not None and number == self._resend_next:
            self._resend_next = number + 1 if number < self._resend_end else None
        return entry

    def acknowledge(self, reply: Reply) -> list[InFlight]:
        """Take the lines an ``ok`` answers off the queue (the oldest, or up to the line it names)."""
        if reply.buffer_free is not None:
            self.free_slots = reply.buffer_free
        if not self._flight:
            return []
        count = 1
        if reply.line is not None:
            count = self._position(lambda entry: entry.number == reply.line)
        elif reply.temperatures:
            count = self._position(lambda entry: entry.asks_temperature)
        done = [self._flight.popleft() for _ in range(count)]
        self._flight_bytes -= sum(entry.size for entry in done)
        self._recovered(done)
        return done

    @property
    def recovering(self) -> bool:
        """Whether a resend is under way or not yet answered (one line in flight at a time)."""
        return self._recover_until is not None

    def _recovered(self, done: list[InFlight]) -> None:
        end = self._recover_until
        answered = any(entry.number is not None and entry.number >= (end or 0) for entry in done)
        if end is not None and self._resend_next is None and answered:
            self._recover_until = None

    def forget_oldest(self) -> Optional[InFlight]:
        """Take the oldest line as answered, its ``ok`` presumed lost: after a ``wait``, the quiet after
        a resend request, or a silence longer than a move takes. Never for an ``ok`` that may only be
        late: the firmware would still hold the line, and bytes sent in its place overrun its buffer."""
        if not self._flight:
            return None
        entry = self._flight.popleft()
        self._flight_bytes -= entry.size
        self._recovered([entry])
        return entry

    @property
    def oldest_slow(self) -> bool:
        """Whether the oldest line in flight may legitimately take minutes to answer."""
        return bool(self._flight) and self._flight[0].slow

    def full(self, typical_size: int = 32) -> bool:
        """Whether the window is (about) used up: only then does an ok prove that a wider one holds."""
        return bool(self._flight) and not self.fits(typical_size)

    def clear_flight(self) -> None:
        """The firmware restarted: nothing sent before is in flight any more."""
        self._flight.clear()
        self._flight_bytes = 0
        self.free_slots = None
        self._recover_until = None

    def _position(self, match: Callable[[InFlight], bool]) -> int:
        for index, entry in enumerate(self._flight):
            if match(entry):
                return index + 1
        return 1  # not ours: answer the oldest, as a plain ok would

    # --- resends ---------------------------------------------------------------------------------

    def request_resend(self, line: int) -> ResendDecision:
        """Act on ``Resend: line``: once per error burst, and never for ever."""
        line = max(line, self._floor)
        if line == self.next_number:
            # It has every line sent so far (the oks follow): nothing to send again.
            return ResendDecision(ResendAction.IGNORED, line, "the next line, not sent yet")
        if line > self.next_number:
            return ResendDecision(
                ResendAction.RESYNC, line, f"the firmware expects line {line}, past the last one sent"
            )
        held = self._resend_next
        if (
            held is not None
            and held == self._burst_line
            and line > held
            and self._serial == self._burst_serial
        ):
            # Nothing was sent since it asked for ``held``: a truthful firmware still expects it. One
            # that counted a garbled line as received (OctoPrint's VirtualPrinter) skipped it.
            return ResendDecision(ResendAction.REWIND, held, f"the firmware skipped line {held}")
        oldest = self._flight[0].serial if self._flight else self._serial + 1
        if line == self._burst_line and oldest <= self._burst_serial:
            return ResendDecision(ResendAction.IGNORED, line, "repeat of the same error burst")
        if line < self._history_base:
            return ResendDecision(
                ResendAction.FAILED,
                line,
                f"the firmware asked for line {line} again, but only the last {self.history_size} lines "
                f"are kept (from line {self._history_base}): the print cannot continue safely",
            )
        self._repeats = self._repeats + 1 if line == self._last_request else 1
        self._last_request = line
        if self._repeats > self.resend_limit:
            return ResendDecision(
                ResendAction.FAILED,
                line,
                f"the firmware asked for line {line} {self._repeats} times in a row: the serial line is "
                "too noisy (check the USB cable, its shielding and the baud rate)",
            )
        self._resend_next = line
        self._resend_end = self.next_number - 1
        self._recover_until = self._resend_end if self.careful_resends else None
        self._burst_line = line
        self._burst_serial = self._serial
        self.resends += 1
        return ResendDecision(ResendAction.RESEND, line)

    def renumber(self) -> list[tuple[str, object]]:
        """The commands of every line not yet answered, oldest first, to send again under new numbers
        after an ``M110``: what a firmware whose counter ran past ours has not run. Their numbers are
        never used again."""
        numbered = [entry for entry in self._flight if entry.number is not None]
        redo: list[tuple[str, object]] = []
        if numbered:
            first = max(numbered[0].number or 0, self._history_base)
            tokens = {entry.number: entry.token for entry in numbered}
            for number in range(first, self.next_number):
                command = unframe(self._history[number - self._history_base])
                if not command.startswith("M110"):
                    redo.append((command, tokens.get(number)))
        self._resend_next = None
        self._recover_until = None
        self._flight.clear()
        self._flight_bytes = 0
        return redo

    def rewind(self, start: int) -> list[str]:
        """The commands from line ``start`` on, to send again after ``M110 N<start - 1>``."""
        first = max(start, self._history_base)
        redo = [
            unframe(self._history[number - self._history_base]) for number in range(first, self.next_number)
        ]
        self._resend_next = None
        self._recover_until = None
        self._flight.clear()
        self._flight_bytes = 0
        return [command for command in redo if not command.startswith("M110")]

    def pending_resend(self) -> Optional[tuple[int, bytes]]:
        """The next line to send again, if a resend is under way."""
        if self._resend_next is None:
            return None
        return self._resend_next, self._history[self._resend_next - self._history_base]
