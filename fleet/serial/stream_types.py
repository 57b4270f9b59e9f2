"""The streamer's public values: its configuration, states, snapshots and job results.

Kept apart from :mod:`.streamer` so the agent and the CLI can name them without the threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Optional, Protocol

from ..errors import Unavailable

#: Commands the streamer sends for itself; a firmware's log of executed lines minus these is the file.
HOUSEKEEPING = frozenset({"M105", "M110", "M115", "M155"})
#: The longest reply line kept; a firmware's longest (a long M503 or M115 line) is a few hundred bytes.
#: Past this, the bytes up to the next newline are noise on the line and are dropped.
MAX_REPLY_BYTES = 4096


@dataclass(frozen=True)
class StreamerConfig:
    """How to talk to one printer. Times are in seconds; the defaults suit a Marlin board on USB."""

    #: The firmware's receive buffer in bytes, when known (``--rx-buffer``); None: learn it (see .learning).
    rx_buffer_bytes: Optional[int] = None
    max_inflight: Optional[int] = None  # cap on lines in flight (1: ping-pong; None: from the window)
    history: int = 1000  # lines kept for resends
    #: No ok and no busy this long: ask with M105, sent once it fits the window. The lines in flight
    #: stay counted: the ok may only be late (Marlin answers nothing while one long move runs).
    ok_timeout_s: float = 2.0
    #: No ok, no busy and no resend request this long: the oldest line's ok counts as lost and its bytes
    #: are freed (room for the M105 when lost oks filled the window). A single move rarely runs this
    #: long; keep it under the silence that fails the job, ok_timeout_s * (max_timeouts + 1).
    lost_ok_s: float = 20.0
    #: The oldest line in flight heats, homes or levels (M109, G28, G29...): it may take this long.
    slow_timeout_s: float = 1800.0
    connect_timeout_s: float = 10.0
    temperature_interval_s: float = 2.0  # M155 S<n> if the firmware has AUTOREPORT_TEMP, else M105 polling
    cancel_gcode: tuple[str, ...] = ("M104 S0", "M140 S0", "M107", "G91", "G1 Z5 F600", "G90", "M84")
    pause_gcode: tuple[str, ...] = ()
    resend_limit: int = 10  # the same line asked for more often in a row than this fails the job
    max_timeouts: int = 25  # ok timeouts in a row with no answer at all before the printer counts as gone
    hello_interval_s: float = 1.0  # how often connect() repeats its M110 while the board boots
    snapshot_interval_s: float = 0.5  # how often listeners hear about progress during a job
    read_timeout_s: float = 0.05  # pyserial's read timeout: how quickly the reader notices close()
    window_memory: Optional[Path] = None  # a JSON file remembering per printer what receive window held
    widen_after: int = 48  # clean oks at a full window before the learned window tries the next step


class StreamState(str, Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    IDLE = "idle"
    PRINTING = "printing"
    PAUSED = "paused"
    CANCELLING = "cancelling"
    ERROR = "error"


#: States in which a job is under way.
JOB_STATES = frozenset({StreamState.PRINTING, StreamState.PAUSED, StreamState.CANCELLING})


@dataclass(frozen=True)
class FirmwareInfo:
    name: str
    capabilities: Mapping[str, bool]
    advanced_ok: bool  # from Cap:ADVANCED_OK or from the format of its oks


@dataclass(frozen=True)
class StreamerSnapshot:
    state: StreamState
    file: Optional[str]
    sent_lines: int
    total_lines: Optional[int]
    bytes_done: int
    total_bytes: int
    progress_bytes: float  # 0-100
    progress_time: Optional[float]  # 0-100, when the job came with per-line time estimates
    temperatures: Mapping[str, tuple[Optional[float], Optional[float]]]
    error: Optional[str]
    resends: int
    elapsed_s: float


class JobOutcome(str, Enum):
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class JobResult:
    outcome: JobOutcome
    message: str
    lines_sent: int
    resends: int
    elapsed_s: float


class StreamListener(Protocol):
    """Called from the streamer's threads: must return quickly and never block."""

    def on_snapshot(self, snapshot: StreamerSnapshot) -> None: ...

    def on_job_finished(self, result: JobResult) -> None: ...


class PrinterUnreachable(Unavailable):
    """The port could not be opened or the firmware did not answer."""
