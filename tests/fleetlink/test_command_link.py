"""Commands to printers leave on a connection of their own, so that their broker answers never queue
behind the statuses coming in (under overload, those wait in the socket for seconds)."""

from __future__ import annotations

from fleet import protocol as p
from fleet.fleetlink import FleetLink

from .conftest import FakeLink, Node, add_printer, queue_job


def test_dispatch_and_peoples_commands_go_out_on_the_command_link_and_nothing_is_heard_there(
    service, link, clock
) -> None:
    commands = FakeLink()
    fleetlink = FleetLink(
        service, link, base_url="http://fleet", tick_interval_s=None, clock=clock, commands=commands
    )
    fleetlink.start()
    try:
        add_printer(service, "mk4")
        job_id = queue_job(service)
        fleetlink.tick(clock.now)
        [dispatch] = commands.commands("mk4")
        assert dispatch.type is p.CommandType.DISPATCH and dispatch.job_id == job_id
        assert link.sent == [], "nothing is published on the link the statuses come in on"
        assert commands.handlers == [], "and nothing is subscribed on the command link"
        # The printer answers on its own channel, which the fleet hears on its main link.
        Node(link, "mk4", clock).ack(dispatch, p.AckStatus.ACCEPTED)
        assert fleetlink.outstanding()[job_id].answer is p.AckStatus.ACCEPTED
        fleetlink.send_command("mk4", p.CommandType.CANCEL, job_id)
        assert [c.type for c in commands.commands("mk4")] == [p.CommandType.DISPATCH, p.CommandType.CANCEL]
    finally:
        fleetlink.close()
