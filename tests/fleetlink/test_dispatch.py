"""Dispatch: commands out, acks in, re-sends with the same id, give-backs, restart recovery."""

from __future__ import annotations

from fleet import protocol as p
from fleet.fleetlink import FleetLink
from fleet.states import JobState, PrinterState

from .conftest import SHA, T0, FakeLink, Node, add_printer, dispatched, queue_job


def test_a_dispatch_carries_the_job_and_is_resent_with_the_same_id(service, fleetlink, link, clock):
    job_id, command, _ = dispatched(service, fleetlink, link, clock, "mk4")
    assert command.type is p.CommandType.DISPATCH and command.expires_at == T0 + 30
    assert command.job is not None and command.job.sha256 == SHA and command.job.size == 123
    assert command.job.url == f"http://fleet.example:8080/api/v1/printers/mk4/jobs/{job_id}/file"
    fleetlink.tick(T0 + 9)
    assert len(link.commands("mk4")) == 1
    fleetlink.tick(T0 + 10)
    fleetlink.tick(T0 + 20)
    fleetlink.tick(T0 + 25)
    sent = link.commands("mk4")
    assert [c.id for c in sent] == [command.id] * 3  # resend_limit 2
    fleetlink.tick(T0 + 30)  # lease over, no answer
    job = service.store.get_job(job_id)
    assert (job.state, job.printer_id) == (JobState.QUEUED, None)
    assert "did not answer" in service.store.job_events(job_id)[-1].reason


def test_declined_goes_back_and_is_offered_to_another_printer(service, fleetlink, link, clock):
    job_id, command, _ = dispatched(service, fleetlink, link, clock, "mk4")
    add_printer(service, "mini")
    Node(link, "mk4", clock).ack(command, p.AckStatus.DECLINED, "owner said no")
    assert service.printers.get_printer("mk4").state is PrinterState.IDLE
    assert "owner said no" in service.store.job_events(job_id)[-2].reason or any(
        "owner said no" in e.reason for e in service.store.job_events(job_id)
    )
    fleetlink.tick(T0 + 1)
    assert service.store.get_job(job_id).printer_id == "mini"
    assert len(link.commands("mk4")) == 1 and len(link.commands("mini")) == 1


def test_declined_job_is_not_offered_to_the_same_printer_until_the_cooldown(service, fleetlink, link, clock):
    job_id, command, node = dispatched(service, fleetlink, link, clock, "mk4")
    node.ack(command, p.AckStatus.FAILED, "download failed")
    fleetlink.tick(T0 + 100)
    assert service.store.get_job(job_id).state is JobState.QUEUED
    fleetlink.tick(T0 + 301)
    assert service.store.get_job(job_id).printer_id == "mk4"


def test_accepted_then_started_prints_and_duplicates_are_harmless(service, fleetlink, link, clock):
    job_id, command, node = dispatched(service, fleetlink, link, clock, "mk4")
    node.ack(command, p.AckStatus.ACCEPTED)
    node.ack(command, p.AckStatus.ACCEPTED)
    fleetlink.tick(T0 + 10)
    fleetlink.tick(T0 + 40)  # past the lease: accepted, so no re-send and no give-back
    assert len(link.commands("mk4")) == 1
    assert service.store.get_job(job_id).state is JobState.ASSIGNED
    node.event(p.EventType.JOB_STARTED, job_id)
    node.event(p.EventType.JOB_STARTED, job_id)
    node.ack(command, p.AckStatus.DECLINED)  # a late, confused answer changes nothing
    assert service.store.get_job(job_id).state is JobState.PRINTING
    assert service.printers.get_printer("mk4").state is PrinterState.PRINTING
    assert fleetlink.outstanding() == {}


def test_pending_without_a_time_waits_for_the_owner_until_the_lease_ends(service, fleetlink, link, clock):
    job_id, command, node = dispatched(service, fleetlink, link, clock, "mk4")
    node.ack(command, p.AckStatus.PENDING)
    fleetlink.tick(T0 + 20)
    assert len(link.commands("mk4")) == 1 and service.store.get_job(job_id).state is JobState.ASSIGNED
    fleetlink.tick(T0 + 41)  # the lease from the answer, and an ack's trip
    assert service.store.get_job(job_id).state is JobState.QUEUED
    assert "did not answer in time" in service.store.job_events(job_id)[-1].reason


