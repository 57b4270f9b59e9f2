"""A printer profile in a status: stored, kept when left out, and named when it rules a queued job out."""

from __future__ import annotations

from fleet import protocol as p
from fleet.lending import decode_lending
from fleet.models import Role
from fleet.states import JobState, PrinterState

from .conftest import SHA, T0, Node, add_printer, submit


def test_the_profile_in_a_status_is_stored_and_kept_when_a_later_one_leaves_it_out(
    service, fleetlink, link, clock
):
    add_printer(service, "delta", PrinterState.OFFLINE)
    node = Node(link, "delta", clock)
    clock.now = T0 + 5
    node.status(
        p.NodeState.IDLE,
        bed_shape=p.BedShape.CIRCULAR,
        heated_bed=False,
        heated_chamber=True,
        extruders=2,
    )
    got = service.printers.get_printer("delta")
    assert (got.bed_shape, got.heated_bed, got.heated_chamber, got.extruders) == ("circular", False, True, 2)

    clock.now = T0 + 10
    node.status(p.NodeState.IDLE, extruders=1)  # an older node, or one whose profile says less
    got = service.printers.get_printer("delta")
    assert (got.bed_shape, got.heated_bed, got.heated_chamber, got.extruders) == ("circular", False, True, 1)


def test_a_profile_that_no_longer_fits_a_queued_job_is_explained_in_the_queue(
    service, fleetlink, link, clock
):
    add_printer(service, "mk4", PrinterState.OFFLINE)
    member = service.store.create_member("alice", Role.MEMBER, now=T0)
    [job] = submit(
        service.store,
        member.id,
        file_sha256=SHA,
        filename="dual.gcode",
        size_bytes=123,
        analysis={"estimated_time_s": 600, "bed_temperature_c": 60.0, "tools": 2},
        actor="test",
        reason="queued",
        now=T0,
    )
    node = Node(link, "mk4", clock)
    clock.now = T0 + 5
    node.status(p.NodeState.PRINTING, extruders=1)  # busy with a local print, and one extruder now

    [entry] = service.dispatcher.queue(member)
    assert entry.job.id == job.id and entry.job.state is JobState.QUEUED
    assert entry.explanation is not None
    assert entry.explanation.message == (
        "1st in line; it uses 2 tools, and no printer that could otherwise print it has 2 extruders."
    )


def test_the_owners_lending_terms_in_a_status_are_stored_and_cleared_when_dropped(
    service, fleetlink, link, clock
):
    add_printer(service, "garage", PrinterState.OFFLINE)
    node = Node(link, "garage", clock)
    terms = decode_lending(
        {"time_zone": "Europe/Paris", "windows": [{"days": ["sat", "sun"], "start": "08:00", "end": "20:00"}]}
    )
    clock.now = T0 + 5
    status = p.Status(p.NodeState.IDLE, clock(), lending=terms)
    link.deliver(p.topic("garage", p.Channel.STATUS), p.encode_status(status))
    assert service.printers.get_printer("garage").lending == terms

    clock.now = T0 + 10
    node.status(p.NodeState.IDLE)  # the owner removed the terms: lent whenever idle
    assert service.printers.get_printer("garage").lending is None
