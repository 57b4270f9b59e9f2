"""The small printer interface a node drives: OctoPrint's printer and the serial agent both implement it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Optional, Protocol

from ..protocol import Temperature

#: The folder, in the printer's own storage, that holds files the fleet sent.
FLEET_FOLDER = "crowdfab"


class PrintOutcome(str, Enum):
    """How a print ended, as the printer remembers it."""

    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PrinterSnapshot:
    """What the printer is doing right now."""

    operational: bool
    printing: bool = False
    paused: bool = False
    #: Empty unless the printer reports an error.
    error: str = ""
    temperatures: dict[str, Temperature] = field(default_factory=dict)
    #: 0-100 for the print in progress.
    progress: Optional[float] = None
    #: The file being printed (or last selected): its path in the printer's storage and its name.
    file_path: Optional[str] = None
    file_name: Optional[str] = None
    time_left_s: Optional[float] = None
    #: The print's last lines and end script are running: busy for a moment, then free.
    finishing: bool = False

    @property
    def busy(self) -> bool:
        return self.printing or self.paused


class PrinterError(Exception):
    """The printer refused or failed an action; the message says why."""


class PrinterPort(Protocol):
    """One printer as a node sees it. Methods may be called from the node's worker thread only."""

    def snapshot(self) -> PrinterSnapshot: ...

    def start(self, path: Path) -> None:
        """Start printing a file returned by :meth:`store_file`."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def cancel(self) -> None: ...

    def store_file(self, job_id: int, filename: str, source: Path) -> Path:
        """Put a downloaded file where this printer prints from (in :data:`FLEET_FOLDER`); return its path."""

    def last_result(self, path: Path) -> Optional[PrintOutcome]:
        """How the last print of ``path`` ended, or None when the printer does not know."""
