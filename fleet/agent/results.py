"""The last outcome of each printed file, kept in a small JSON file so it survives a restart."""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from ..node import PrintOutcome

log = logging.getLogger(__name__)

#: How many files' results are kept; the oldest are forgotten first.
DEFAULT_LIMIT = 500


@dataclass(frozen=True)
class PrintResult:
    outcome: PrintOutcome
    #: The firmware's or streamer's message (empty for a clean finish).
    message: str
    #: Epoch seconds.
    finished_at: float


class ResultBook:
    """File path → its last :class:`PrintResult`; every ``record`` is saved before it returns."""

    def __init__(self, path: Path, *, limit: int = DEFAULT_LIMIT) -> None:
        self.path = path
        self.limit = limit
        self._lock = threading.Lock()
        self._results = self._load()

    def get(self, file: str) -> Optional[PrintResult]:
        with self._lock:
            return self._results.get(file)

    def record(self, file: str, result: PrintResult) -> None:
        with self._lock:
            self._results.pop(file, None)
            self._results[file] = result
            while len(self._results) > self.limit:
                del self._results[next(iter(self._results))]
            self._save()

    def _load(self) -> dict[str, PrintResult]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("ignoring unreadable print results in %s: %s", self.path, exc)
            return {}
        results: dict[str, PrintResult] = {}
        for file, item in (raw.get("results") or {}).items() if isinstance(raw, dict) else ():
            try:
                results[str(file)] = PrintResult(
                    PrintOutcome(item["outcome"]), str(item.get("message", "")), float(item["finished_at"])
                )
            except (KeyError, TypeError, ValueError):
                log.warning("ignoring a malformed print result for %s", file)
        return results

    def _save(self) -> None:
        data = {"results": {f: {**asdict(r), "outcome": r.outcome.value} for f, r in self._results.items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(temporary, self.path)
