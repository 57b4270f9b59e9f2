"""What the fleet tells people about: the event kinds, who may hear each, and which job moves raise one.

An event is raised inside the store's transaction that causes it (a job's move, a printer's state),
so the outbox rows that deliver it exist exactly when the change does. Its key names the event
itself (``job:7:done:42``); each delivery adds the channel or webhook to it, and that delivery key is
unique, so an event is delivered at most once per channel whatever happens around it.
"""

from __future__ import annotations

from enum import Enum
from typing import Optional

from ..states import JobState


class EventKind(str, Enum):
    # -- a member hears about their own jobs ------------------------------------------------------
    JOB_STARTED = "job_started"
    JOB_DONE = "job_done"
    JOB_FAILED = "job_failed"
    BED_CLEAR = "bed_clear"
    JOB_NEEDS_APPROVAL = "job_needs_approval"
    JOB_APPROVED = "job_approved"
    JOB_REFUSED = "job_refused"
    #: A job was handed to a home printer: its owner (who enrolled it) may have to accept it there.
    JOB_OFFERED = "job_offered"
    # -- managers hear about the lab ---------------------------------------------------------------
    PRINTER_ERROR = "printer_error"
    PRINTER_OFFLINE = "printer_offline"
    SPOOL_LOW = "spool_low"
    JOB_WAITING = "job_waiting"


#: What a member may choose to hear (about their jobs and their home printers).
MEMBER_KINDS = (
    EventKind.JOB_STARTED,
    EventKind.JOB_DONE,
    EventKind.JOB_FAILED,
    EventKind.BED_CLEAR,
    EventKind.JOB_NEEDS_APPROVAL,
    EventKind.JOB_APPROVED,
    EventKind.JOB_REFUSED,
    EventKind.JOB_OFFERED,
)
#: What only managers may choose to hear (about the whole lab).
MANAGER_KINDS = (
    EventKind.PRINTER_ERROR,
    EventKind.PRINTER_OFFLINE,
    EventKind.SPOOL_LOW,
    EventKind.JOB_WAITING,
)
ALL_KINDS = MEMBER_KINDS + MANAGER_KINDS


def kinds_for(manager: bool) -> tuple[EventKind, ...]:
    """The kinds a member (or a manager, who hears the lab's too) may subscribe a channel to."""
    return ALL_KINDS if manager else MEMBER_KINDS


def parse_kinds(values: object, *, manager: bool, field: str = "kinds") -> tuple[EventKind, ...]:
    """A list of kind names as given (JSON, a form), checked and in canonical order; ValueError names one."""
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"{field} must be a list of event kinds")
    allowed = kinds_for(manager)
    chosen: set[EventKind] = set()
    for value in values:
        try:
            kind = EventKind(value)
        except ValueError:
            known = ", ".join(k.value for k in allowed)
            raise ValueError(f"{field}: {str(value)[:40]!r} is no event kind; choose among {known}") from None
        if kind not in allowed:
            raise ValueError(f"{field}: only managers may be told of {kind.value}")
        chosen.add(kind)
    return tuple(k for k in ALL_KINDS if k in chosen)


def job_move_kind(from_state: Optional[JobState], to_state: JobState) -> Optional[EventKind]:
    """The event a job's move raises for its member, or None (most moves raise nothing)."""
    if to_state is JobState.PRINTING and from_state is JobState.ASSIGNED:
        return EventKind.JOB_STARTED
    if to_state is JobState.DONE:
        return EventKind.JOB_DONE
    if to_state is JobState.FAILED:
        return EventKind.JOB_FAILED
    if to_state is JobState.AWAITING_APPROVAL:
        return EventKind.JOB_NEEDS_APPROVAL
    if from_state is JobState.AWAITING_APPROVAL and to_state is JobState.QUEUED:
        return EventKind.JOB_APPROVED
    if from_state is JobState.AWAITING_APPROVAL and to_state is JobState.CANCELLED:
        return EventKind.JOB_REFUSED
    return None
