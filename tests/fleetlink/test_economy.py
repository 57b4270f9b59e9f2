"""The lab's economy through the services and the link: charges fixed when a print ends, quotas the
dispatch pass respects, a manager's lift, the month's CSV."""

from __future__ import annotations

import csv
import io

import pytest

from fleet import protocol as p
from fleet.errors import Forbidden, Invalid
from fleet.models import LiveStatus, Role
from fleet.scheduler import WaitReason
from fleet.states import JobState
from tests.store.helpers import submit

from .conftest import SHA, T0, Node, add_printer

PRICES = {
    "per_gram": {"PLA": "0.05"},
    "default_per_hour": "1.20",
    "minimum": "0.50",
    "unfinished": "share",
}
ANALYSIS = {"estimated_time_s": 3600, "filament_weight_g": 40.0, "material": "PLA"}


@pytest.fixture
def people(service):
    manager = service.store.create_member("boss", Role.MANAGER, now=T0)
    alice = service.store.create_member("alice", Role.MEMBER, now=T0)
    service.pricing.set_price_list(manager, PRICES)
    return manager, alice


def queue(service, member, seconds: float = 3600) -> int:
    analysis = {**ANALYSIS, "estimated_time_s": seconds}
    [job] = submit(service.store, member.id, file_sha256=SHA, analysis=analysis, now=T0)
    return job.id


def started(service, fleetlink, link, clock, printer_id: str) -> tuple[int, Node]:
    [command] = [c for c in link.commands(printer_id) if c.type is p.CommandType.DISPATCH][-1:]
    node = Node(link, printer_id, clock)
    node.ack(command, p.AckStatus.ACCEPTED)
    assert command.job is not None
    node.event(p.EventType.JOB_STARTED, command.job.job_id)
    return command.job.job_id, node


def test_a_done_print_is_charged_what_was_estimated_line_by_line(service, fleetlink, link, clock, people):
    manager, alice = people
    add_printer(service, "mk4")
    job_id = queue(service, alice)
    estimate = service.pricing.job_estimate(alice, service.store.get_job(job_id))
    assert estimate.total_minor == 200 + 120  # 40 g at 0.05 + 1 h at 1.20
    fleetlink.tick(T0)
    _, node = started(service, fleetlink, link, clock, "mk4")
    clock.now = T0 + 3600
    node.event(p.EventType.JOB_DONE, job_id)
    entry = service.pricing.charges_by_job(alice, [job_id])[job_id]
    assert entry.outcome == "done" and entry.charge == estimate
    assert [line.kind.value for line in entry.charge.lines] == ["material", "machine"]
    # Another member sees nothing of it; a manager sees it, and the month's CSV holds it to the cent.
    bob = service.store.create_member("bob", Role.MEMBER, now=T0)
    assert service.pricing.charges_by_job(bob, [job_id]) == {}
    with pytest.raises(Forbidden):
        service.pricing.ledger(bob, member_id=alice.id)
    text = service.pricing.month_csv(manager, "2023-11")  # T0 is 14 November 2023
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["line"], r["amount"], r["currency"]) for r in rows] == [
        ("material", "2.00", "EUR"),
        ("machine", "1.20", "EUR"),
        ("total", "3.20", "EUR"),
    ]
    assert service.pricing.month_csv(manager, "2023-10").count("\n") == 1  # the header alone
    with pytest.raises(Invalid):
        service.pricing.month_csv(manager, "2023-13")


def test_a_failed_print_is_charged_the_share_its_printer_reported(service, fleetlink, link, clock, people):
    _, alice = people
    add_printer(service, "mk4")
    job_id = queue(service, alice)
    fleetlink.tick(T0)
    _, node = started(service, fleetlink, link, clock, "mk4")
    service.reports.set_live("mk4", LiveStatus("printing", {}, 25.0, None, job_id, T0 + 60))
    node.event(p.EventType.JOB_FAILED, job_id)
    entry = service.pricing.charges_by_job(alice, [job_id])[job_id]
    assert entry.outcome == "failed"
    assert [line.amount_minor for line in entry.charge.lines] == [0, 50, 30]  # the note, 10 g, 0.25 h
    assert entry.total_minor == 80


