"""What receive buffer held on each printer, kept in a small JSON file so the next connection starts there.

Keyed by port and firmware name: the same port with a reflashed board learns again. A missing or
unreadable file is an empty memory (never an error: it only saves a few dozen lines of ping-pong).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Optional

FILE_NAME = "serial-window.json"
_LOCK = threading.Lock()


def _key(port: str, firmware: str) -> str:
    return f"{port}|{firmware}"


class WindowMemory:
    """``recall``/``remember`` the bytes that held on one printer (0: one line in flight)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): int(v) for k, v in data.items() if isinstance(v, int) and 0 <= v <= 1 << 20}

    def recall(self, port: str, firmware: str) -> Optional[int]:
        return self._load().get(_key(port, firmware))

    def remember(self, port: str, firmware: str, size: int) -> None:
        with _LOCK:
            data = self._load()
            if data.get(_key(port, firmware)) == size:
                return
            data[_key(port, firmware)] = size
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(temporary, self.path)

    def forget(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
