"""The dashboard's per-app parts: its texts, its sign-in limiter and its live-update hub."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..app import FleetApp
from .cards import card
from .events import LiveHub, Snapshot
from .i18n import Catalogue
from .limiter import StoredLimiter


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


def fleet_snapshot(service: FleetApp) -> Snapshot:
    """Every printer card, and a short signature that changes whenever the queue does."""
    signature = hashlib.sha256(repr(service.board.queue_signature()).encode("ascii")).hexdigest()[:16]
    return {"printers": {e.printer.id: card(e) for e in service.board.printer_board()}, "queue": signature}
