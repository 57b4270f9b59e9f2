"""The claim: a queued job onto an idle printer, exactly once, however many schedulers race."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from fleet.errors import Conflict
from fleet.models import Member
from fleet.states import JobState, PrinterState
from fleet.store import Store, open_store

from .helpers import T0, make_printer, race, submit


def assert_consistent(store: Store) -> int:
    """Every assigned job sits on exactly the printer that holds it; returns how many are assigned."""
    jobs = {job.id: job for job in store.list_jobs()}
    holders = {printer.current_job_id: printer for printer in store.list_printers() if printer.current_job_id}
    busy = [printer for printer in store.list_printers() if printer.current_job_id is not None]
    assert len(holders) == len(busy), "a job sits on two printers"
    assigned = [job for job in jobs.values() if job.state is JobState.ASSIGNED]
    assert {job.id for job in assigned} == set(holders)
    for job in assigned:
        assert holders[job.id].id == job.printer_id
        assert holders[job.id].state is PrinterState.ASSIGNED
        claims = [e for e in store.job_events(job.id) if e.to_state is JobState.ASSIGNED]
        assert len(claims) == 1
    for job in jobs.values():
        if job.state is JobState.QUEUED:
            assert job.printer_id is None
    return len(assigned)


def test_assign_claims_both_and_records_it(store: Store, member: Member) -> None:
    store.create_printer(make_printer("mini-1"))
    [job] = submit(store, member.id)

    assert store.assign_job(job.id, "mini-1", actor="scheduler", now=T0 + 5) is True

    claimed = store.get_job(job.id)
    printer = store.get_printer("mini-1")
    assert (claimed.state, claimed.printer_id, claimed.updated_at) == (JobState.ASSIGNED, "mini-1", T0 + 5)
    assert (printer.state, printer.current_job_id) == (PrinterState.ASSIGNED, job.id)
    event = store.job_events(job.id)[-1]
    assert (event.from_state, event.to_state, event.actor, event.at, event.data) == (
        JobState.QUEUED,
        JobState.ASSIGNED,
        "scheduler",
        T0 + 5,
        {"printer_id": "mini-1"},
    )


@pytest.mark.parametrize(
    ("job_state", "printer_state", "current_job_id"),
    [
        (JobState.AWAITING_APPROVAL, PrinterState.IDLE, None),
        (JobState.QUEUED, PrinterState.PRINTING, None),
        (JobState.QUEUED, PrinterState.OFFLINE, None),
        (JobState.QUEUED, PrinterState.IDLE, 99),
    ],
)
def test_assign_refuses_what_is_not_free(
    store: Store,
    member: Member,
    job_state: JobState,
    printer_state: PrinterState,
    current_job_id: int | None,
) -> None:
    store.create_printer(make_printer("mini-1", state=printer_state, current_job_id=current_job_id))
    [job] = submit(store, member.id, state=job_state)

    assert store.assign_job(job.id, "mini-1", actor="scheduler", now=T0) is False

    assert store.get_job(job.id) == job
    assert store.get_printer("mini-1").state is printer_state
    assert len(store.job_events(job.id)) == 1


def test_assign_of_missing_rows_is_false(store: Store, member: Member) -> None:
    store.create_printer(make_printer("mini-1"))
    [job] = submit(store, member.id)

    assert store.assign_job(999, "mini-1", actor="scheduler", now=T0) is False
    assert store.assign_job(job.id, "ghost", actor="scheduler", now=T0) is False
    assert store.get_printer("mini-1").current_job_id is None


WORKERS = 8


@pytest.fixture(params=["shared store", "store per worker"])
def stores(request: pytest.FixtureRequest, store: Store, store_url: str, data_dir: Path) -> Sequence[Store]:
    """The racers: threads sharing one store, or each with its own engine as separate processes would."""
    if request.param == "shared store":
        return [store] * WORKERS
    own = [open_store(store_url, data_dir) for _ in range(WORKERS)]
    request.addfinalizer(lambda: [each.close() for each in own])
    return own


def test_one_job_many_printers_one_winner(store: Store, stores: Sequence[Store], member: Member) -> None:
    for index in range(WORKERS):
        store.create_printer(make_printer(f"p{index}"))
    [job] = submit(store, member.id)

    won = race(WORKERS, lambda i: stores[i].assign_job(job.id, f"p{i}", actor=f"scheduler:{i}", now=T0))

    assert won.count(True) == 1
    assert store.get_job(job.id).printer_id == f"p{won.index(True)}"
    assert assert_consistent(store) == 1


def test_one_printer_many_jobs_one_winner(store: Store, stores: Sequence[Store], member: Member) -> None:
    store.create_printer(make_printer("mini-1"))
    jobs = submit(store, member.id, count=WORKERS)

    won = race(WORKERS, lambda i: stores[i].assign_job(jobs[i].id, "mini-1", actor="scheduler", now=T0))

    assert won.count(True) == 1
    assert store.get_printer("mini-1").current_job_id == jobs[won.index(True)].id
    assert assert_consistent(store) == 1


def test_same_pair_many_times_one_winner(store: Store, stores: Sequence[Store], member: Member) -> None:
    store.create_printer(make_printer("mini-1"))
    [job] = submit(store, member.id)

    won = race(WORKERS, lambda i: stores[i].assign_job(job.id, "mini-1", actor="scheduler", now=T0))

    assert won.count(True) == 1
    assert assert_consistent(store) == 1


def test_schedulers_racing_over_everything_never_double_assign(
    store: Store, stores: Sequence[Store], member: Member
) -> None:
    for index in range(5):
        store.create_printer(make_printer(f"p{index}"))
    jobs = submit(store, member.id, count=7)
    pairs = [(job.id, f"p{index}") for job in jobs for index in range(5)]

    def schedule(worker: int) -> int:
        order = random.Random(worker).sample(pairs, len(pairs))
        return sum(stores[worker].assign_job(j, p, actor=f"scheduler:{worker}", now=T0) for j, p in order)

    wins = sum(race(WORKERS, schedule))

    assigned = assert_consistent(store)
    assert wins == assigned
    if store.backend == "sqlite":
        # Writers queue up rather than skip, so every printer ends up with a job.
        assert assigned == 5
    else:
        # A scheduler skips rows a rival holds, so a printer may be left for the next round.
        assert 1 <= assigned <= 5


def test_racing_transitions_of_one_job_one_wins(
    store: Store, stores: Sequence[Store], member: Member
) -> None:
    [job] = submit(store, member.id)

    def cancel(worker: int) -> bool:
        try:
            stores[worker].transition_job(
                job.id,
                JobState.CANCELLED,
                actor=f"worker:{worker}",
                reason="race",
                now=T0,
                expect=[JobState.QUEUED],
            )
        except Conflict:
            return False
        return True

    assert race(WORKERS, cancel).count(True) == 1
    assert [event.to_state for event in store.job_events(job.id)] == [JobState.QUEUED, JobState.CANCELLED]


def test_concurrent_writers_wait_their_turn(store: Store, stores: Sequence[Store], member: Member) -> None:
    def busy_member(worker: int) -> int:
        for job in submit(stores[worker], member.id, count=3):
            stores[worker].transition_job(job.id, JobState.CANCELLED, actor="member", reason="", now=T0)
            stores[worker].set_setting(f"worker-{worker}", job.id)
        return worker

    assert race(WORKERS, busy_member) == list(range(WORKERS))

    jobs = store.list_jobs()
    assert len(jobs) == 3 * WORKERS
    assert {job.state for job in jobs} == {JobState.CANCELLED}
