"""What the ingest path may skip under load, and what it must still see at once."""

from __future__ import annotations

import threading

from fleet import protocol as p
from fleet.fleetlink import FleetLink
from fleet.http_protocol import BrokerAddress, EnrollRequest
from fleet.models import Role
from fleet.states import PrinterState as S
from tests.brokers import wait_until

from .conftest import T0, Node, add_printer

N = p.NodeState


def checks(service) -> int:
    return service.metrics.counter("status.store_checks")


def test_a_repeated_status_updates_the_live_view_without_the_store(service, fleetlink, link, clock):
    add_printer(service, "mk4", S.OFFLINE)
    node = Node(link, "mk4", clock)
    node.status(N.IDLE)
    assert service.printers.get_printer("mk4").state is S.IDLE
    for second in range(1, 6):
        clock.now = T0 + second
        node.status(N.IDLE)
    assert checks(service) == 1
    live = service.reports.live("mk4")
    assert live is not None and live.last_seen == T0 + 5
    assert service.metrics.counter("mqtt.messages", kind="status") == 6


def test_a_status_that_says_something_new_is_checked_in_full(service, fleetlink, link, clock):
    add_printer(service, "mk4", S.OFFLINE)
    node = Node(link, "mk4", clock)
    node.status(N.IDLE)
    node.status(N.ERROR)
    assert service.printers.get_printer("mk4").state is S.ERROR
    node.status(N.IDLE, material="PETG")
    assert service.printers.get_printer("mk4").material == "PETG"
    assert checks(service) == 3


def test_after_an_outage_the_same_status_puts_the_printer_back(service, fleetlink, link, clock):
    add_printer(service, "mk4", S.OFFLINE)
    node = Node(link, "mk4", clock)
    node.status(N.IDLE)
    node.availability(False)
    assert service.printers.get_printer("mk4").state is S.OFFLINE
    node.availability(True)
    clock.now = T0 + 1
    node.status(N.IDLE)
    assert service.printers.get_printer("mk4").state is S.IDLE


def test_a_change_made_elsewhere_is_caught_by_the_recheck(service, fleetlink, link, clock):
    add_printer(service, "mk4", S.OFFLINE)
    node = Node(link, "mk4", clock)
    node.status(N.IDLE)
    # Another process (a second fleet on the same database) marks the printer offline.
    service.store.update_printer("mk4", state=S.OFFLINE)
    clock.now = T0 + fleetlink.status_recheck_s / 4
    node.status(N.IDLE)
    assert service.printers.get_printer("mk4").state is S.OFFLINE  # not yet: within the recheck interval
    clock.now = T0 + fleetlink.status_recheck_s
    node.status(N.IDLE)
    assert service.printers.get_printer("mk4").state is S.IDLE


def test_a_revoked_printer_is_not_heard_even_with_the_same_status(service, fleetlink, link, clock):
    service.enrollment.node_mqtt = BrokerAddress("broker.example", 1883)
    manager, _ = service.members.add_member("boss", Role.MANAGER)
    code, _ = service.enrollment.create_enrollment_code(manager)
    volume = {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 200, "max_y": 200, "max_z": 200}
    asked = EnrollRequest.from_json({"code": code, "name": "Mini", "capabilities": {"volume": volume}})
    printer_id = service.enrollment.enroll(asked).printer.id
    node = Node(link, printer_id, clock)
    node.status(N.IDLE)
    assert service.reports.live(printer_id) is not None
    service.enrollment.revoke_printer(manager, printer_id)
    clock.now = T0 + 1
    node.status(N.IDLE)
    assert service.reports.live(printer_id) is None
    assert service.metrics.counter("mqtt.dropped") == 1


def test_last_seen_goes_to_the_store_in_one_write_per_interval(service, fleetlink, link, clock):
    for name in ("a", "b", "c"):
        add_printer(service, name, S.OFFLINE)
        Node(link, name, clock).status(N.IDLE)
    fleetlink.tick(T0)  # the first round writes what it has heard so far
    writes = service.metrics.counter("status.seen_writes")
    clock.now = T0 + 7
    for name in ("a", "b"):
        Node(link, name, clock).status(N.IDLE)
    fleetlink.tick(T0 + 7)
    assert service.metrics.counter("status.seen_writes") == writes  # not due yet
    assert service.printers.get_printer("a").last_seen == T0
    fleetlink.tick(T0 + fleetlink.seen_write_interval_s)
    assert service.metrics.counter("status.seen_writes") == writes + 1
    assert [service.printers.get_printer(n).last_seen for n in ("a", "b", "c")] == [T0 + 7, T0 + 7, T0]


def test_status_lag_is_measured_from_the_node_clock(service, fleetlink, link, clock):
    add_printer(service, "mk4", S.OFFLINE)
    node = Node(link, "mk4", clock)
    node.status(N.IDLE)
    status = p.Status(N.IDLE, T0 - 0.18)  # published 180 ms before the fleet handled it
    link.deliver(p.topic("mk4", p.Channel.STATUS), p.encode_status(status))
    lag = service.metrics.snapshot()["histograms"]["status.lag_s"]
    assert lag["count"] == 2
    assert lag["counts"][lag["bounds_s"].index(0.2)] == 1


