"""The fleet's application service, one concern a module, wired together by :func:`build`.

Who may do what, and the rules that tie the store, the analysis and the scheduler together. The
HTTP API, the dashboard, the CLI and the MQTT link all call a :class:`FleetApp`'s parts:

=============  ===========================================  =====================================
part           module                                       what
=============  ===========================================  =====================================
identity       :mod:`~fleet.app.identity`                   tokens, passwords, dashboard sessions
members        :mod:`~fleet.app.members`                    members, their tokens and grants
lab            :mod:`~fleet.app.settings`                   the lab's settings
intake         :mod:`~fleet.app.intake`                     uploads becoming jobs
jobs           :mod:`~fleet.app.jobs`                       what people do to jobs
printers       :mod:`~fleet.app.printers`                   printers, and clearing a plate
enrollment     :mod:`~fleet.app.enrollment`                 codes, enrollment, credentials
reports        :mod:`~fleet.app.reports`                    what printers report; the live status
dispatcher     :mod:`~fleet.app.dispatch`                   the scheduler's adapter
board          :mod:`~fleet.app.board`                      the dashboard's read models
snapshots      :mod:`~fleet.app.snapshots`                  photos of the plate after a job
statistics     :mod:`~fleet.app.statistics`                 the lab's statistics, as each may see them
health         :mod:`~fleet.app.health`                     database, broker, draining: the health check
pricing        :mod:`~fleet.app.pricing`                    the price list, charges and the ledger
quotas         :mod:`~fleet.app.quotas`                     membership groups, quotas, lifts
notifications  :mod:`~fleet.app.notifications`              channels, webhooks, their deliveries
spools         :mod:`~fleet.app.spools`                     spools, loading them on printers
=============  ===========================================  =====================================

All of them share one :class:`~fleet.app.base.Context` (store, blobs, clock, metrics, hooks).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

from ..http_protocol import BrokerAddress
from ..metrics import FleetMetrics
from ..store import BlobStore, Store
from .base import Context, Hooks
from .board import Board
from .dispatch import Dispatcher
from .enrollment import Enrollments, PasswordHasher
from .health import Health
from .identity import Identity
from .intake import Intake
from .jobs import Jobs
from .members import Members
from .notifications import Notifications
from .pricing import Pricing
from .printers import Printers
from .quotas import Quotas
from .reports import PrinterReports
from .settings import LabAdmin
from .snapshots import Snapshots
from .spools import Spools
from .statistics import LabStatistics

__all__ = ["FleetApp", "build"]


@dataclass
class FleetApp:
    """Every operation of the fleet, by concern; built once per process by :func:`build`."""

    ctx: Context
    identity: Identity
    members: Members
    lab: LabAdmin
    intake: Intake
    jobs: Jobs
    printers: Printers
    enrollment: Enrollments
    reports: PrinterReports
    dispatcher: Dispatcher
    board: Board
    snapshots: Snapshots
    statistics: LabStatistics
    health: Health
    pricing: Pricing
    quotas: Quotas
    notifications: Notifications
    spools: Spools

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def blobs(self) -> BlobStore:
        return self.ctx.blobs

    @property
    def clock(self) -> Callable[[], float]:
        return self.ctx.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        """Every part reads the time through the context, so a new clock reaches them all."""
        self.ctx.clock = clock

    @property
    def hooks(self) -> Hooks:
        return self.ctx.hooks

    @property
    def metrics(self) -> FleetMetrics:
        return self.ctx.metrics


def build(
    store: Store,
    blobs: BlobStore,
    *,
    clock: Callable[[], float] = time.time,
    node_mqtt: Optional[BrokerAddress] = None,
    password_hasher: Optional[PasswordHasher] = None,
) -> FleetApp:
    """The fleet's services on one store: the one place that knows which needs which."""
    ctx = Context(store, blobs, clock=clock)
    pricing = Pricing(ctx)
    quotas = Quotas(ctx, pricing)
    statistics = LabStatistics(ctx)
    # The statistics' group and cost columns come from the membership groups and the ledger.
    statistics.groups_of = quotas.group_names_of
    statistics.costs_of = pricing.costs_of
    reports = PrinterReports(ctx, pricing)
    printers = Printers(ctx)
    jobs = Jobs(ctx, pricing, live=reports.live)
    return FleetApp(
        ctx=ctx,
        identity=Identity(ctx),
        members=Members(ctx),
        lab=LabAdmin(ctx),
        intake=Intake(ctx),
        jobs=jobs,
        printers=printers,
        enrollment=Enrollments(ctx, reports, node_mqtt=node_mqtt, password_hasher=password_hasher),
        reports=reports,
        dispatcher=Dispatcher(ctx, quotas),
        board=Board(ctx, printers, reports),
        snapshots=Snapshots(ctx, jobs),
        statistics=statistics,
        health=Health(ctx),
        pricing=pricing,
        quotas=quotas,
        notifications=Notifications(ctx),
        spools=Spools(ctx),
    )
