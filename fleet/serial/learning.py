"""How much to send ahead of the ``ok``s when nobody told us the firmware's receive buffer: learn it.

Real boards keep anywhere from 32 to 2,048 bytes (and USB-CDC boards never drop); a host that counts
against the wrong size cuts and merges lines. So the window starts safe (one line in flight: what
OctoPrint's own host does), and widens one step of :data:`LADDER` each time the firmware has answered
``widen_after`` lines in a row with no corruption. A corruption-type resend (checksum, line number,
missing checksum) with more than one line in flight narrows it at once. A step that fails while on
trial becomes the ceiling; one that fails after it held is only left for a while (line noise happens).
The step that held is what :mod:`.window_memory` remembers for the next connection.

Pure: no clock, no I/O; the streamer feeds it events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

#: Byte budgets tried in order after ping-pong (index 0 is ping-pong itself).
LADDER: tuple[Optional[int], ...] = (None, 64, 128, 256, 512, 1024, 2048)


@dataclass(frozen=True)
class Window:
    """The current limits: ``max_lines`` None means limited by ``max_bytes`` only."""

    max_lines: Optional[int]
    max_bytes: int
    learned: bool  # False when the user (or a setting) fixed the buffer size


def level_for_bytes(size: int) -> int:
    """The highest ladder step whose budget fits in ``size`` bytes (0, ping-pong, when none does)."""
    level = 0
    for index, budget in enumerate(LADDER):
        if budget is not None and budget <= size:
            level = index
    return level


def start_level(firmware_name: str, advanced_ok: bool, remembered: Optional[int]) -> tuple[int, bool]:
    """Where to start and whether that step is still on trial.

    A remembered size held before on this printer: start there, trusted. ADVANCED_OK is Marlin 1.1.9+
    whose smallest stock receive buffer is 128 bytes (AVR): start there, on trial. Otherwise ping-pong,
    whatever the name says (a USB-native firmware may still sit behind a UART bridge).
    """
    if remembered is not None:
        return (level_for_bytes(remembered) if remembered > 0 else 0), False
    if advanced_ok:
        return level_for_bytes(128), True
    return 0, False


class WindowPolicy:
    """The learned (or fixed) send window of one connection."""

    def __init__(
        self,
        *,
        fixed_bytes: Optional[int] = None,
        widen_after: int = 48,
        retry_after: int = 2000,
        max_lines: Optional[int] = None,
    ) -> None:
        if fixed_bytes is not None and fixed_bytes < 16:
            raise ValueError(f"the receive buffer must be at least 16 bytes, got {fixed_bytes}")
        if widen_after < 1:
            raise ValueError("widen_after must be at least 1")
        self.fixed_bytes = fixed_bytes
        self.widen_after = widen_after
        self.retry_after = retry_after
        self.cap_lines = max_lines
        self.level = 0
        self.ceiling = len(LADDER) - 1
        self.on_trial = False
        self.held: Optional[int] = None  # the widest step that held widen_after lines (index)
        self._clean = 0
        self._cooldown = 0
        self.narrowed = 0

    def start(self, level: int, on_trial: bool) -> None:
        """Begin at ``level`` (from :func:`start_level`)."""
        self.level = max(0, min(level, self.ceiling))
        self.on_trial = on_trial and self.level > 0
        if not self.on_trial and self.level > 0:
            self.held = self.level
        self._clean = 0

    def window(self) -> Window:
        if self.fixed_bytes is not None:
            return Window(self.cap_lines, self.fixed_bytes, learned=False)
        budget = LADDER[self.level]
        if budget is None:
            return Window(1, 16, learned=True)
        lines = self.cap_lines
        return Window(lines, budget, learned=True)

    @property
    def held_bytes(self) -> Optional[int]:
        """What to remember: the widest budget that held (0 for ping-pong), None before anything held."""
        if self.held is None:
            return None
        return LADDER[self.held] or 0

    def on_ok(self, window_was_full: bool) -> None:
        """One line answered without trouble. Only a full window tests whether the next step holds."""
        if self.fixed_bytes is not None:
            return
        if self._cooldown > 0:
            self._cooldown -= 1
        self._clean += 1
        if self._clean >= self.widen_after:
            if self.on_trial or self.held is None or self.level > self.held:
                self.held = self.level
            self.on_trial = False
        if not window_was_full and self.level > 0:
            return
        if self._clean >= self.widen_after and self.level < self.ceiling and self._cooldown == 0:
            self.level += 1
            self.on_trial = True
            self._clean = 0

    def on_corruption(self, lines_in_flight: int) -> bool:
        """A line arrived garbled. Returns True when the window narrowed."""
        self._clean = 0
        if self.fixed_bytes is not None or self.level == 0 or lines_in_flight <= 1:
            return False
        if self.on_trial:
            self.ceiling = self.level - 1
        else:
            self._cooldown = self.retry_after
        self.level -= 1
        self.on_trial = False
        self.narrowed += 1
        return True
