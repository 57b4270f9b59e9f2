"""Whether this fleet process can do its work: its database, its broker, and whether it is stopping.

``GET /api/v1/health`` answers from :meth:`Health.report`: a load balancer (HAProxy) sends requests
only to processes that answer 200, so a process whose database or broker is down, or that is about
to stop (a rolling restart), is taken out of rotation before anyone's request fails there.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional

from .base import Context

#: A part's state as the health report names it.
UP = "up"
DOWN = "down"


@dataclass(frozen=True)
class HealthReport:
    #: "ok", "down" (a part is down) or "draining" (this process is stopping).
    status: str
    database: str
    #: None when this process has no broker link (a bare app, as the API tests build it).
    broker: Optional[str]
    #: The once-only duties this process carries out now (see :mod:`fleet.duties`).
    duties: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Health:
    """The probes of one fleet process; the runtime registers the broker's and the duties'."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.broker: Optional[Callable[[], bool]] = None
        self.duties: Callable[[], list[str]] = list
        self._draining = threading.Event()

    def drain(self) -> None:
        """From now on report "draining" (503): the process is about to stop."""
        self._draining.set()

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    def report(self) -> HealthReport:
        database = UP if self.ctx.store.ping() else DOWN
        broker = None if self.broker is None else (UP if self.broker() else DOWN)
        if self.draining:
            status = "draining"
        elif DOWN in (database, broker):
            status = "down"
        else:
            status = "ok"
        return HealthReport(status, database, broker, tuple(self.duties()))
