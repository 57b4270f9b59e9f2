"""The counts monitoring reads when it scrapes: printers and jobs by state, the queue's oldest job."""

from __future__ import annotations

from fleet.models import Member
from fleet.states import JobState, PrinterState
from fleet.store import Store

from .helpers import T0, make_printer, submit


def test_printers_are_counted_by_state_with_every_state_named(store: Store) -> None:
    assert store.count_printers_by_state() == dict.fromkeys(PrinterState, 0)
    store.create_printer(make_printer("mini-1"))
    store.create_printer(make_printer("mini-2"))
    store.create_printer(make_printer("mk4-1", state=PrinterState.OFFLINE))

    counts = store.count_printers_by_state()

    assert counts[PrinterState.IDLE] == 2
    assert counts[PrinterState.OFFLINE] == 1
    assert sum(counts.values()) == 3 and set(counts) == set(PrinterState)


def test_jobs_are_counted_by_state_and_finishing_moves_the_count(store: Store, member: Member) -> None:
    queued = submit(store, member.id, count=3)
    submit(store, member.id, state=JobState.AWAITING_APPROVAL)
    store.transition_job(queued[0].id, JobState.CANCELLED, actor="test", reason="changed my mind", now=T0 + 1)

    counts = store.count_jobs_by_state()

    assert counts[JobState.QUEUED] == 2
    assert counts[JobState.AWAITING_APPROVAL] == 1
    assert counts[JobState.CANCELLED] == 1
    assert counts[JobState.DONE] == 0 and set(counts) == set(JobState)


def test_the_oldest_submission_of_a_state(store: Store, member: Member) -> None:
    assert store.oldest_submission(JobState.QUEUED) is None
    submit(store, member.id, now=T0 + 50)
    submit(store, member.id, now=T0 + 10)
    submit(store, member.id, state=JobState.AWAITING_APPROVAL, now=T0)

    assert store.oldest_submission(JobState.QUEUED) == T0 + 10
    assert store.oldest_submission(JobState.AWAITING_APPROVAL) == T0
