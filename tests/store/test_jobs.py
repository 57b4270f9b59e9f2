"""Jobs: submission, the state machine and its history, priority, usage."""

from __future__ import annotations

import pytest

from fleet.errors import Conflict, Invalid, NotFound
from fleet.models import JobEvent, Member
from fleet.states import JobState, PrinterState
from fleet.store import Store

from .helpers import SHA_A, SHA_B, T0, make_printer, submit


def test_create_jobs_records_each_first_event(store: Store, member: Member) -> None:
    jobs = submit(store, member.id, count=3, state=JobState.SUBMITTED, note="three of them", priority=2)

    assert len({job.id for job in jobs}) == 3
    for job in jobs:
        assert store.get_job(job.id) == job
        assert (job.state, job.priority, job.note, job.analysis) == (
            JobState.SUBMITTED,
            2,
            "three of them",
            {"layers": 120},
        )
        assert (job.submitted_at, job.updated_at, job.started_at, job.finished_at) == (T0, T0, None, None)
        assert job.printer_id is None
        [event] = store.job_events(job.id)
        assert event == JobEvent(
            event.id, job.id, T0, None, JobState.SUBMITTED, f"member:{member.id}", "submitted", {}
        )


def test_create_jobs_checks_count_and_member(store: Store, member: Member) -> None:
    with pytest.raises(Invalid, match="count"):
        submit(store, member.id, count=0)
    with pytest.raises(NotFound, match="no member with id 999"):
        submit(store, 999)
    with pytest.raises(Invalid, match="file_sha256"):
        submit(store, member.id, file_sha256="../benchy.gcode")
    assert store.list_jobs() == []


def test_list_filters_and_pages_in_id_order(store: Store, member: Member) -> None:
    bob = store.create_member("bob", store.get_member(member.id).role, now=T0)
    queued = submit(store, member.id, count=3)
    waiting = submit(store, bob.id, count=2, state=JobState.AWAITING_APPROVAL)
    all_ids = [job.id for job in queued + waiting]

    assert [job.id for job in store.list_jobs()] == sorted(all_ids)
    assert store.list_jobs(states=[JobState.AWAITING_APPROVAL]) == waiting
    assert store.list_jobs(member_id=member.id) == queued
    assert store.list_jobs(member_id=bob.id, states=[JobState.QUEUED]) == []
    assert store.list_jobs(limit=2, offset=1) == store.list_jobs()[1:3]
    assert store.list_jobs(states=[]) == []
    assert [job.id for job in store.list_jobs(newest_first=True, limit=2)] == sorted(all_ids)[::-1][:2]


def test_list_jobs_of_a_printer(store: Store, member: Member) -> None:
    store.create_printer(make_printer("mini-1"))
    first, second, _elsewhere = submit(store, member.id, count=3)
    for job in (first, second):
        assert store.assign_job(job.id, "mini-1", actor="scheduler", now=T0)
        store.transition_job(job.id, JobState.FAILED, actor="printer:mini-1", reason="", now=T0 + 1)
        store.release_printer("mini-1", PrinterState.IDLE, expect_job_id=job.id)

    on_printer = store.list_jobs(printer_id="mini-1", states=[JobState.FAILED], newest_first=True)
    assert [job.id for job in on_printer] == [second.id, first.id]


def test_a_full_life_is_stamped_and_recorded(store: Store, member: Member) -> None:
    store.create_printer(make_printer("mini-1"))
    [job] = submit(store, member.id, state=JobState.SUBMITTED)
    steps = [
        (JobState.QUEUED, "system", "no approval needed", {}),
        (JobState.ASSIGNED, "scheduler", "fits mini-1", {"score": 3}),
        (JobState.PRINTING, "printer:mini-1", "started", {}),
        (JobState.PAUSED, "manager:1", "filament check", {}),
        (JobState.PRINTING, "printer:mini-1", "resumed", {}),
        (JobState.DONE, "printer:mini-1", "finished", {"layers": 120}),
    ]
    for offset, (state, actor, reason, data) in enumerate(steps, start=1):
        job = store.transition_job(
            job.id,
            state,
            actor=actor,
            reason=reason,
            now=T0 + offset * 100,
            data=data,
            **({"printer_id": "mini-1"} if state is JobState.ASSIGNED else {}),
        )

    assert job.state is JobState.DONE
    assert job.printer_id == "mini-1"
    # Started the first time it printed, not when it resumed.
    assert (job.started_at, job.finished_at, job.updated_at) == (T0 + 300, T0 + 600, T0 + 600)
    events = store.job_events(job.id)
    previous = [JobState.SUBMITTED] + [state for state, *_ in steps[:-1]]
    assert [(e.from_state, e.to_state, e.actor, e.reason, e.data, e.at) for e in events[1:]] == [
        (before, state, actor, reason, data, T0 + offset * 100)
        for offset, (before, (state, actor, reason, data)) in enumerate(zip(previous, steps), start=1)
    ]


