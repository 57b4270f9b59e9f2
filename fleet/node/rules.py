"""The node's decisions as pure functions: what state to report, whether to take a job, when to publish."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ..lending import Lending
from ..protocol import OFFLINE, Capabilities, Channel, NodeState, Status, topic
from .journal import ACTIVE, FINISHED, FleetJob, Offer
from .printer import PrinterSnapshot


def availability_will(printer_id: str) -> tuple[str, bytes, bool]:
    """The last will a node's link is built with: ``offline``, retained, on the availability topic."""
    return topic(printer_id, Channel.AVAILABILITY), OFFLINE.encode("utf-8"), True


def node_state(snapshot: PrinterSnapshot, job: Optional[FleetJob]) -> NodeState:
    if not snapshot.operational:
        return NodeState.ERROR if snapshot.error else NodeState.DISCONNECTED
    if job is not None and job.phase in FINISHED:
        return NodeState.AWAITING_BED_CLEAR
    if snapshot.busy:
        if job is not None and job.phase in ACTIVE and job.matches(snapshot.file_path or snapshot.file_name):
            return NodeState.PAUSED if snapshot.paused else NodeState.PRINTING
        if snapshot.finishing and job is None:
            # OctoPrint calls a print done while its end script still runs (state Finishing): no print
            # of the printer's own, and free in a moment (a dispatch meanwhile waits for the end).
            return NodeState.IDLE
        return NodeState.BUSY_LOCAL
    return NodeState.IDLE


def dispatch_refusal(snapshot: PrinterSnapshot, job: Optional[FleetJob], offer: Optional[Offer]) -> str:
    """Why this printer cannot take a new fleet job now; empty when it can."""
    if not snapshot.operational:
        return "printer is not operational" + (f": {snapshot.error}" if snapshot.error else "")
    if job is not None and job.phase in FINISHED:
        return f"waiting for the bed to be cleared after job {job.job_id}"
    if job is not None:
        return f"already has fleet job {job.job_id}"
    if offer is not None:
        return "another job is waiting for the owner's answer"
    if snapshot.busy:
        return "busy with a local print"
    return ""


def build_status(
    snapshot: PrinterSnapshot,
    job: Optional[FleetJob],
    capabilities: Capabilities,
    now: float,
    lending: Optional[Lending] = None,
) -> Status:
    state = node_state(snapshot, job)
    on_job = state in (NodeState.PRINTING, NodeState.PAUSED)
    return Status(
        state=state,
        ts=now,
        temperatures=dict(snapshot.temperatures),
        progress=_clamp(snapshot.progress) if snapshot.busy else None,
        job_id=job.job_id if job is not None else None,
        eta=now + snapshot.time_left_s if on_job and snapshot.time_left_s is not None else None,
        capabilities=capabilities,
        message=snapshot.error,
        lending=lending,
    )


def _clamp(progress: Optional[float]) -> Optional[float]:
    return None if progress is None else min(100.0, max(0.0, float(progress)))


_SLICED_SUFFIXES = (".gcode.3mf", ".3mf", ".bgcode", ".gcode", ".gco", ".g")


def stored_name(job_id: int, filename: str) -> str:
    """A safe file name for a fleet job on the printer: the job id, then the sender's name, cleaned."""
    stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    # The fleet sends plain G-code whatever the member uploaded (a .bgcode or a sliced .3mf is decoded
    # at intake), so the sender's extension goes and ".gcode" takes its place.
    for suffix in _SLICED_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "job"
    return f"{job_id}-{stem[:80]}.gcode"


@dataclass(frozen=True)
class _Key:
    state: NodeState
    job_id: Optional[int]
    progress: Optional[float]
    temperatures: tuple[tuple[str, Optional[float], Optional[float]], ...]
    message: str


def _key(status: Status) -> _Key:
    # Small jitter (tenths of a degree, hundredths of a percent) is not a change worth a message.
    return _Key(
        status.state,
        status.job_id,
        None if status.progress is None else round(status.progress, 1),
        tuple((name, _round(t.actual), _round(t.target)) for name, t in sorted(status.temperatures.items())),
        status.message,
    )


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value * 2) / 2


class StatusGate:
    """Decides when a status is worth publishing: a new state at once, other changes at most every
    ``min_interval`` seconds."""

    def __init__(self, min_interval: float = 1.0) -> None:
        self.min_interval = min_interval
        self._last: Optional[_Key] = None
        self._last_at = float("-inf")

    def should_publish(self, status: Status, now: float) -> bool:
        key = _key(status)
        if self._last is not None and key == self._last:
            return False
        state_changed = self._last is None or key.state != self._last.state or key.job_id != self._last.job_id
        if not state_changed and now - self._last_at < self.min_interval:
            return False
        self._last, self._last_at = key, now
        return True

    def reset(self) -> None:
        """Forget what was published (after a reconnect, publish the next status whatever it is)."""
        self._last = None
        self._last_at = float("-inf")