def test_pending_holds_the_job_as_long_as_the_owner_has_to_answer(service, fleetlink, link, clock):
    job_id, command, node = dispatched(service, fleetlink, link, clock, "home")
    node.ack(command, p.AckStatus.PENDING, "waiting for the printer's owner", answer_within_s=300)
    fleetlink.tick(T0 + 200)  # far past the 30 s lease: the owner still has time
    assert service.store.get_job(job_id).state is JobState.ASSIGNED
    assert len(link.commands("home")) == 1  # and the offer is not sent again meanwhile
    node.ack(command, p.AckStatus.ACCEPTED)  # the owner says yes after four minutes
    fleetlink.tick(T0 + 400)
    assert service.store.get_job(job_id).state is JobState.ASSIGNED  # now waiting for job_started
    node.event(p.EventType.JOB_STARTED, job_id)
    assert service.store.get_job(job_id).state is JobState.PRINTING


def test_pending_owner_who_never_answers_gives_the_job_back_after_their_time(service, fleetlink, link, clock):
    job_id, command, node = dispatched(service, fleetlink, link, clock, "home")
    node.ack(command, p.AckStatus.PENDING, answer_within_s=120)
    fleetlink.tick(T0 + 125)
    assert (
        service.store.get_job(job_id).state is JobState.ASSIGNED
    )  # the node's own decline may be on its way
    fleetlink.tick(T0 + 131)
    assert service.store.get_job(job_id).state is JobState.QUEUED


def test_people_commands_reach_the_printer(service, fleetlink, link, clock):
    job_id, _, node = dispatched(service, fleetlink, link, clock, "mk4")
    node.event(p.EventType.JOB_STARTED, job_id)
    member = service.store.get_member_by_name("alice")
    service.jobs.pause_job(member, job_id)
    service.jobs.cancel_job(member, job_id)
    kinds = [(c.type, c.job_id) for c in link.commands("mk4")[1:]]
    assert kinds == [(p.CommandType.PAUSE, job_id), (p.CommandType.CANCEL, job_id)]
    assert service.printers.get_printer("mk4").state is PrinterState.AWAITING_BED_CLEAR
    Node(link, "mk4", clock).event(p.EventType.JOB_CANCELLED, job_id)  # the node confirms: no-op
    assert service.store.get_job(job_id).state is JobState.CANCELLED


def test_a_restart_sends_each_assignment_again_and_lets_its_printer_settle_it(service, link, clock):
    add_printer(service, "old")
    add_printer(service, "new")
    stale, young = queue_job(service), queue_job(service)
    service.store.assign_job(stale, "old", actor="system", now=T0 - 100)
    service.store.assign_job(young, "new", actor="system", now=T0 - 10)
    fl = FleetLink(service, link, base_url="http://f", lease_s=30, tick_interval_s=None, clock=clock)
    fl.start()
    # Nothing goes back to the queue before its printer answers: it may have taken the job.
    assert service.store.get_job(stale).state is JobState.ASSIGNED
    [again] = link.commands("old")
    assert (again.job_id, again.issued_at, again.expires_at) == (stale, T0 - 100, T0 - 70)
    later = FakeLink()
    FleetLink(service, later, base_url="http://f", lease_s=30, tick_interval_s=None, clock=clock).start()
    assert later.commands("old") == [again]  # another restart sends the very same command
    Node(link, "old", clock).ack(again, p.AckStatus.DECLINED, "expired")
    assert service.store.get_job(stale).state is JobState.QUEUED
    assert service.store.get_job(young).state is JobState.ASSIGNED
    Node(link, "new", clock).link.deliver(
        p.topic("new", p.Channel.ACK),
        p.encode_ack(p.Ack("from-before", p.AckStatus.DECLINED, T0, young, "busy")),
    )
    assert service.store.get_job(young).state is JobState.QUEUED
    fl.close()


