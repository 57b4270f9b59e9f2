"""The economy's records on both backends: price lists, charges fixed with the job, groups, quotas,
lifts, and migration 8 -> 9."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from fleet.economy.periods import Period
from fleet.economy.pricing import Charge, ChargeLine, LineKind
from fleet.economy.quotas import Limits, Quota
from fleet.errors import Conflict, NotFound
from fleet.models import Role
from fleet.states import JobState
from fleet.store import Store
from fleet.store.schema import charge_lines, charges, quotas

from .helpers import T0, submit
from .test_enrollment import assert_upgrade_keeps_alice

LINES = (
    ChargeLine(LineKind.MATERIAL, "100 g of PLA", Decimal("100.00"), "g", Decimal("0.03"), 300),
    ChargeLine(
        LineKind.MACHINE, "2 printer-hours (default rate)", Decimal("2.0000"), "h", Decimal("0.8"), 160
    ),
)


def started(store: Store, member_id: int) -> int:
    job = submit(store, member_id)[0]
    for to in (JobState.ASSIGNED, JobState.PRINTING):
        store.transition_job(job.id, to, actor="system", reason="test", now=T0 + 10)
    return job.id


def test_a_job_that_ends_is_charged_in_the_same_transaction_once(store: Store) -> None:
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    prices = store.add_price_list({"minimum": "1"}, actor="manager:1", now=T0)
    job_id = started(store, alice.id)
    step = store.charge_step(lambda job: (Charge("EUR", LINES), prices.id))
    done = store.transition_job(
        job_id, JobState.DONE, actor="printer:a", reason="done", now=T0 + 100, then=step
    )
    entry = store.charges_by_job([job_id, 999])[job_id]
    assert (entry.total_minor, entry.outcome, entry.price_list_id, entry.at) == (
        460,
        "done",
        prices.id,
        done.finished_at,
    )
    assert entry.charge.lines == LINES
    # Charged once: a step run again for the same job adds nothing.
    with store.engine.begin() as conn:
        step(conn, done)
        assert conn.execute(select(func.count()).select_from(charges)).scalar_one() == 1
        # The ledger's total is the sum of the lines it holds.
        lines = conn.execute(select(func.sum(charge_lines.c.amount_minor))).scalar_one()
        assert conn.execute(select(charges.c.total_minor)).scalar_one() == lines == 460
    page = store.ledger_page(member_id=alice.id, since=T0, until=T0 + 101)
    assert [e.job_id for e in page.items] == [job_id] and page.next_after is None
    assert store.ledger_page(member_id=alice.id, since=T0 + 101).items == []


def test_a_pricer_that_fails_leaves_the_job_where_it_was(store: Store) -> None:
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    job_id = started(store, alice.id)

    def broken(job):
        raise RuntimeError("no price")

    with pytest.raises(RuntimeError):
        store.transition_job(
            job_id, JobState.DONE, actor="x", reason="r", now=T0 + 5, then=store.charge_step(broken)
        )
    assert store.get_job(job_id).state is JobState.PRINTING
    assert store.charges_by_job([job_id]) == {}


def test_groups_quotas_and_lifts(store: Store) -> None:
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    students = store.create_group("student", 1, now=T0)
    with pytest.raises(Conflict):
        store.create_group("student", 0, now=T0)
    store.set_member_group(alice.id, students.id)
    assert store.memberships() == {alice.id: students.id}
    month = Quota(Period.MONTH, Limits(printer_hours=Decimal("10"), cost_minor=2000))
    store.set_quota(month, group_id=students.id)
    store.set_quota(Quota(Period.MONTH, Limits(grams=Decimal("500.5"))), group_id=students.id)  # replaces
    store.set_quota(Quota(Period.DAY, Limits(jobs_at_once=1)), member_id=alice.id)
    held = store.list_quotas()
    assert [(q.group_id, q.member_id, q.quota) for q in held] == [
        (students.id, None, Quota(Period.MONTH, Limits(grams=Decimal("500.5")))),
        (None, alice.id, Quota(Period.DAY, Limits(jobs_at_once=1))),
    ]
    with pytest.raises(NotFound):
        store.set_quota(month, group_id=999)
    job = submit(store, alice.id)[0]
    store.lift_quotas(job.id, actor="manager:9", reason="quota lifted by a manager", now=T0 + 1)
    assert store.lifted_jobs([job.id]) == store.lifted_jobs() == {job.id}
    last = store.job_events(job.id)[-1]
    assert (last.actor, last.data) == ("manager:9", {"quota_lifted": True})
    with pytest.raises(Conflict):
        store.lift_quotas(job.id, actor="manager:9", reason="again", now=T0 + 2)
    store.delete_group(students.id)
    assert store.memberships() == {} and len(store.list_quotas()) == 1
    assert store.remove_quota(Period.DAY, member_id=alice.id)
    with store.engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(quotas)).scalar_one() == 0


def test_usage_rows_hold_started_and_active_jobs(store: Store) -> None:
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    job_id = started(store, alice.id)
    waiting = submit(store, alice.id)[0]
    rows = store.usage_rows([alice.id], since=T0)
    assert [(r.job_id, r.state) for r in rows] == [(job_id, JobState.PRINTING)]
    assert waiting.id not in {r.job_id for r in rows}


def test_a_version_9_database_gains_the_economy_and_keeps_its_members(
    engine: Engine, fresh_url: str, data_dir: Path, request: pytest.FixtureRequest
) -> None:
    assert_upgrade_keeps_alice(engine, fresh_url, data_dir, request, from_version=9, new_table=charges)
