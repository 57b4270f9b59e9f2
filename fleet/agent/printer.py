"""``SerialPrinter``: the node's :class:`~fleet.node.PrinterPort` for a USB printer, over the serial streamer.

The streamer reports from its own threads; this adapter turns that into the node's callbacks, the way the
OctoPrint plugin turns OctoPrint's events into them: a job's start, pause, resume and end by file, and a
"something changed" for status.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Protocol

from ..node import FLEET_FOLDER, PrinterError, PrinterSnapshot, PrintOutcome
from ..protocol import Temperature
from ..serial.streamer import (
    FirmwareInfo,
    JobOutcome,
    JobResult,
    SerialStreamer,
    StreamerConfig,
    StreamerSnapshot,
    StreamState,
)
from .results import PrintResult, ResultBook

log = logging.getLogger(__name__)

#: Streamer states in which the printer is connected and answering.
OPERATIONAL = frozenset({StreamState.IDLE, StreamState.PRINTING, StreamState.PAUSED, StreamState.CANCELLING})
RUNNING = frozenset({StreamState.PRINTING, StreamState.CANCELLING})

_OUTCOMES = {
    JobOutcome.DONE: PrintOutcome.DONE,
    JobOutcome.FAILED: PrintOutcome.FAILED,
    JobOutcome.CANCELLED: PrintOutcome.CANCELLED,
}

#: Marlin's short temperature names, as the protocol names them.
_HEATERS = {"T": "tool0", "B": "bed", "C": "chamber"}

RESULTS_FILE = "print-results.json"


class PrintEvents(Protocol):
    """What the printer tells its node (``PrinterNode`` has these); each call must return at once."""

    def printer_changed(self) -> None: ...

    def on_print_started(self, name: str) -> None: ...

    def on_print_done(self, name: str) -> None: ...

    def on_print_failed(self, name: str, reason: str = "") -> None:
        """``reason``: why, in the printer's words (the streamer's message), for the fleet's history."""

    def on_print_cancelled(self, name: str) -> None: ...

    def on_print_paused(self, name: str) -> None: ...

    def on_print_resumed(self, name: str) -> None: ...


StreamerFactory = Callable[..., SerialStreamer]


