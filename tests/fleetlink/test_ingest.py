"""What nodes report: status → printer state, availability, job events (idempotent), bad input."""

from __future__ import annotations

import logging

import pytest

from fleet import protocol as p
from fleet.app.base import Change, ChangeKind
from fleet.fleetlink import printer_state_for
from fleet.geometry import Box
from fleet.models import Printer
from fleet.states import JobState, PrinterState

from .conftest import T0, Node, add_printer, dispatched, queue_job

N, S = p.NodeState, PrinterState


def printer(state: PrinterState, job: int | None = None) -> Printer:
    return Printer("mk4", "MK4", state, Box.of_size(1, 1, 1), 0.4, None, False, job, None, T0)


@pytest.mark.parametrize(
    ("node", "state", "job", "expected"),
    [
        (N.IDLE, S.OFFLINE, None, S.IDLE),
        (N.IDLE, S.ERROR, None, S.IDLE),
        (N.IDLE, S.AWAITING_BED_CLEAR, None, None if False else S.AWAITING_BED_CLEAR),
        (N.IDLE, S.ASSIGNED, 7, None),
        (N.IDLE, S.PRINTING, 7, None),
        (N.IDLE, S.OFFLINE, 7, S.AWAITING_BED_CLEAR),
        (N.PRINTING, S.ASSIGNED, 7, S.PRINTING),
        (N.PAUSED, S.PRINTING, 7, S.PAUSED),
        (N.BUSY_LOCAL, S.IDLE, None, S.PRINTING),
        (N.AWAITING_BED_CLEAR, S.PRINTING, 7, S.AWAITING_BED_CLEAR),
        (N.ERROR, S.IDLE, None, S.ERROR),
        (N.DISCONNECTED, S.IDLE, None, S.OFFLINE),
        (N.IDLE, S.MAINTENANCE, None, None),
        (N.PRINTING, S.MAINTENANCE, None, None),
    ],
)
def test_node_state_to_printer_state(node, state, job, expected):
    assert printer_state_for(node, printer(state, job)) == expected


def test_status_updates_state_capabilities_and_live(service, fleetlink, link, clock):
    add_printer(service, "mk4", PrinterState.OFFLINE)
    node = Node(link, "mk4", clock)
    clock.now = T0 + 5
    node.status(N.IDLE, material="petg", nozzle_diameter=0.6, volume=Box.of_size(250, 210, 220))
    got = service.printers.get_printer("mk4")
    assert (got.state, got.material, got.nozzle_diameter, got.volume, got.last_seen) == (
        S.IDLE,
        "PETG",
        0.6,
        Box.of_size(250, 210, 220),
        T0 + 5,
    )
    live = service.reports.live("mk4")
    assert live is not None and live.node_state == "idle" and live.last_seen == T0 + 5


def test_offline_makes_the_held_job_unknown_not_queued(service, fleetlink, link, clock):
    job_id, _, node = dispatched(service, fleetlink, link, clock, "mk4")
    node.event(p.EventType.JOB_STARTED, job_id)
    node.availability(False)
    assert service.store.get_job(job_id).state is JobState.UNKNOWN
    got = service.printers.get_printer("mk4")
    assert got.state is S.OFFLINE and got.current_job_id == job_id
    assert service.reports.live("mk4") is None
    # Back online and still printing it: the outcome is known again.
    node.availability(True)
    node.status(N.PRINTING, job_id=job_id)
    assert service.store.get_job(job_id).state is JobState.PRINTING
    assert service.printers.get_printer("mk4").state is S.PRINTING


def test_back_online_without_the_job_waits_for_a_person(service, fleetlink, link, clock):
    job_id, _, node = dispatched(service, fleetlink, link, clock, "mk4")
    node.event(p.EventType.JOB_STARTED, job_id)
    node.availability(False)
    node.status(N.IDLE)
    assert service.store.get_job(job_id).state is JobState.UNKNOWN
    got = service.printers.get_printer("mk4")
    assert (got.state, got.current_job_id) == (S.AWAITING_BED_CLEAR, None)
    node.event(p.EventType.JOB_DONE, job_id)  # its journal catches up
    assert service.store.get_job(job_id).state is JobState.DONE


