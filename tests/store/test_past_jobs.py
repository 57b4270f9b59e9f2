"""A lab's history brought in: past prints with their whole history, all or nothing; jobs by start time."""

from __future__ import annotations

import dataclasses

import pytest

from fleet.errors import Invalid, NotFound
from fleet.models import Member, PastJob
from fleet.states import JobState
from fleet.store import Store

from .helpers import SHA_A, T0, make_printer, submit


def past(member_id: int, outcome: JobState = JobState.DONE, start: float = T0 + 600) -> PastJob:
    return PastJob(
        member_id,
        "mini-1",
        outcome=outcome,
        file_sha256=SHA_A,
        filename="clip.gcode",
        size_bytes=120,
        material="PLA",
        analysis={"filament_weight_g": 3.5},
        submitted_at=T0,
        started_at=start,
        finished_at=start + 900,
    )


def test_past_prints_keep_their_times_and_read_as_a_real_history(store: Store, member: Member) -> None:
    store.create_printer(make_printer("mini-1"))
    done, failed = store.record_past_jobs(
        [past(member.id), past(member.id, JobState.FAILED)], actor="history"
    )
    job = store.get_job(done)
    assert (job.state, job.printer_id, job.submitted_at, job.started_at, job.finished_at) == (
        JobState.DONE,
        "mini-1",
        T0,
        T0 + 600,
        T0 + 1500,
    )
    assert job.analysis == {"filament_weight_g": 3.5}
    events = store.job_events(failed)
    assert [(e.from_state, e.to_state, e.at) for e in events] == [
        (None, JobState.SUBMITTED, T0),
        (JobState.SUBMITTED, JobState.QUEUED, T0),
        (JobState.QUEUED, JobState.ASSIGNED, T0 + 600),
        (JobState.ASSIGNED, JobState.PRINTING, T0 + 600),
        (JobState.PRINTING, JobState.FAILED, T0 + 1500),
    ]
    assert store.get_printer("mini-1").current_job_id is None  # history holds no printer


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"outcome": JobState.PRINTING}, "outcome"),
        ({"started_at": T0 - 1}, "started_at"),
        ({"finished_at": T0}, "started_at"),
        ({"file_sha256": "nope"}, "file_sha256"),
    ],
)
def test_a_bad_past_print_leaves_nothing_written(
    store: Store, member: Member, change: dict, field: str
) -> None:
    store.create_printer(make_printer("mini-1"))
    with pytest.raises(Invalid) as error:
        store.record_past_jobs([past(member.id), dataclasses.replace(past(member.id), **change)], actor="h")
    assert error.value.field == field
    with pytest.raises(NotFound):
        store.record_past_jobs(
            [past(member.id), dataclasses.replace(past(member.id), printer_id="gone")], actor="h"
        )
    assert store.list_jobs() == []


def test_jobs_are_listed_by_when_they_started(store: Store, member: Member) -> None:
    store.create_printer(make_printer("mini-1"))
    early, late = store.record_past_jobs(
        [past(member.id, start=T0 + 10), past(member.id, start=T0 + 100)], actor="h"
    )
    submit(store, member.id)  # never started: in no period
    assert [j.id for j in store.list_jobs(started=(T0, T0 + 100))] == [early]
    assert [j.id for j in store.list_jobs(started=(T0 + 100, T0 + 101))] == [late]
