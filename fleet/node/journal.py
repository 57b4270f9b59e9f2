"""The node's job journal on disk: acks by command id, the fleet's current job, unreported events.

Every change is written at once and atomically (temp file, fsync, rename), so a node that dies at any
moment restarts knowing which commands it already answered and what became of its job.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from ..protocol import (
    Ack,
    AckStatus,
    Command,
    Event,
    EventType,
    ProtocolError,
    decode_command,
    encode_command,
)

log = logging.getLogger(__name__)

FORMAT = 1


class JobPhase(str, Enum):
    """Where the fleet's job on this printer stands."""

    PRINTING = "printing"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: The job is on the printer and not over.
ACTIVE = frozenset({JobPhase.PRINTING, JobPhase.PAUSED})
#: The job is over and its print (or what is left of it) is still on the plate.
FINISHED = frozenset({JobPhase.DONE, JobPhase.FAILED, JobPhase.CANCELLED})

#: What each printer event does to an active job; a pair not listed leaves the phase unchanged.
TRANSITIONS: dict[tuple[JobPhase, EventType], JobPhase] = {
    (JobPhase.PRINTING, EventType.JOB_PAUSED): JobPhase.PAUSED,
    (JobPhase.PAUSED, EventType.JOB_RESUMED): JobPhase.PRINTING,
    **{(p, EventType.JOB_DONE): JobPhase.DONE for p in ACTIVE},
    **{(p, EventType.JOB_FAILED): JobPhase.FAILED for p in ACTIVE},
    **{(p, EventType.JOB_CANCELLED): JobPhase.CANCELLED for p in ACTIVE},
}


@dataclass(frozen=True)
class FleetJob:
    """The job the fleet gave this printer."""

    job_id: int
    command_id: str
    #: Where the printer stored the file (what :meth:`PrinterPort.start` was given).
    path: str
    phase: JobPhase

    def matches(self, name: Optional[str]) -> bool:
        """True when a printer's file path or name refers to this job's file."""
        return bool(name) and (name == self.path or name == Path(self.path).name)


@dataclass(frozen=True)
class Offer:
    """A dispatch waiting for the owner's answer."""

    command: Command
    deadline: float


class Journal:
    """Load with :meth:`load`; each mutating method saves before it returns. Not thread-safe."""

    def __init__(self, path: Path, *, max_acks: int = 500) -> None:
        self.path = path
        self.max_acks = max_acks
        self._acks: dict[str, Ack] = {}
        self._job: Optional[FleetJob] = None
        self._offer: Optional[Offer] = None
        #: A dispatch accepted and being fetched, not yet on the printer.
        self._taking: Optional[Command] = None
        self._outbox: list[Event] = []

    @classmethod
    def load(cls, path: Path, *, max_acks: int = 500) -> Journal:
        """Read the journal at ``path``; a missing file is an empty journal, a corrupt one is set aside."""
        journal = cls(path, max_acks=max_acks)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            journal._restore(data)
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, ProtocolError) as exc:
            aside = path.with_suffix(path.suffix + ".corrupt")
            log.error("journal %s is unreadable (%s); moved to %s, starting empty", path, exc, aside)
            os.replace(path, aside)
            journal = cls(path, max_acks=max_acks)
        return journal

    # -- reading ---------------------------------------------------------------------------------

    def ack_for(self, command_id: str) -> Optional[Ack]:
        return self._acks.get(command_id)

    @property
    def job(self) -> Optional[FleetJob]:
        return self._job

    @property
    def offer(self) -> Optional[Offer]:
        return self._offer

    @property
    def taking(self) -> Optional[Command]:
        """The dispatch accepted and being downloaded; a node that restarts finds it and takes it again."""
        return self._taking

    @property
    def outbox(self) -> list[Event]:
        """Events not yet reported to the fleet, oldest first."""
        return list(self._outbox)

    # -- changing --------------------------------------------------------------------------------

    def record_ack(self, ack: Ack) -> None:
        self._acks.pop(ack.command_id, None)
        self._acks[ack.command_id] = ack
        while len(self._acks) > self.max_acks:
            del self._acks[next(iter(self._acks))]
        self._save()

    def set_job(self, job: Optional[FleetJob], event: Optional[Event] = None) -> None:
        """Replace the current job, queueing ``event`` for the fleet in the same write; a dispatch being
        taken is over either way (it is the job now, or it failed)."""
        self._job = job
        self._taking = None
        if event is not None:
            self._outbox.append(event)
        self._save()

    def set_taking(self, command: Optional[Command]) -> None:
        self._taking = command
        self._save()

    def set_offer(self, offer: Optional[Offer]) -> None:
        self._offer = offer
        self._save()

    def advance(self, event: Event) -> Optional[FleetJob]:
        """Apply a printer event to the current job; return the new job, or None if nothing changed."""
        job = self._job
        if job is None:
            return None
        phase = TRANSITIONS.get((job.phase, event.type))
        if phase is None:
            return None
        updated = replace(job, phase=phase)
        self.set_job(updated, event)
        return updated

    def mark_reported(self, event: Event) -> None:
        if event in self._outbox:
            self._outbox.remove(event)
            self._save()

    # -- disk ------------------------------------------------------------------------------------

    def _restore(self, data: dict[str, Any]) -> None:
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown journal format {data.get('format')!r}")
        self._acks = {
            cid: Ack(cid, AckStatus(a["status"]), float(a["ts"]), a.get("job_id"), a.get("reason", ""))
            for cid, a in data["acks"].items()
        }
        job = data.get("job")
        self._job = (
            None
            if job is None
            else FleetJob(int(job["job_id"]), job["command_id"], job["path"], JobPhase(job["phase"]))
        )
        offer = data.get("offer")
        self._offer = (
            None
            if offer is None
            else Offer(decode_command(offer["command"].encode("utf-8")), float(offer["deadline"]))
        )
        taking = data.get("taking")  # absent from journals written before it existed
        self._taking = None if taking is None else decode_command(taking.encode("utf-8"))
        self._outbox = [
            Event(EventType(e["type"]), float(e["ts"]), e.get("job_id"), e.get("message", ""))
            for e in data["outbox"]
        ]

    def _dump(self) -> dict[str, Any]:
        job, offer = self._job, self._offer
        return {
            "format": FORMAT,
            "acks": {
                cid: {"status": a.status.value, "ts": a.ts, "job_id": a.job_id, "reason": a.reason}
                for cid, a in self._acks.items()
            },
            "job": None
            if job is None
            else {
                "job_id": job.job_id,
                "command_id": job.command_id,
                "path": job.path,
                "phase": job.phase.value,
            },
            "offer": None
            if offer is None
            else {"command": encode_command(offer.command).decode("utf-8"), "deadline": offer.deadline},
            "taking": None if self._taking is None else encode_command(self._taking).decode("utf-8"),
            "outbox": [
                {"type": e.type.value, "ts": e.ts, "job_id": e.job_id, "message": e.message}
                for e in self._outbox
            ],
        }

    def _save(self) -> None:
        write_atomically(self.path, json.dumps(self._dump(), indent=1).encode("utf-8"))


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves either the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(path.parent, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