@pytest.mark.parametrize("final", [JobState.FAILED, JobState.CANCELLED])
def test_other_endings_are_stamped(store: Store, member: Member, final: JobState) -> None:
    [job] = submit(store, member.id)
    store.transition_job(job.id, JobState.ASSIGNED, actor="scheduler", reason="", now=T0 + 1)

    ended = store.transition_job(job.id, final, actor="manager:1", reason="no", now=T0 + 9)

    assert (ended.state, ended.started_at, ended.finished_at) == (final, None, T0 + 9)


def test_a_forbidden_transition_changes_nothing(store: Store, member: Member) -> None:
    [job] = submit(store, member.id)

    with pytest.raises(Conflict, match="a job that is queued cannot become done"):
        store.transition_job(job.id, JobState.DONE, actor="system", reason="oops", now=T0 + 1)

    assert store.get_job(job.id) == job
    assert len(store.job_events(job.id)) == 1


def test_expect_guards_against_a_state_that_moved_on(store: Store, member: Member) -> None:
    [job] = submit(store, member.id, state=JobState.AWAITING_APPROVAL)
    store.transition_job(job.id, JobState.CANCELLED, actor="member:1", reason="changed my mind", now=T0 + 1)

    with pytest.raises(Conflict, match=r"job \d+ is cancelled, expected awaiting_approval"):
        store.transition_job(
            job.id,
            JobState.QUEUED,
            actor="manager:1",
            reason="approved",
            now=T0 + 2,
            expect=[JobState.AWAITING_APPROVAL],
        )


def test_requeue_clears_the_printer(store: Store, member: Member) -> None:
    store.create_printer(make_printer("mini-1"))
    [job] = submit(store, member.id)
    assert store.assign_job(job.id, "mini-1", actor="scheduler", now=T0 + 1)

    requeued = store.transition_job(
        job.id, JobState.QUEUED, actor="system", reason="not acknowledged", now=T0 + 2, printer_id=None
    )

    assert (requeued.state, requeued.printer_id) == (JobState.QUEUED, None)


def test_transitions_of_a_missing_job(store: Store) -> None:
    with pytest.raises(NotFound, match="no job with id 42"):
        store.transition_job(42, JobState.QUEUED, actor="system", reason="", now=T0)
    with pytest.raises(NotFound, match="no job with id 42"):
        store.job_events(42)


def test_priority_change_is_an_event(store: Store, member: Member) -> None:
    [job] = submit(store, member.id)

    changed = store.set_priority(job.id, 5, actor="manager:1", now=T0 + 3)

    assert (changed.priority, changed.state, changed.updated_at) == (5, JobState.QUEUED, T0 + 3)
    event = store.job_events(job.id)[-1]
    assert (event.from_state, event.to_state, event.actor, event.reason, event.at) == (
        JobState.QUEUED,
        JobState.QUEUED,
        "manager:1",
        "priority set to 5",
        T0 + 3,
    )
    assert event.data == {"priority": 5, "previous": 0}


def test_priority_of_a_finished_job_is_frozen(store: Store, member: Member) -> None:
    [job] = submit(store, member.id)
    store.transition_job(job.id, JobState.CANCELLED, actor="member:1", reason="", now=T0 + 1)

    with pytest.raises(Conflict, match="cancelled"):
        store.set_priority(job.id, 5, actor="manager:1", now=T0 + 2)


def test_usage_counts_printing_time(store: Store, member: Member) -> None:
    bob = store.create_member("bob", member.role, now=T0)
    _never_started, finished_long_ago, finished, running = submit(store, member.id, count=4)
    [bobs] = submit(store, bob.id)

    def run(job_id: int, start: float, end: float | None) -> None:
        store.transition_job(job_id, JobState.ASSIGNED, actor="s", reason="", now=start - 1)
        store.transition_job(job_id, JobState.PRINTING, actor="s", reason="", now=start)
        if end is not None:
            store.transition_job(job_id, JobState.DONE, actor="s", reason="", now=end)

    run(finished_long_ago.id, T0 + 10, T0 + 20)
    run(finished.id, T0 + 1000, T0 + 1600)
    run(running.id, T0 + 2000, None)
    run(bobs.id, T0 + 1500, T0 + 1700)

    records = store.usage_records(T0 + 500, now=T0 + 2300)

    assert sorted(records) == sorted(
        [(member.id, 600.0, T0 + 1600), (member.id, 300.0, T0 + 2300), (bob.id, 200.0, T0 + 1700)]
    )


def test_blob_in_use_while_a_job_is_not_finished(store: Store, member: Member) -> None:
    [first, second] = submit(store, member.id, count=2, file_sha256=SHA_B)
    assert store.blob_in_use(SHA_B)
    assert not store.blob_in_use(SHA_A)

    store.transition_job(first.id, JobState.CANCELLED, actor="member:1", reason="", now=T0 + 1)
    assert store.blob_in_use(SHA_B)

    store.transition_job(second.id, JobState.CANCELLED, actor="member:1", reason="", now=T0 + 1)
    assert not store.blob_in_use(SHA_B)
