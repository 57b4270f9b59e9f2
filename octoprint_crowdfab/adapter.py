"""The node's :class:`~fleet.node.PrinterPort` over OctoPrint's printer and file manager (public APIs)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional

from octoprint.events import Events
from octoprint.filemanager.util import DiskFileWrapper
from octoprint.printer import PrinterCallback

from fleet.node import FLEET_FOLDER, PrinterError, PrinterSnapshot, PrintOutcome
from fleet.protocol import Temperature

log = logging.getLogger(__name__)

LOCAL = "local"


class OctoPrintPrinter:
    """OctoPrint's printer as a node's printer; fleet files go to ``crowdfab/`` in local storage."""

    def __init__(self, printer: Any, file_manager: Any, *, folder: str = FLEET_FOLDER) -> None:
        self._printer = printer
        self._files = file_manager
        self.folder = folder

    def snapshot(self) -> PrinterSnapshot:
        data = self._printer.get_current_data() or {}
        state = data.get("state") or {}
        flags = state.get("flags") or {}
        job_file = (data.get("job") or {}).get("file") or {}
        progress = data.get("progress") or {}
        return PrinterSnapshot(
            operational=bool(flags.get("operational")),
            printing=bool(flags.get("printing")) or bool(flags.get("cancelling")),
            paused=bool(flags.get("paused")) or bool(flags.get("pausing")),
            error=str(state.get("error") or state.get("text") or "") if flags.get("error") else "",
            temperatures=_temperatures(self._printer.get_current_temperatures() or {}),
            progress=_number(progress.get("completion")),
            file_path=job_file.get("path") if job_file.get("origin") == LOCAL else None,
            file_name=job_file.get("name"),
            time_left_s=_number(progress.get("printTimeLeft")),
            finishing=bool(flags.get("finishing")),
        )

    def start(self, path: Path) -> None:
        if not self._printer.is_ready():
            raise PrinterError(f"printer is not ready ({self._printer.get_state_string()})")
        self._printer.select_file(str(path), False, printAfterSelect=True)

    def pause(self) -> None:
        self._printer.pause_print()

    def resume(self) -> None:
        self._printer.resume_print()

    def cancel(self) -> None:
        self._printer.cancel_print()

    def store_file(self, job_id: int, filename: str, source: Path) -> Path:
        self._files.add_folder(LOCAL, self.folder, ignore_existing=True)
        target = self._files.join_path(LOCAL, self.folder, self._files.sanitize_name(LOCAL, filename))
        # Moved, not copied: the download sits in the plugin's data folder, on the same disk as
        # OctoPrint's uploads, so the checked file appears under its printable name in one rename
        # and a restart can never leave half of it there.
        stored = self._files.add_file(
            LOCAL, target, DiskFileWrapper(filename, str(source), move=True), allow_overwrite=True
        )
        return Path(stored)

    def last_result(self, path: Path) -> Optional[PrintOutcome]:
        # OctoPrint keeps a print history per file: success true/false (a cancel counts as false).
        try:
            metadata = self._files.get_metadata(LOCAL, str(path)) or {}
        except Exception:
            log.exception("could not read the print history of %s", path)
            return None
        history = [h for h in metadata.get("history") or [] if isinstance(h, dict)]
        if not history:
            return None
        last = max(history, key=lambda h: h.get("timestamp") or 0)
        return PrintOutcome.DONE if last.get("success") else PrintOutcome.FAILED


#: OctoPrint events that a node turns into fleet job events, by the node method that takes them.
PRINT_EVENTS = {
    Events.PRINT_STARTED: "on_print_started",
    Events.PRINT_DONE: "on_print_done",
    Events.PRINT_FAILED: "on_print_failed",
    Events.PRINT_CANCELLED: "on_print_cancelled",
    Events.PRINT_PAUSED: "on_print_paused",
    Events.PRINT_RESUMED: "on_print_resumed",
}


def forward_print_event(node: Any, event: str, payload: Any) -> bool:
    """Hand an OctoPrint print event about a local-storage file to the node; True if it was one."""
    method = PRINT_EVENTS.get(event)
    if method is None or not isinstance(payload, dict) or payload.get("origin", LOCAL) != LOCAL:
        return False
    getattr(node, method)(payload.get("path") or payload.get("name") or "")
    return True


class ChangeCallback(PrinterCallback):
    """Tells the node that OctoPrint's printer state, progress or temperatures changed."""

    def __init__(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def on_printer_send_current_data(self, data: Any) -> None:
        self._notify()


def _temperatures(raw: dict[str, Any]) -> dict[str, Temperature]:
    result = {}
    for name, values in raw.items():
        if isinstance(values, dict):
            result[name] = Temperature(_number(values.get("actual")), _number(values.get("target")))
    return result


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