def test_events_drive_the_job_and_repeats_are_harmless(service, fleetlink, link, clock):
    job_id, _, node = dispatched(service, fleetlink, link, clock, "mk4")
    for kind, job_state, printer_state in [
        (p.EventType.JOB_STARTED, JobState.PRINTING, S.PRINTING),
        (p.EventType.JOB_PAUSED, JobState.PAUSED, S.PAUSED),
        (p.EventType.JOB_RESUMED, JobState.PRINTING, S.PRINTING),
        (p.EventType.JOB_DONE, JobState.DONE, S.AWAITING_BED_CLEAR),
    ]:
        node.event(kind, job_id)
        events = len(service.store.job_events(job_id))
        node.event(kind, job_id)  # delivered twice: at least once
        assert len(service.store.job_events(job_id)) == events
        assert service.store.get_job(job_id).state is job_state
        assert service.printers.get_printer("mk4").state is printer_state
    assert service.printers.get_printer("mk4").current_job_id is None


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [(p.EventType.JOB_FAILED, JobState.FAILED), (p.EventType.JOB_CANCELLED, JobState.CANCELLED)],
)
def test_failed_and_cancelled_leave_the_bed_to_clear(service, fleetlink, link, clock, kind, outcome):
    job_id, _, node = dispatched(service, fleetlink, link, clock, "mk4")
    node.event(p.EventType.JOB_STARTED, job_id)
    node.event(kind, job_id)
    assert service.store.get_job(job_id).state is outcome
    assert service.printers.get_printer("mk4").state is S.AWAITING_BED_CLEAR


def test_an_event_from_another_printer_is_refused(service, fleetlink, link, clock, caplog):
    add_printer(service, "mk4")
    add_printer(service, "mini", PrinterState.MAINTENANCE)
    job_id = queue_job(service)
    fleetlink.tick(T0)
    with caplog.at_level(logging.WARNING):
        Node(link, "mini", clock).event(p.EventType.JOB_DONE, job_id)
    assert service.store.get_job(job_id).state is JobState.ASSIGNED
    assert "not dispatched to printer mini" in caplog.text


def test_bad_messages_are_dropped_and_rate_limited(service, fleetlink, link, clock, caplog):
    add_printer(service, "mk4")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            link.deliver(p.topic("mk4", p.Channel.STATUS), b"{not json")
        link.deliver(p.topic("ghost", p.Channel.STATUS), p.encode_status(p.Status(N.IDLE, T0)))
        link.deliver("crowdfab/v1/printers/mk4/status/extra", b"{}")
    bad = [r for r in caplog.records if "dropped status from mk4" in r.getMessage()]
    assert len(bad) == 1
    assert "unknown printer ghost" in caplog.text
    clock.now += 61
    with caplog.at_level(logging.WARNING):
        link.deliver(p.topic("mk4", p.Channel.STATUS), b"[]")
    assert "2 more like it not logged" in caplog.text
    assert service.printers.get_printer("mk4").state is S.IDLE


def test_the_nodes_bed_cleared_frees_a_waiting_printer_and_dispatches_to_it(service, fleetlink, link, clock):
    """The node's button and the dashboard's take one path: only a waiting printer becomes idle."""
    add_printer(service, "mk4")
    first, second = queue_job(service), queue_job(service)
    fleetlink.tick(T0)
    node = Node(link, "mk4", clock)
    node.event(p.EventType.JOB_STARTED, first)
    node.event(p.EventType.JOB_DONE, first)
    fleetlink.tick(T0 + 1)
    assert service.store.get_job(second).state is JobState.QUEUED  # not onto a full plate
    changes: list[Change] = []
    service.hooks.on_change(changes.append)

    node.event(p.EventType.BED_CLEARED, None)

    assert service.printers.get_printer("mk4").state is S.IDLE
    assert Change(ChangeKind.PRINTER, "mk4") in changes
    fleetlink.tick(T0 + 2)  # the printers service asked for a dispatch pass
    assert service.store.get_job(second).state is JobState.ASSIGNED
    assert link.commands("mk4")[-1].job_id == second


@pytest.mark.parametrize("state", [S.PRINTING, S.IDLE, S.MAINTENANCE, S.OFFLINE])
def test_a_bed_cleared_from_a_printer_not_waiting_changes_nothing(service, fleetlink, link, clock, state):
    add_printer(service, "mk4", state)
    Node(link, "mk4", clock).event(p.EventType.BED_CLEARED, None)
    assert service.printers.get_printer("mk4").state is state