def test_a_printer_back_from_an_outage_is_asked_again_about_a_job_it_never_started(service, link, clock):
    add_printer(service, "p1")
    job_id = queue_job(service)
    fl = FleetLink(service, link, base_url="http://f", lease_s=30, tick_interval_s=None, clock=clock)
    fl.start()
    fl.tick()
    [sent] = link.commands("p1")
    node = Node(link, "p1", clock)
    node.availability(False)  # gone before it answered: did it take the job?
    assert service.store.get_job(job_id).state is JobState.UNKNOWN

    node.availability(True)
    node.status(p.NodeState.IDLE)
    assert link.commands("p1") == [sent, sent]  # the same command: the node answers from its journal
    assert service.printers.get_printer("p1").current_job_id == job_id  # held until the printer says
    node.ack(sent, p.AckStatus.DECLINED, "expired")
    assert service.store.get_job(job_id).state is JobState.QUEUED
    assert service.printers.get_printer("p1").state is PrinterState.IDLE
    assert service.printers.get_printer("p1").current_job_id is None
    fl.close()


def latencies(service, step: str) -> list[float]:
    """The dispatch latency histogram of one step as [count, sum], or [] when nothing was timed."""
    histogram = service.metrics.snapshot()["histograms"].get(f"dispatch.latency_s{{step={step}}}")
    return [] if histogram is None else [histogram["count"], histogram["sum_s"]]


def test_dispatch_latency_runs_from_the_assignment_to_the_ack_and_to_the_start(
    service, fleetlink, link, clock
):
    job_id, command, node = dispatched(service, fleetlink, link, clock, "mk4")
    assert command.issued_at == T0  # assigned at the pass's time
    clock.now = T0 + 0.25
    node.ack(command, p.AckStatus.ACCEPTED)
    node.ack(command, p.AckStatus.ACCEPTED)  # a repeated answer is not a second dispatch
    clock.now = T0 + 4.0
    node.event(p.EventType.JOB_STARTED, job_id)
    assert latencies(service, "accepted") == [1, 0.25]
    assert latencies(service, "started") == [1, 4.0]
    wait = service.metrics.snapshot()["histograms"]["queue.wait_s"]
    assert wait["count"] == 1 and wait["sum_s"] == 0.0  # the job was queued at T0, assigned at T0


def test_a_recovered_dispatch_is_not_timed_across_the_restart(service, link, clock):
    add_printer(service, "old")
    job_id = queue_job(service)
    service.store.assign_job(job_id, "old", actor="system", now=T0 - 600)
    fl = FleetLink(service, link, base_url="http://f", lease_s=30, tick_interval_s=None, clock=clock)
    fl.start()
    [again] = link.commands("old")
    node = Node(link, "old", clock)
    node.ack(again, p.AckStatus.ACCEPTED)
    node.event(p.EventType.JOB_STARTED, job_id)
    assert service.store.get_job(job_id).state is JobState.PRINTING
    assert latencies(service, "accepted") == [] and latencies(service, "started") == []
    fl.close()


def test_only_the_holder_of_the_dispatch_duty_dispatches_and_a_new_holder_takes_over(service, link, clock):
    """Two fleet processes on one database: the link without the duty dispatches nothing and follows
    nothing up; when it gains the duty it sends the assignments left behind again, the same."""
    holds = {"first": True, "second": False}
    first_link, second_link = FakeLink(), FakeLink()
    first, second = (
        FleetLink(
            service, fake, base_url="http://f", lease_s=30, tick_interval_s=None, clock=clock,
            dispatch_duty=lambda name=name: holds[name],
        )
        for name, fake in (("first", first_link), ("second", second_link))
    )  # fmt: skip
    first.start()
    second.start()
    add_printer(service, "mk4")
    job_id = queue_job(service)
    second.tick(T0)
    assert second_link.commands("mk4") == [] and service.store.get_job(job_id).state is JobState.QUEUED
    first.tick(T0)
    [command] = first_link.commands("mk4")
    assert service.store.get_job(job_id).state is JobState.ASSIGNED
    # The first process dies without an answer from the printer; the second takes the duty over.
    holds.update(first=False, second=True)
    second.hand_over()  # a no-op for a link that waited for nothing
    second.take_over()
    assert second_link.commands("mk4") == [command], "the very same command, sent again"
    second.tick(T0 + 40)  # past the lease: the new holder follows it up and gives the job back
    assert service.store.get_job(job_id).state is JobState.QUEUED
    first.close()
    second.close()
