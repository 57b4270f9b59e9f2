"""The job and printer state machines: one Enum each, with named sets and the allowed transitions."""

from __future__ import annotations

from enum import Enum

from .errors import Conflict


class JobState(str, Enum):
    SUBMITTED = "submitted"
    AWAITING_APPROVAL = "awaiting_approval"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    PRINTING = "printing"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: The printer stopped answering while it had the job: nobody knows yet whether it printed.
    UNKNOWN = "unknown"


#: Waiting for a printer (or for a manager).
PENDING = frozenset({JobState.SUBMITTED, JobState.AWAITING_APPROVAL, JobState.QUEUED})
#: Held by a printer.
ACTIVE = frozenset({JobState.ASSIGNED, JobState.PRINTING, JobState.PAUSED, JobState.UNKNOWN})
#: Finished for good.
TERMINAL = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})
#: A member (own jobs) or a manager may still cancel these.
CANCELLABLE = PENDING | ACTIVE

JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.SUBMITTED: frozenset({JobState.AWAITING_APPROVAL, JobState.QUEUED, JobState.CANCELLED}),
    JobState.AWAITING_APPROVAL: frozenset({JobState.QUEUED, JobState.CANCELLED}),
    JobState.QUEUED: frozenset({JobState.ASSIGNED, JobState.CANCELLED}),
    # An assignment that is refused or never acknowledged goes back to the queue.
    JobState.ASSIGNED: frozenset(
        {JobState.PRINTING, JobState.QUEUED, JobState.FAILED, JobState.CANCELLED, JobState.UNKNOWN}
    ),
    JobState.PRINTING: frozenset(
        {JobState.PAUSED, JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.UNKNOWN}
    ),
    JobState.PAUSED: frozenset({JobState.PRINTING, JobState.FAILED, JobState.CANCELLED, JobState.UNKNOWN}),
    # The printer comes back and tells; or a manager settles the outcome (or requeues it).
    JobState.UNKNOWN: frozenset(
        {
            JobState.PRINTING,
            JobState.PAUSED,
            JobState.DONE,
            JobState.FAILED,
            JobState.CANCELLED,
            JobState.QUEUED,
        }
    ),
    JobState.DONE: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


def check_job_transition(current: JobState, target: JobState) -> None:
    """Raise :class:`Conflict` unless a job may move from ``current`` to ``target``."""
    if target not in JOB_TRANSITIONS[current]:
        raise Conflict(
            f"a job that is {current.value} cannot become {target.value}",
            details={"from": current.value, "to": target.value},
        )


class PrinterState(str, Enum):
    OFFLINE = "offline"
    IDLE = "idle"
    #: A job was dispatched; the printer has not started it yet.
    ASSIGNED = "assigned"
    PRINTING = "printing"
    PAUSED = "paused"
    #: A job finished: nothing is dispatched until a person confirms the plate is clear.
    AWAITING_BED_CLEAR = "awaiting_bed_clear"
    ERROR = "error"
    #: Taken out of the pool by a manager.
    MAINTENANCE = "maintenance"


#: Only these printers receive work.
DISPATCHABLE = frozenset({PrinterState.IDLE})
#: These printers hold a job.
BUSY = frozenset({PrinterState.ASSIGNED, PrinterState.PRINTING, PrinterState.PAUSED})

#: Every state a printer reports or is put in may follow most others (a node tells what the printer
#: does, and the fleet follows it), so the table names what must never happen: work is handed only to
#: an idle printer, and a printer in maintenance comes back only through a manager (idle) or a new
#: enrollment (offline, until its node speaks). A write that repeats the current state is no move.
PRINTER_TRANSITIONS: dict[PrinterState, frozenset[PrinterState]] = {
    PrinterState.OFFLINE: frozenset(
        {
            PrinterState.IDLE,
            PrinterState.PRINTING,
            PrinterState.PAUSED,
            PrinterState.AWAITING_BED_CLEAR,
            PrinterState.ERROR,
            PrinterState.MAINTENANCE,
        }
    ),
    # Only the scheduler's claim takes an idle printer to assigned.
    PrinterState.IDLE: frozenset(set(PrinterState) - {PrinterState.IDLE}),
    PrinterState.ASSIGNED: frozenset(set(PrinterState) - {PrinterState.ASSIGNED}),
    PrinterState.PRINTING: frozenset(set(PrinterState) - {PrinterState.PRINTING, PrinterState.ASSIGNED}),
    PrinterState.PAUSED: frozenset(set(PrinterState) - {PrinterState.PAUSED, PrinterState.ASSIGNED}),
    # Idle once the plate is confirmed clear (see the printers service); never straight to work.
    PrinterState.AWAITING_BED_CLEAR: frozenset(
        set(PrinterState) - {PrinterState.AWAITING_BED_CLEAR, PrinterState.ASSIGNED}
    ),
    PrinterState.ERROR: frozenset(set(PrinterState) - {PrinterState.ERROR, PrinterState.ASSIGNED}),
    PrinterState.MAINTENANCE: frozenset({PrinterState.IDLE, PrinterState.OFFLINE}),
}


def check_printer_transition(current: PrinterState, target: PrinterState) -> None:
    """Raise :class:`Conflict` unless a printer may move from ``current`` to ``target`` (same: no move)."""
    if target is not current and target not in PRINTER_TRANSITIONS[current]:
        raise Conflict(
            f"a printer that is {current.value} cannot become {target.value}",
            details={"from": current.value, "to": target.value},
        )


#: A printer that lets go of its job stays in these states (nobody is at it, or a manager took it out).
KEEPS_STATE_WHEN_FREED = frozenset({PrinterState.OFFLINE, PrinterState.MAINTENANCE})


def freed_printer_state(current: PrinterState, wanted: PrinterState) -> PrinterState:
    """A printer's state once its job ends or goes back: ``wanted``, unless offline or in maintenance."""
    return current if current in KEEPS_STATE_WHEN_FREED else wanted
