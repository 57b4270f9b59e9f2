"""Every printer's record, kept in memory between scheduling passes while PostgreSQL's notes are heard.

A scheduling pass plans over every printer. Reading all of them from the store on each pass is most
of a pass's cost at thousands of printers, though between two passes only the few that changed
differ. On PostgreSQL every change of a printer's row (and of its credentials and spool) is announced
by the database's change notes (:mod:`fleet.store.changes`), and this process's own changes by its
hooks at once: :class:`PrinterView` reads again only the printers they name, and everything when the
notes may have been missed (the listener reconnected, or is not listening yet).

What it serves is what the store held a moment ago. A pass that plans with a printer another process
just took loses that claim in the store's transaction (claims are conditional), and plans again
next time, so a moment's staleness costs a wasted claim, never a wrong assignment. Where no notes
are heard (SQLite, whose file the command line may change unannounced) the fleet reads the store on
every pass, as :meth:`PrinterView.printers` does whenever ``trusted()`` is false.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Optional

from ..models import Printer
from .base import Change, ChangeKind

if TYPE_CHECKING:
    from ..store import Store


class PrinterView:
    """The printers as of the last pass, brought up to date with what changed since."""

    def __init__(self, store: Store, trusted: Callable[[], bool]) -> None:
        self.store = store
        #: Whether every change since the last read would have been heard (the notes' listener is on).
        self.trusted = trusted
        #: Guards the changes named (hooks call :meth:`changed` from any thread, and never wait for a read).
        self._lock = threading.Lock()
        #: One refresh at a time (a pass and a queue page may ask together): each starts from the last
        #: one's printers, so no refresh puts back what another has just read.
        self._refreshing = threading.Lock()
        self._printers: Optional[dict[str, Printer]] = None
        self._changed: set[str] = set()
        self._everything = True
        #: Reads of every printer, and of only the changed ones, since the start (for tests and benches).
        self.full_reads = 0
        self.partial_reads = 0

    def changed(self, change: Change) -> None:
        """A hook of the fleet's changes (this process's, and other processes' through their notes)."""
        if change.kind is ChangeKind.EVERYTHING:
            self.forget()
        elif change.kind is ChangeKind.PRINTER and change.printer_id is not None:
            with self._lock:
                self._changed.add(change.printer_id)

    def forget(self) -> None:
        """Read every printer again next time."""
        with self._lock:
            self._everything = True

    def printers(self) -> list[Printer]:
        """Every printer, ordered by id, as the store holds it (but for changes still on their way)."""
        if not self.trusted():
            self.forget()
            self.full_reads += 1
            return self.store.list_printers()
        with self._refreshing:
            # Taken before reading: a change named from here on is read again next time.
            with self._lock:
                everything, changed = self._everything or self._printers is None, self._changed
                self._everything, self._changed = False, set()
            if everything:
                printers = {p.id: p for p in self.store.list_printers()}
                self.full_reads += 1
            else:
                printers = dict(self._printers or {})
                if changed:
                    self._update(printers, changed)
                    self.partial_reads += 1
            self._printers = printers
        return [printers[key] for key in sorted(printers)]

    def _update(self, printers: dict[str, Printer], changed: set[str]) -> None:
        found = {p.id: p for p in self.store.printers_with_ids(changed)}
        for printer_id in changed:
            if printer_id in found:
                printers[printer_id] = found[printer_id]
            else:
                printers.pop(printer_id, None)  # removed