class SerialPrinter:
    """A printer on a serial port; fleet files are kept in ``<data_dir>/crowdfab/``.

    ``connect()`` opens the port (again, after a disconnect); ``bind()`` names who hears about prints.
    """

    def __init__(
        self,
        port: str,
        baud: int,
        data_dir: Path,
        *,
        config: StreamerConfig = StreamerConfig(),  # noqa: B008 (frozen, so one shared default is safe)
        notify_interval_s: float = 0.5,
        streamer_factory: StreamerFactory = SerialStreamer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.port = port
        self.baud = baud
        self.folder = data_dir / FLEET_FOLDER
        self.config = config
        self.notify_interval_s = notify_interval_s
        self._factory = streamer_factory
        self._clock = clock
        self._results = ResultBook(data_dir / RESULTS_FILE)
        self._lock = threading.Lock()
        self._streamer: Optional[SerialStreamer] = None
        self._firmware: Optional[FirmwareInfo] = None
        self._events: Optional[PrintEvents] = None
        #: The file of the job the streamer runs, from start() until its result arrives.
        self._active: Optional[str] = None
        self._last_key: Optional[tuple[object, ...]] = None
        self._last_notified = float("-inf")

    # -- connection --------------------------------------------------------------------------------

    def bind(self, events: Optional[PrintEvents]) -> None:
        self._events = events

    def connect(self) -> FirmwareInfo:
        """Open the port and greet the firmware; PrinterError says why it could not."""
        self.close()
        streamer = self._factory(self.port, self.baud, config=self.config, listener=self)
        try:
            info = streamer.connect()
        except Exception as exc:  # pyserial, a timeout or the streamer's own error: all mean "not there"
            streamer.close()
            raise PrinterError(
                f"could not connect to the printer on {self.port} at {self.baud} baud: {exc}"
            ) from exc
        with self._lock:
            self._streamer, self._firmware = streamer, info
        log.info("connected to %s on %s", info.name, self.port)
        self._notify(streamer.snapshot().state, force=True)
        return info

    @property
    def firmware(self) -> Optional[FirmwareInfo]:
        return self._firmware

    @property
    def connected(self) -> bool:
        """True while the port is open and the streamer has not given up on it (the agent reconnects)."""
        streamer = self._streamer
        # ERROR too: a USB device that went away (or a halted board) is opened afresh when it returns.
        return streamer is not None and streamer.snapshot().state not in (
            StreamState.DISCONNECTED,
            StreamState.ERROR,
        )

    def close(self) -> None:
        with self._lock:
            streamer, self._streamer = self._streamer, None
        if streamer is not None:
            streamer.close()

    # -- PrinterPort -------------------------------------------------------------------------------

    def snapshot(self) -> PrinterSnapshot:
        streamer = self._streamer
        if streamer is None:
            return PrinterSnapshot(operational=False)
        return self._translate(streamer.snapshot())

    def start(self, path: Path) -> None:
        streamer = self._require()
        with self._lock:
            state = streamer.snapshot().state
            if self._active is not None or state is not StreamState.IDLE:
                raise PrinterError(f"the printer is not ready to print ({state.value})")
            self._active = str(path)
        try:
            streamer.start_job(path)
        except Exception:
            with self._lock:
                self._active = None
            raise
        self._emit("on_print_started", str(path))

    def pause(self) -> None:
        self._require().pause()
        if self._active is not None:
            self._emit("on_print_paused", self._active)

    def resume(self) -> None:
        self._require().resume()
        if self._active is not None:
            self._emit("on_print_resumed", self._active)

    def cancel(self) -> None:
        self._require().cancel()  # the end arrives as a CANCELLED result

    def store_file(self, job_id: int, filename: str, source: Path) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / Path(filename).name
        partial = target.with_name(f".{target.name}.part")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
        return target

    def last_result(self, path: Path) -> Optional[PrintOutcome]:
        result = self._results.get(str(path))
        return result.outcome if result is not None else None

    def last_print(self, path: Path) -> Optional[PrintResult]:
        """The last result of ``path`` with its message."""
        return self._results.get(str(path))

    # -- StreamListener (streamer threads: never block) -------------------------------------------

    def on_snapshot(self, snapshot: StreamerSnapshot) -> None:
        self._notify(snapshot.state)

    def on_job_finished(self, result: JobResult) -> None:
        with self._lock:
            path, self._active = self._active, None
        if path is None:
            log.warning("a job ended that this printer did not start: %s", result.outcome.value)
            return
        outcome = _OUTCOMES[result.outcome]
        self._results.record(path, PrintResult(outcome, result.message, self._clock()))
        log.info("%s: %s %s", path, outcome.value, result.message)
        if outcome is PrintOutcome.FAILED:
            self._emit("on_print_failed", path, result.message)
            return
        method = {PrintOutcome.DONE: "on_print_done", PrintOutcome.CANCELLED: "on_print_cancelled"}[outcome]
        self._emit(method, path)

    # -- helpers -------------------------------------------------------------------------------------

    def _require(self) -> SerialStreamer:
        streamer = self._streamer
        if streamer is None:
            raise PrinterError(f"the printer on {self.port} is not connected")
        return streamer

    def _translate(self, s: StreamerSnapshot) -> PrinterSnapshot:
        active = self._active
        # Between start() and the streamer's first line the job is ours already: report it printing.
        starting = active is not None and s.state is StreamState.IDLE
        printing = s.state in RUNNING or starting
        busy = printing or s.state is StreamState.PAUSED
        progress = float(s.progress_bytes) if busy else None
        file = str(s.file) if s.file else active
        return PrinterSnapshot(
            operational=s.state in OPERATIONAL,
            printing=printing,
            paused=s.state is StreamState.PAUSED,
            error=(s.error or "printer error") if s.state is StreamState.ERROR else "",
            temperatures={_heater(name): Temperature(*pair) for name, pair in s.temperatures.items()},
            progress=progress,
            file_path=file if busy else None,
            file_name=Path(file).name if busy and file else None,
            time_left_s=_time_left(s.elapsed_s, progress),
        )

    def _notify(self, state: StreamState, *, force: bool = False) -> None:
        """Tell the node of a change: a new state at once, progress and temperatures once per interval."""
        events = self._events
        if events is None:
            return
        key = (state, self._active)
        now = time.monotonic()
        if force or key != self._last_key or now - self._last_notified >= self.notify_interval_s:
            self._last_key, self._last_notified = key, now
            events.printer_changed()

    def _emit(self, method: str, name: str, *reason: str) -> None:
        events = self._events
        if events is not None:
            getattr(events, method)(name, *reason)


def _heater(name: str) -> str:
    if name in _HEATERS:
        return _HEATERS[name]
    if len(name) > 1 and name[0] == "T" and name[1:].isdigit():
        return f"tool{name[1:]}"
    return name


def _time_left(elapsed_s: float, progress: Optional[float]) -> Optional[float]:
    if progress is None or not 0.0 < progress < 100.0:
        return None
    return elapsed_s * (100.0 - progress) / progress
