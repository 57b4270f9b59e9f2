"""The dashboard's per-app parts: its texts, its sign-in limiter and its live-update hub."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

from ..app import FleetApp
from ..app.base import Change, ChangeKind
from ..app.board import PrinterBoard
from .cards import card
from .events import LiveHub, Pending, Snapshot
from .i18n import Catalogue
from .limiter import StoredLimiter

#: With more printers than this changed since the last pass, the whole board is read (three queries)
#: rather than each printer on its own.
WHOLE_BOARD_AT = 16


@dataclass
class Dashboard:
    catalogue: Catalogue
    limiter: StoredLimiter
    hub: LiveHub
    #: A live-update stream ends after this long and the browser reconnects (threads are not held forever).
    stream_lifetime_s: float = 600.0
    #: A comment line this often keeps proxies from closing an idle stream and notices gone browsers.
    heartbeat_s: float = 15.0
    #: When the hub is full, a browser is told to come back after this long.
    busy_retry_ms: int = 30_000


class FleetFeed:
    """The hub's view of the fleet: a full snapshot, or the last one refreshed where the hooks said.

    A live view that changed (the bulk: every printer's temperatures, once a second) costs no
    query: the printer's last board entry is kept, and only its live part is swapped. Used by the
    hub's producer thread alone.
    """

    def __init__(self, app: FleetApp) -> None:
        self.app = app
        self._entries: dict[str, PrinterBoard] = {}

    def snapshot(self) -> Snapshot:
        """Every printer card, and a short signature that changes whenever the queue does."""
        board = self.app.board.printer_board()
        self._entries = {e.printer.id: e for e in board}
        return {"printers": {e.printer.id: card(e) for e in board}, "queue": self._queue_signature()}

    def refresh(self, last: Snapshot, pending: Pending) -> Snapshot:
        printers: dict[str, Any] = dict(last["printers"])
        if len(pending.printers) > WHOLE_BOARD_AT:
            return self.snapshot()
        if pending.printers:
            fresh = {e.printer.id: e for e in self.app.board.printer_board(only=pending.printers)}
            for printer_id in pending.printers:
                entry = fresh.get(printer_id)
                if entry is None:
                    printers.pop(printer_id, None)
                    self._entries.pop(printer_id, None)
                else:
                    self._entries[printer_id] = entry
                    printers[printer_id] = card(entry)
        for printer_id in pending.live - pending.printers:
            known = self._entries.get(printer_id)
            if known is not None:
                known = replace(known, live=self.app.reports.live(printer_id))
                self._entries[printer_id] = known
                printers[printer_id] = card(known)
        signature = self._queue_signature() if pending.queue else last["queue"]
        return {"printers": printers, "queue": signature}

    def _queue_signature(self) -> str:
        return hashlib.sha256(repr(self.app.board.queue_signature()).encode("ascii")).hexdigest()[:16]

    def follow(self, hub: LiveHub) -> None:
        """Feed ``hub`` the change notes of this process's services."""

        def note(change: Change) -> None:
            if change.kind is ChangeKind.PRINTER and change.printer_id is not None:
                hub.mark(printers=(change.printer_id,))
            elif change.kind is ChangeKind.LIVE and change.printer_id is not None:
                hub.mark(live=(change.printer_id,))
            elif change.kind is ChangeKind.QUEUE:
                hub.mark(queue=True)
            elif change.kind is ChangeKind.EVERYTHING:
                hub.mark(everything=True)

        self.app.hooks.on_change(note)