def test_a_job_cancelled_before_it_started_costs_nothing(service, people):
    _, alice = people
    job_id = queue(service, alice)
    service.jobs.cancel_job(alice, job_id)
    assert service.pricing.charges_by_job(alice, [job_id]) == {}


def test_a_quota_holds_a_job_until_a_manager_lifts_it(service, fleetlink, link, clock, people):
    manager, alice = people
    students = service.quotas.create_group(manager, "student", 0)
    service.quotas.set_member_group(manager, alice.id, students.id)
    service.quotas.set_quota(manager, {"period": "month", "printer_hours": "1.5"}, group_id=students.id)
    with pytest.raises(Invalid, match="no quota period 'year'"):
        service.quotas.set_quota(manager, {"period": "year", "grams": "5"}, group_id=students.id)
    with pytest.raises(Forbidden):
        service.quotas.set_quota(alice, {"period": "day", "grams": "5"}, member_id=alice.id)
    add_printer(service, "a")
    add_printer(service, "b")
    first, second = queue(service, alice), queue(service, alice)
    fleetlink.tick(T0)
    assert service.store.get_job(first).state is JobState.ASSIGNED
    assert service.store.get_job(second).state is JobState.QUEUED
    [entry] = [e for e in service.dispatcher.queue(alice) if e.job.id == second]
    assert entry.explanation is not None and entry.explanation.reason is WaitReason.QUOTA
    assert entry.explanation.message.startswith(
        "Waits: you have used 1 of your 1.5 printer-hours this month; your quota renews on 1 December"
    )
    assert service.dispatcher.hold_words(alice, second, "fr").startswith(
        "En attente : vous avez utilisé 1 de vos 1,5"
    )
    with pytest.raises(Forbidden):
        service.quotas.lift(alice, second)
    service.quotas.lift(manager, second)
    fleetlink.tick(T0 + 1)
    assert service.store.get_job(second).printer_id == "b"
    lifted = [e for e in service.store.job_events(second) if e.data.get("quota_lifted")]
    assert [e.actor for e in lifted] == [f"manager:{manager.id}"]


def test_a_bad_price_list_changes_nothing(service, people):
    manager, alice = people
    before = service.pricing.current()
    with pytest.raises(Invalid) as caught:
        service.pricing.set_price_list(manager, {**PRICES, "per_gram": {"PLA": "-1"}})
    assert caught.value.field == "per_gram.PLA"
    with pytest.raises(Forbidden):
        service.pricing.set_price_list(alice, PRICES)
    assert service.pricing.current() == before


def test_a_cost_quota_weighs_each_job_at_todays_prices(service, fleetlink, link, clock, people):
    manager, alice = people
    service.quotas.set_quota(manager, {"period": "week", "cost": "5.00"}, member_id=alice.id)
    add_printer(service, "a")
    add_printer(service, "b")
    first, second = queue(service, alice), queue(service, alice)  # 3.20 EUR each
    fleetlink.tick(T0)
    assert service.store.get_job(first).state is JobState.ASSIGNED
    [entry] = [e for e in service.dispatcher.queue(alice) if e.job.id == second]
    assert entry.explanation is not None and entry.explanation.message == (
        "Waits: you have used 3.20 of your 5.00 EUR this week; your quota renews on 20 November."
    )
    [cap] = service.quotas.standing(alice, alice.id)
    assert (cap.measure.value, cap.limit, cap.used) == ("cost", 500.0, 320.0)


def test_the_statistics_show_the_charge_and_the_group_of_a_printed_job(
    service, fleetlink, link, clock, people
):
    from decimal import Decimal

    from fleet.statistics import Dimension

    manager, alice = people
    students = service.quotas.create_group(manager, "student", 1)
    service.quotas.set_member_group(manager, alice.id, students.id)
    add_printer(service, "mk4")
    job_id = queue(service, alice)
    fleetlink.tick(T0)
    _, node = started(service, fleetlink, link, clock, "mk4")
    clock.now = T0 + 3600
    node.event(p.EventType.JOB_DONE, job_id)
    period = service.statistics.period("2023-11-01", "2023-11-30")
    by_group = service.statistics.report(manager, Dimension.GROUP, period)
    [row] = by_group.rows
    assert (row.label, row.prints, row.cost) == ("student", 1, Decimal("3.20"))
    assert by_group.totals.cost == Decimal("3.20")
