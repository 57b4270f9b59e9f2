"""What printers report, through the MQTT link: their jobs' progress and outcomes, and their live status.

The fleet link (:mod:`fleet.fleetlink`) decodes the messages and calls this service; it never writes
the store itself. The live status (temperatures, progress) is kept here in memory, beside what
writes it: the API and the dashboard read it through :meth:`PrinterReports.live`.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from contextlib import suppress
from typing import Any, Optional

from ..errors import Conflict, Forbidden, Invalid
from ..models import Job, LiveStatus, Printer
from ..protocol import Capabilities
from ..spools import printed_so_far
from ..states import TERMINAL, JobState, PrinterState, freed_printer_state
from .base import Context
from .checks import check_material, check_nozzle, check_volume
from .pricing import Pricing

#: A printer is held by these jobs until it reports how they ended.
HELD = frozenset({JobState.ASSIGNED, JobState.PRINTING, JobState.PAUSED})


class PrinterReports:
    """Records what each printer says happened; a repeated report changes nothing."""

    def __init__(self, ctx: Context, pricing: Pricing) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.pricing = pricing
        self._live: dict[str, LiveStatus] = {}
        self._live_lock = threading.Lock()

    # -- the live view (memory only) ------------------------------------------------------------

    def live(self, printer_id: str) -> Optional[LiveStatus]:
        with self._live_lock:
            return self._live.get(printer_id)

    def set_live(self, printer_id: str, status: LiveStatus) -> None:
        with self._live_lock:
            self._live[printer_id] = status
        self.ctx.live_changed(printer_id)

    def clear_live(self, printer_id: str) -> None:
        with self._live_lock:
            had = self._live.pop(printer_id, None) is not None
        if had:
            self.ctx.live_changed(printer_id)

    # -- what the link reads ----------------------------------------------------------------------

    def printer_and_revoked(self, printer_id: str) -> tuple[Printer, bool]:
        """A printer and whether its credentials are revoked (its messages are then refused)."""
        return self.store.printer_and_revoked(printer_id)

    def job(self, job_id: int) -> Job:
        """A job as the link follows it (no member's permission applies: the fleet asks itself)."""
        return self.store.get_job(job_id)

    def jobs_in(self, states: Collection[JobState]) -> list[Job]:
        return self.store.list_jobs(states=states)

    def assigned_at(self, job_id: int) -> Optional[float]:
        """When a job was last assigned (its dispatch command is derived from it); None if never."""
        assigned = [e.at for e in self.store.job_events(job_id) if e.to_state is JobState.ASSIGNED]
        return assigned[-1] if assigned else None

    # -- what printers report ---------------------------------------------------------------------

    def touch(self, seen: Mapping[str, float]) -> None:
        """Record when printers were last heard from (``{printer id: when}``), in one write."""
        self.store.touch_printers(seen)

    def capability_changes(self, printer: Printer, caps: Capabilities) -> dict[str, Any]:
        """What a node's reported capabilities change on its printer; :class:`Invalid` names a bad one.

        While a spool of the fleet is loaded on the printer, its material is the spool's: what the
        node says is loaded is not taken (asked only when the two differ).
        """
        changes: dict[str, Any] = {}
        if caps.material is not None:
            material = check_material(caps.material, "capabilities.material")
            if material != printer.material and self.store.spool_on(printer.id) is None:
                changes["material"] = material
        if caps.nozzle_diameter is not None and caps.nozzle_diameter != printer.nozzle_diameter:
            changes["nozzle_diameter"] = check_nozzle(caps.nozzle_diameter)
        if caps.volume is not None and caps.volume != printer.volume:
            changes["volume"] = check_volume(caps.volume.to_dict())
        # The profile's keys are checked by the protocol's decoder; a node that leaves one out keeps
        # what the fleet knew (an older plugin does not say, and saying nothing is not "none").
        reported = {
            "bed_shape": None if caps.bed_shape is None else caps.bed_shape.value,
            "heated_bed": caps.heated_bed,
            "heated_chamber": caps.heated_chamber,
            "extruders": caps.extruders,
        }
        for name, value in reported.items():
            if value is not None and value != getattr(printer, name):
                changes[name] = value
        return changes

    def record_status(self, printer_id: str, changes: Mapping[str, Any]) -> Printer:
        """A status changed a printer's state or capabilities (``state``, ``material``, ``volume`` ...).

        The store refuses a state the printer may not move to (see ``PRINTER_TRANSITIONS``).
        """
        updated = self.store.update_printer(printer_id, **changes)
        self.ctx.printer_changed(printer_id)
        if "state" in changes and updated.state is PrinterState.IDLE:
            self.ctx.work_available()
        return updated

    def back_without_job(self, printer_id: str, job_id: int) -> None:
        """A printer is back and not running the job it held, whose outcome is unknown.

        The outcome stays for its events or a manager to settle; the printer lets go of the job and
        waits for someone to look at the plate. A printer holding another job by now is left alone.
        """
        with suppress(Conflict):
            self.store.release_printer(printer_id, PrinterState.AWAITING_BED_CLEAR, expect_job_id=job_id)
            self.ctx.printer_changed(printer_id)

    def printer_offline(
        self, printer_id: str, reason: str = "printer unreachable, outcome unknown"
    ) -> Printer:
        """A printer's node is gone: the printer is offline, and a job it held has an unknown outcome.

        The job stays with the printer (not back in the queue: it may still be printing); when the
        node returns, what it reports settles the job.
        """
        printer = self.store.get_printer(printer_id)
        if printer.current_job_id is not None:
            self.job_unreachable(printer.current_job_id, f"printer:{printer_id}", reason)
        if printer.state in (PrinterState.OFFLINE, PrinterState.MAINTENANCE):
            return printer
        offline = self.store.update_printer(printer_id, state=PrinterState.OFFLINE)
        self.ctx.printer_changed(printer_id)
        return offline

    def job_unreachable(self, job_id: int, actor: str, reason: str) -> None:
        """A held job's printer cannot be reached: nobody knows how the job ends until it tells."""
        with suppress(Conflict):  # already unknown, or settled meanwhile
            job = self.store.transition_job(
                job_id, JobState.UNKNOWN, actor=actor, reason=reason, now=self.ctx.clock(), expect=HELD
            )
            self.ctx.job_changed(job)

    def printer_job_event(self, printer_id: str, job_id: int, target: JobState, reason: str) -> bool:
        """A printer reports its job moved to ``target``; False when the job was already there.

        Events arrive at least once: a repeat is a no-op. A printer may only report its own job
        (:class:`Forbidden` otherwise). Terminal outcomes leave the printer waiting for a bed clear.
        """
        try:
            return self._printer_job_event(printer_id, job_id, target, reason)
        except Conflict:
            # Another fleet process on the database recorded the same event a moment before (both
            # hear every event until they share the subscriptions): a repeat, as above.
            if self.store.get_job(job_id).state is target:
                return False
            raise

    def _printer_job_event(self, printer_id: str, job_id: int, target: JobState, reason: str) -> bool:
        job = self.store.get_job(job_id)
        if job.printer_id != printer_id:
            raise Forbidden(f"job {job_id} is not dispatched to printer {printer_id}", field="job_id")
        if job.state is target:
            return False
        actor = f"printer:{printer_id}"
        if target in TERMINAL:
            self.finish_job(job_id, target, actor=actor, reason=reason)
            return True
        now = self.ctx.clock()

        def hold(printer: Printer) -> Optional[dict[str, Any]]:
            if printer.current_job_id in (None, job_id) and printer.state is not PrinterState.MAINTENANCE:
                return {"state": PrinterState(target.value), "current_job_id": job_id, "last_seen": now}
            return None

        moved = self.store.transition_job(
            job_id, target, actor=actor, reason=reason, now=now, printer_changes=hold
        )
        self.ctx.job_changed(moved)
        return True

    def finish_job(self, job_id: int, outcome: JobState, *, actor: str, reason: str) -> Job:
        """A printer reports a job's end: the job settles and the printer waits for its bed to be cleared.

        Its charge is fixed, and its filament taken off the spool it used, in the same transaction; a
        print that did not finish counts the share its printer last reported done (else the share of its
        estimated time it ran).
        """
        if outcome not in TERMINAL:
            raise Invalid(f"{outcome.value} is not an outcome")

        def settle(printer: Printer) -> Optional[dict[str, Any]]:
            if printer.current_job_id not in (None, job_id):
                return None
            return {
                "state": freed_printer_state(printer.state, PrinterState.AWAITING_BED_CLEAR),
                "current_job_id": None,
            }

        now = self.ctx.clock()
        job = self.store.get_job(job_id)
        live = None if job.printer_id is None else self.live(job.printer_id)
        # The share printed, from the printer's last progress for this job, else the time it ran.
        share = printed_so_far(job, live, now)
        finished = self.store.transition_job(
            job_id,
            outcome,
            actor=actor,
            reason=reason,
            now=now,
            printer_changes=settle,
            then=self.pricing.charge_step(share),
            printed_share=share,
        )
        self.ctx.job_changed(finished)
        return finished

    def requeue_assignment(self, job_id: int, printer_id: str, reason: str) -> bool:
        """A dispatch the printer refused or never answered: the job waits again, the printer is free.

        Also a job that went unknown before it started, whose printer declined when asked again.
        False when the job is no longer assigned to that printer (it started, or was cancelled).
        """
        job = self.store.get_job(job_id)
        # An unknown job that never started is one its printer was asked about again, and declined.
        never_started = job.state is JobState.UNKNOWN and job.started_at is None
        if (job.state is not JobState.ASSIGNED and not never_started) or job.printer_id != printer_id:
            return False

        def free(printer: Printer) -> Optional[dict[str, Any]]:
            if printer.current_job_id != job_id:
                return None  # the printer holds something else now; leave it
            return {"state": freed_printer_state(printer.state, PrinterState.IDLE), "current_job_id": None}

        try:
            self.store.transition_job(
                job_id,
                JobState.QUEUED,
                actor=f"printer:{printer_id}",
                reason=reason,
                now=self.ctx.clock(),
                expect={job.state},
                printer_id=None,
                printer_changes=free,
            )
        except Conflict:
            return False
        self.ctx.job_changed(job)  # the job as it was: its printer is the one freed
        self.ctx.work_available()
        return True
