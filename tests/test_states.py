"""The job and printer state machines: every pair of states is either an allowed transition or a Conflict."""

from __future__ import annotations

import itertools

import pytest

from fleet.errors import Conflict
from fleet.states import (
    ACTIVE,
    CANCELLABLE,
    JOB_TRANSITIONS,
    PENDING,
    PRINTER_TRANSITIONS,
    TERMINAL,
    JobState,
    PrinterState,
    check_job_transition,
    check_printer_transition,
    freed_printer_state,
)

ALLOWED = {
    (JobState.SUBMITTED, JobState.AWAITING_APPROVAL),
    (JobState.SUBMITTED, JobState.QUEUED),
    (JobState.AWAITING_APPROVAL, JobState.QUEUED),
    (JobState.QUEUED, JobState.ASSIGNED),
    (JobState.ASSIGNED, JobState.PRINTING),
    (JobState.ASSIGNED, JobState.QUEUED),
    (JobState.PRINTING, JobState.PAUSED),
    (JobState.PAUSED, JobState.PRINTING),
    (JobState.PRINTING, JobState.DONE),
    (JobState.UNKNOWN, JobState.DONE),
    (JobState.UNKNOWN, JobState.QUEUED),
}
FORBIDDEN = {
    (JobState.QUEUED, JobState.PRINTING),  # never without an assignment
    (JobState.AWAITING_APPROVAL, JobState.ASSIGNED),  # never without approval
    (JobState.DONE, JobState.QUEUED),
    (JobState.CANCELLED, JobState.QUEUED),
    (JobState.FAILED, JobState.PRINTING),
    (JobState.SUBMITTED, JobState.DONE),
}


def test_named_sets_partition_the_states():
    assert set(JobState) == PENDING | ACTIVE | TERMINAL
    for a, b in itertools.combinations((PENDING, ACTIVE, TERMINAL), 2):
        assert not a & b
    assert CANCELLABLE == PENDING | ACTIVE


def test_terminal_states_have_no_way_out_and_every_other_state_can_end():
    for state in JobState:
        if state in TERMINAL:
            assert not JOB_TRANSITIONS[state]
        else:
            assert JobState.CANCELLED in JOB_TRANSITIONS[state]


PRINTER_ALLOWED = {
    (PrinterState.IDLE, PrinterState.ASSIGNED),  # the scheduler's claim
    (PrinterState.ASSIGNED, PrinterState.PRINTING),
    (PrinterState.ASSIGNED, PrinterState.IDLE),  # a refused dispatch
    (PrinterState.PRINTING, PrinterState.AWAITING_BED_CLEAR),
    (PrinterState.AWAITING_BED_CLEAR, PrinterState.IDLE),  # the plate is clear
    (PrinterState.OFFLINE, PrinterState.PRINTING),  # back, and it never stopped
    (PrinterState.ERROR, PrinterState.OFFLINE),
    (PrinterState.PRINTING, PrinterState.MAINTENANCE),  # credentials revoked
    (PrinterState.MAINTENANCE, PrinterState.IDLE),  # a manager puts it back
    (PrinterState.MAINTENANCE, PrinterState.OFFLINE),
}
PRINTER_FORBIDDEN = {
    (PrinterState.AWAITING_BED_CLEAR, PrinterState.ASSIGNED),  # never onto a full plate
    (PrinterState.OFFLINE, PrinterState.ASSIGNED),
    (PrinterState.PRINTING, PrinterState.ASSIGNED),
    (PrinterState.ERROR, PrinterState.ASSIGNED),
    (PrinterState.MAINTENANCE, PrinterState.PRINTING),  # only a manager ends maintenance
    (PrinterState.MAINTENANCE, PrinterState.AWAITING_BED_CLEAR),
    (PrinterState.MAINTENANCE, PrinterState.ASSIGNED),
}


#: Every pair of either machine beside that machine's check, so one test walks both.
ALLOWED_MOVES = [(check_job_transition, pair) for pair in sorted(ALLOWED)] + [
    (check_printer_transition, pair) for pair in sorted(PRINTER_ALLOWED)
]
FORBIDDEN_MOVES = [(check_job_transition, pair) for pair in sorted(FORBIDDEN)] + [
    (check_printer_transition, pair) for pair in sorted(PRINTER_FORBIDDEN)
]


@pytest.mark.parametrize(("check", "pair"), ALLOWED_MOVES)
def test_allowed_transitions(check, pair):
    check(*pair)


@pytest.mark.parametrize(("check", "pair"), FORBIDDEN_MOVES)
def test_forbidden_transitions_are_conflicts_naming_both_states(check, pair):
    current, target = pair
    with pytest.raises(Conflict) as caught:
        check(current, target)
    assert current.value in caught.value.message and target.value in caught.value.message


def test_every_printer_state_has_a_row_and_only_idle_leads_to_work():
    assert set(PRINTER_TRANSITIONS) == set(PrinterState)
    for state in PrinterState:
        check_printer_transition(state, state)  # the same state again is no move
    assert {s for s, targets in PRINTER_TRANSITIONS.items() if PrinterState.ASSIGNED in targets} == {
        PrinterState.IDLE
    }


def test_a_freed_printer_offline_or_in_maintenance_stays_so():
    assert (
        freed_printer_state(PrinterState.PRINTING, PrinterState.AWAITING_BED_CLEAR)
        is PrinterState.AWAITING_BED_CLEAR
    )
    assert freed_printer_state(PrinterState.OFFLINE, PrinterState.IDLE) is PrinterState.OFFLINE
    assert freed_printer_state(PrinterState.MAINTENANCE, PrinterState.IDLE) is PrinterState.MAINTENANCE
