"""Two fleet processes on one database: a message redelivered to the other one changes nothing twice.

With shared subscriptions a message reaches one process of the group, and after a crash the broker
may hand it again to another; acks reach every process (only the sender follows its command up).
Each process is a FleetLink over its own link, sharing the services and the store.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleet import protocol as p
from fleet.app import FleetApp
from fleet.fleetlink import FleetLink
from fleet.states import JobState
from fleet.states import PrinterState as S

from .conftest import T0, Clock, FakeLink, Node, add_printer, queue_job


@pytest.fixture
def pair(
    service: FleetApp, clock: Clock
) -> Iterator[tuple[tuple[FleetLink, FakeLink], tuple[FleetLink, FakeLink]]]:
    made = []
    for _ in range(2):
        link = FakeLink()
        fleetlink = FleetLink(service, link, base_url="http://fleet", tick_interval_s=None, clock=clock)
        fleetlink.start()
        made.append((fleetlink, link))
    yield made[0], made[1]
    for fleetlink, _ in made:
        fleetlink.close()


def test_events_and_acks_redelivered_to_the_other_process_change_nothing_twice(service, clock, pair) -> None:
    (first, first_link), (second, second_link) = pair
    add_printer(service, "mk4")
    job_id = queue_job(service)
    first.tick(T0)
    [command] = first_link.commands("mk4")
    at_first, at_second = Node(first_link, "mk4", clock), Node(second_link, "mk4", clock)

    at_second.ack(command, p.AckStatus.ACCEPTED)  # not its command: noted, nothing else
    assert second.outstanding() == {} and first.outstanding()[job_id].answer is None
    at_first.ack(command, p.AckStatus.ACCEPTED)
    assert first.outstanding()[job_id].answer is p.AckStatus.ACCEPTED
    for kind, job_state in [
        (p.EventType.JOB_STARTED, JobState.PRINTING),
        (p.EventType.JOB_DONE, JobState.DONE),
    ]:
        at_first.event(kind, job_id)
        history = service.store.job_events(job_id)
        at_second.event(kind, job_id)  # the same event again, at the other process
        assert service.store.job_events(job_id) == history
        assert service.store.get_job(job_id).state is job_state
    assert service.printers.get_printer("mk4").state is S.AWAITING_BED_CLEAR
    assert first.outstanding() == {}
    for fleetlink in (first, second):
        fleetlink.tick(T0 + 60)
    assert len(first_link.commands("mk4")) == 1 and second_link.commands("mk4") == []