def test_the_fleet_takes_status_at_qos_0_and_the_rest_at_qos_1(service, link):
    from fleet.fleetlink import FleetLink

    wanted: dict[str, int] = {}
    link.subscribe = lambda topic_filter, handler, qos=1: wanted.__setitem__(topic_filter, qos)
    FleetLink(service, link, base_url="http://fleet", tick_interval_s=None).start()
    assert wanted == {
        p.wildcard(p.Channel.STATUS): 0,
        p.wildcard(p.Channel.AVAILABILITY): 1,
        p.wildcard(p.Channel.EVENTS): 1,
        p.wildcard(p.Channel.ACK): 1,
    }


def test_a_recheck_asked_while_a_status_reads_the_store_is_not_lost(service, link, clock):
    """A change note can arrive while a status of its printer is being checked against a store read
    made before the change: that status must not be remembered as up to date (with rechecks driven
    by notes alone, nothing else would ever look again)."""
    from fleet.fleetlink import FleetLink

    fleetlink = FleetLink(
        service, link, base_url="http://fleet", tick_interval_s=None, clock=clock, status_recheck_s=None
    )
    fleetlink.start()
    add_printer(service, "mk4", S.OFFLINE)
    node = Node(link, "mk4", clock)
    node.status(N.IDLE)
    fleetlink.recheck_statuses("mk4")  # a note (an earlier change): the next status reads the store
    read = service.reports.printer_and_revoked

    def read_then_changed_elsewhere(printer_id: str):
        found = read(printer_id)
        service.store.update_printer("mk4", state=S.OFFLINE)  # another process, just after our read
        fleetlink.recheck_statuses("mk4")  # its note
        return found

    service.reports.printer_and_revoked = read_then_changed_elsewhere
    node.status(N.IDLE)
    service.reports.printer_and_revoked = read
    assert service.printers.get_printer("mk4").state is S.OFFLINE
    node.status(N.IDLE)
    assert service.printers.get_printer("mk4").state is S.IDLE, "the next status was checked in full"
    assert checks(service) == 3
    fleetlink.close()


def test_a_recheck_never_waits_for_a_status_being_handled(service, fleetlink):
    import threading

    holding, release = threading.Event(), threading.Event()

    def handle_slowly() -> None:
        with fleetlink._lock:  # what the ingest thread holds while it reads the store
            holding.set()
            release.wait(10)

    slow = threading.Thread(target=handle_slowly)
    slow.start()
    try:
        assert holding.wait(5)
        asked = threading.Thread(target=fleetlink.recheck_statuses, args=("mk4",))
        asked.start()
        asked.join(2)
        assert not asked.is_alive(), "the recheck waited for the link's lock"
    finally:
        release.set()
        slow.join()


def queued_link_with_a_slow_printer(service, link, clock, monkeypatch):
    """A queued link, started, with printers "quick" and "slow" idle and handled in full once; from
    here a store read of "slow" holds the ingest thread (``held`` set) until ``release`` is set.
    Returns (link, quick node, slow node, held, release)."""
    add_printer(service, "quick", S.OFFLINE)
    add_printer(service, "slow", S.OFFLINE)
    fleetlink = FleetLink(
        service, link, base_url="http://fleet/", tick_interval_s=None, clock=clock, queued=True
    )
    fleetlink.start()
    quick, slow = Node(link, "quick", clock), Node(link, "slow", clock)
    quick.status(N.IDLE)
    slow.status(N.IDLE)
    metrics = service.metrics
    wait_until(lambda: metrics.counter("mqtt.messages", kind="status") == 2, 5, "both handled in full")
    held, release = threading.Event(), threading.Event()
    read = service.reports.printer_and_revoked

    def slow_read(printer_id):
        if printer_id == "slow":
            held.set()
            release.wait(10)
        return read(printer_id)

    monkeypatch.setattr(service.reports, "printer_and_revoked", slow_read)
    return fleetlink, quick, slow, held, release


def test_an_unchanged_status_is_taken_at_once_while_the_ingest_thread_waits_on_another_printer(
    service, link, clock, monkeypatch
):
    fleetlink, quick, slow, held, release = queued_link_with_a_slow_printer(service, link, clock, monkeypatch)
    try:
        slow.availability(True)  # a message that reads the store: the ingest thread waits on it
        assert held.wait(5)
        clock.now = T0 + 5
        quick.status(N.IDLE)  # says what its last one said: taken at once, on this thread
        assert service.reports.live("quick").last_seen == T0 + 5
        slow.status(N.IDLE)  # the same, but a message of its printer is in hand: it waits its turn
        assert service.reports.live("slow").last_seen == T0
    finally:
        release.set()
    wait_until(lambda: service.reports.live("slow").last_seen == T0 + 5, 5, "the slow printer's status")
    fleetlink.close()
    assert checks(service) == 3  # the two first statuses, and the slow one after its availability


def test_while_the_socket_holds_more_than_one_read_an_unchanged_status_waits_and_is_coalesced(
    service, link, clock, monkeypatch
):
    # Reading comes first when the fleet falls behind the broker: statuses then only wait in the queue,
    # where each printer's newer one replaces the older (the lag stays bounded), as any other does.
    fleetlink, quick, slow, held, release = queued_link_with_a_slow_printer(service, link, clock, monkeypatch)
    metrics = service.metrics
    link.behind = True
    try:
        slow.availability(True)
        assert held.wait(5)
        for second in (1, 2, 3):
            clock.now = T0 + second
            quick.status(N.IDLE)
        assert service.reports.live("quick").last_seen == T0, "it waits its turn"
        assert metrics.counter("status.superseded") == 2
    finally:
        release.set()
    wait_until(lambda: service.reports.live("quick").last_seen == T0 + 3, 5, "the newest status")
    fleetlink.close()
    assert metrics.counter("mqtt.messages", kind="status") == 3
