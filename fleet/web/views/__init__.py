"""The dashboard's pages, one module per area of the site, all on one blueprint (``web``).

:mod:`.base` holds the blueprint and what every page shares (the signed-in member, texts, rendering,
the error pages); importing an area's module adds its routes, so each is imported here, before the
blueprint is registered.
"""

from __future__ import annotations

from . import account, economy, history, jobs, live, manage, notifications, printers, spools, submit
from .base import web

__all__ = [
    "account",
    "economy",
    "history",
    "jobs",
    "live",
    "manage",
    "notifications",
    "printers",
    "spools",
    "submit",
    "web",
]
