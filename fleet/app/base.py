"""What every part of the fleet's application service shares: the store, the clock, who may act, hooks.

Each concern (members, intake, printers ...) is its own small service built on one :class:`Context`,
so the concerns import this module and, where one needs another, are handed it by the composition
root (:func:`fleet.app.build`); none imports another's module at run time, so there are no cycles.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Optional

from ..errors import Forbidden
from ..lab import LabSettings
from ..metrics import FleetMetrics
from ..models import Job, Member, Role
from ..protocol import CommandType
from ..states import DISPATCHABLE, PENDING
from ..store import BlobStore, Store
from ..store.changes import ChangeNote

log = logging.getLogger(__name__)

LAB_SETTINGS_KEY = "lab"

#: Tells a printer's node to do something: (printer id, command, job id).
CommandHook = Callable[[str, CommandType, Optional[int]], None]


class ChangeKind(str, Enum):
    #: A printer's record changed (state, job, fields), or it was added or removed.
    PRINTER = "printer"
    #: Only what its node last reported (temperatures, progress), which is in memory.
    LIVE = "live"
    #: The waiting jobs changed (one submitted, approved, assigned, cancelled, re-prioritised).
    QUEUE = "queue"
    #: Anything may have changed (changes made by another fleet process went unheard for a while).
    EVERYTHING = "everything"


@dataclass(frozen=True)
class Change:
    """What moved, for whoever shows the fleet live (the dashboard): no payload, readers look again."""

    kind: ChangeKind
    printer_id: Optional[str] = None


def actor_of(member: Member) -> str:
    """How a member appears in a job's history: ``manager:1``, ``member:3``."""
    return f"{member.role.value}:{member.id}"


def require_manager(actor: Member) -> None:
    if actor.role is not Role.MANAGER:
        raise Forbidden("only a lab manager may do this", key="managers_only")


def notify(hooks: list[Any], *args: Any) -> int:
    """Run every hook; one that fails is logged, never fatal to the request. Returns how many ran."""
    for hook in hooks:
        try:
            hook(*args)
        except Exception:
            log.exception("a fleet hook failed (%r)", hook)
    return len(hooks)


@dataclass
class Hooks:
    """Who is told what, registered by the fleet's edges (the MQTT link, the broker, the dashboard)."""

    credentials: list[Callable[[], None]] = field(default_factory=list)
    commands: list[CommandHook] = field(default_factory=list)
    work: list[Callable[[], None]] = field(default_factory=list)
    changes: list[Callable[[Change], None]] = field(default_factory=list)
    outbox: list[Callable[[], None]] = field(default_factory=list)

    def on_credentials_changed(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` after a printer is enrolled or revoked (the managed broker reloads then)."""
        self.credentials.append(hook)

    def on_printer_command(self, hook: CommandHook) -> None:
        """Call ``hook(printer_id, command, job_id)`` when a person's action must reach a printer."""
        self.commands.append(hook)

    def on_work_available(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` when a dispatch pass may find something new (a job queued, a printer freed)."""
        self.work.append(hook)

    def on_change(self, hook: Callable[[Change], None]) -> None:
        """Call ``hook(change)`` after this process changed what the dashboard shows (see :class:`Change`)."""
        self.changes.append(hook)

    def on_outbox(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` when notifications may be waiting (the outbox's worker wakes)."""
        self.outbox.append(hook)


class Context:
    """The parts every concern service is built on; one per fleet process."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        *,
        clock: Callable[[], float] = time.time,
        hooks: Optional[Hooks] = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.clock = clock
        self.hooks = hooks or Hooks()
        #: Counters and latencies the fleet link and the dashboard keep (``/api/v1/metrics``).
        self.metrics = FleetMetrics()

    def lab_settings(self) -> LabSettings:
        return LabSettings.from_dict(self.store.get_setting(LAB_SETTINGS_KEY, {}))

    def tell_printer(self, printer_id: str, command: CommandType, job_id: Optional[int]) -> bool:
        """Hand a command to the fleet link; False when nothing links the fleet to its printers."""
        return notify(self.hooks.commands, printer_id, command, job_id) > 0

    def work_available(self) -> None:
        notify(self.hooks.work)

    def credentials_changed(self) -> None:
        notify(self.hooks.credentials)

    def printer_changed(self, printer_id: str) -> None:
        notify(self.hooks.changes, Change(ChangeKind.PRINTER, printer_id))
        self.outbox_changed()

    def outbox_changed(self) -> None:
        """A write may have queued notifications: wake whoever sends them."""
        notify(self.hooks.outbox)

    def live_changed(self, printer_id: str) -> None:
        notify(self.hooks.changes, Change(ChangeKind.LIVE, printer_id))

    def queue_changed(self) -> None:
        notify(self.hooks.changes, Change(ChangeKind.QUEUE))

    def changed_elsewhere(self, note: ChangeNote) -> None:
        """Another fleet process on the database committed a change (PostgreSQL's change notes): tell
        this process's parts as if it had made it; a job waiting or a printer free may be dispatched."""
        if note.kind == "job":
            self.queue_changed()
        for printer_id in note.printer_ids:
            self.printer_changed(printer_id)
        waiting = note.kind == "job" and note.state in {state.value for state in PENDING}
        if waiting or (note.kind == "printer" and note.state in {state.value for state in DISPATCHABLE}):
            self.work_available()

    def missed_changes(self) -> None:
        """Changes by other processes may have gone unheard (the database's notes were lost for a
        while): everything shown live is looked at again, and a dispatch pass may find work."""
        notify(self.hooks.changes, Change(ChangeKind.EVERYTHING))
        self.work_available()

    def job_changed(self, job: Job) -> None:
        """A job moved: the queue may look different, and so may the printer that held it."""
        self.queue_changed()
        self.outbox_changed()
        if job.printer_id is not None:
            self.printer_changed(job.printer_id)
