"""OctoPrint's bundled VirtualPrinter behind a real pty: a firmware simulation nobody on this project wrote.

The VirtualPrinter is a duck-typed serial port (``write``/``readline``). This bridge gives it a device
path: one thread reads what the host wrote to the pty and hands it to ``write()`` one line at a time
(as OctoPrint's own host calls it), dropping whatever the VirtualPrinter's receive buffer does not take;
another copies its replies back. The commands it ran are recorded through its own letter-handler hook
(``_gcode_G``/``_gcode_M``: it calls them for every command it runs and carries on when they return False).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import octoprint.plugins.virtual_printer.virtual as vp_module
from octoprint.plugins.virtual_printer import VirtualPrinterPlugin


class _Settings:
    """The few calls VirtualPrinter makes on its plugin settings, over a plain dict."""

    def __init__(self, values: Mapping[str, Any], base: Path) -> None:
        self._values = dict(values)
        self._base = base

    def get(self, path: list[str], merged: bool = False) -> Any:
        return self._values.get(path[0])

    def get_int(self, path: list[str]) -> int:
        return int(self._values[path[0]])

    def get_float(self, path: list[str]) -> float:
        return float(self._values[path[0]])

    def get_boolean(self, path: list[str]) -> bool:
        return bool(self._values.get(path[0]))

    def global_get_basefolder(self, name: str) -> str:
        folder = self._base / name
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)


class _NoHooks:
    def get_hooks(self, name: str) -> dict[str, Any]:
        return {}


class RecordingVirtualPrinter(vp_module.VirtualPrinter):  # type: ignore[misc]
    """VirtualPrinter that remembers every G and M command it ran, in order."""

    executed: list[str]

    def _record(self, data: str) -> None:
        with self._record_lock:
            self.executed.append(data.strip())
            self._record_lock.notify_all()

    def _gcode_G(self, code: str, data: str) -> bool:
        self._record(data)
        return False

    def _gcode_M(self, code: str, data: str) -> bool:
        self._record(data)
        return False

    def _gcode_T(self, code: str, data: str) -> None:
        self._record(data)
        super()._gcode_T(code, data)


class FastVirtualPrinter(RecordingVirtualPrinter):
    """Time-compressed: dwells and heat-ups end at once (its serial handling is untouched)."""

    def _gcode_G4(self, data: str) -> None:
        return None

    move_s = 0.0  # each move takes this long instead of its real duration (its buffer then fills)

    def _performMove(self, line: str) -> None:
        if self.move_s > 0:
            time.sleep(self.move_s)

    def _waitForHeatup(self, heater: str, only_wait_if_higher: bool) -> None:
        if heater == "bed":
            self.bedTemp = self.bedTargetTemp
        elif heater.startswith("tool"):
            index = int(heater[4:])
            self.temp[index] = self.targetTemp[index]


def default_settings() -> dict[str, Any]:
    """The VirtualPrinter plugin's own defaults, read from the plugin."""
    return dict(VirtualPrinterPlugin().get_settings_defaults())


class VirtualPrinterOnPty:
    """``start()`` returns a device path; ``executed`` is what the VirtualPrinter ran."""

    def __init__(self, base: Path, *, real_time: bool = False, move_s: float = 0.0, **overrides: Any) -> None:
        self._cls = RecordingVirtualPrinter if real_time else FastVirtualPrinter
        self._move_s = move_s
        settings = default_settings()
        settings.update(overrides)
        self.settings = settings
        self._base = base
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.printer: Optional[RecordingVirtualPrinter] = None
        self.written: list[bytes] = []  # every line the host wrote, as the pty delivered it
        self._master = self._slave = -1

    def start(self) -> str:
        # Its hook look-up needs OctoPrint's plugin manager, which only a running OctoPrint has.
        vp_module.plugin_manager = lambda: _NoHooks()
        printer = self._cls.__new__(self._cls)
        printer.executed = []
        printer.move_s = self._move_s
        printer._record_lock = threading.Condition()
        # write_timeout 0: bytes that find its receive buffer full are lost, as on a UART.
        settings = _Settings(self.settings, self._base)
        printer.__init__(settings, None, str(self._base), read_timeout=0.05, write_timeout=0.0)
        self.printer = printer
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        path = os.ttyname(self._slave)
        for target, name in ((self._to_printer, "vp-in"), (self._from_printer, "vp-out")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return path

    @property
    def executed(self) -> list[str]:
        assert self.printer is not None
        with self.printer._record_lock:
            return list(self.printer.executed)

    def wait_executed(self, count: int, timeout: float) -> bool:
        assert self.printer is not None
        with self.printer._record_lock:
            return bool(
                self.printer._record_lock.wait_for(lambda: len(self.printer.executed) >= count, timeout)
            )

    def _to_printer(self) -> None:
        pending = b""
        while not self._stop.is_set():
            readable, _, _ = select.select([self._master], [], [], 0.05)
            if not readable:
                continue
            try:
                pending += os.read(self._master, 4096)
            except OSError:
                return
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.written.append(line)
                printer = self.printer
                if printer is None or self._stop.is_set():
                    return
                with contextlib.suppress(Exception):
                    printer.write(line + b"\n")

    def _from_printer(self) -> None:
        while not self._stop.is_set():
            printer = self.printer
            if printer is None:
                return
            try:
                line = printer.readline()
            except Exception:
                return
            if line:  # its replies come without line endings: one readline() is one line
                with contextlib.suppress(OSError):
                    os.write(self._master, line.rstrip(b"\r\n") + b"\n")

    def stop(self) -> None:
        self._stop.set()
        if self.printer is not None:
            self.printer.close()
        for thread in self._threads:
            thread.join(timeout=2.0)
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
