"""The REST API under /api/v1: JSON in and out, bearer tokens, one error shape.

Importing this module registers every route (one module a resource) on :data:`api`.
"""

from __future__ import annotations

from . import groups, jobs, lab, members, notifications, prices, printers, spools, stats
from .blueprint import ApiLimits, api, spec

__all__ = [
    "ApiLimits",
    "api",
    "groups",
    "jobs",
    "lab",
    "members",
    "notifications",
    "prices",
    "printers",
    "spec",
    "spools",
    "stats",
]
