"""The job state machine: every pair of states is either an allowed transition or a Conflict."""

from __future__ import annotations

import itertools

import pytest

from fleet.errors import Conflict
from fleet.states import (
    ACTIVE,
    CANCELLABLE,
    JOB_TRANSITIONS,
    PENDING,
    TERMINAL,
    JobState,
    check_job_transition,
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


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_transitions(current, target):
    check_job_transition(current, target)


@pytest.mark.parametrize(("current", "target"), sorted(FORBIDDEN))
def test_forbidden_transitions_are_conflicts_naming_both_states(current, target):
    with pytest.raises(Conflict) as caught:
        check_job_transition(current, target)
    assert current.value in caught.value.message and target.value in caught.value.message


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
