"""A fleet link over an in-memory broker, with a clock the tests move by hand."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from fleet import protocol as p
from fleet.app import FleetApp, build
from fleet.fleetlink import FleetLink
from fleet.geometry import Box
from fleet.models import Printer, Role
from fleet.states import PrinterState
from fleet.store import BlobStore, open_store
from tests.store.helpers import submit

T0 = 1_700_000_000.0
SHA = "c" * 64


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class FakeLink:
    """Delivers publishes to matching subscribers at once, and remembers every command sent."""

    def __init__(self) -> None:
        self.handlers: list[tuple[str, Callable[[str, bytes], None]]] = []
        self.sent: list[tuple[str, bytes]] = []

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None], qos: int = 1) -> None:
        self.handlers.append((topic_filter, handler))

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        assert qos == 1 and not retain, "commands go out at QoS 1, never retained"
        self.sent.append((topic, payload))
        self.deliver(topic, payload)

    def deliver(self, topic: str, payload: bytes) -> None:
        for pattern, handler in self.handlers:
            if fnmatch.fnmatchcase(topic, pattern.replace("+", "*")):
                handler(topic, payload)

    def commands(self, printer_id: str) -> list[p.Command]:
        cmd = p.topic(printer_id, p.Channel.CMD)
        return [p.decode_command(payload) for topic, payload in self.sent if topic == cmd]


class Node:
    """Speaks for one printer on the fake link."""

    def __init__(self, link: FakeLink, printer_id: str, clock: Clock) -> None:
        self.link, self.id, self.clock = link, printer_id, clock

    def status(self, state: p.NodeState, job_id: int | None = None, **caps: object) -> None:
        status = p.Status(state, self.clock(), job_id=job_id, capabilities=p.Capabilities(**caps))  # type: ignore[arg-type]
        self.link.deliver(p.topic(self.id, p.Channel.STATUS), p.encode_status(status))

    def availability(self, online: bool) -> None:
        self.link.deliver(
            p.topic(self.id, p.Channel.AVAILABILITY), (p.ONLINE if online else p.OFFLINE).encode()
        )

    def event(self, kind: p.EventType, job_id: int | None) -> None:
        self.link.deliver(
            p.topic(self.id, p.Channel.EVENTS), p.encode_event(p.Event(kind, self.clock(), job_id))
        )

    def ack(
        self, command: p.Command, status: p.AckStatus, reason: str = "", answer_within_s: float | None = None
    ) -> None:
        ack = p.Ack(command.id, status, self.clock(), command.job_id, reason, answer_within_s)
        self.link.deliver(p.topic(self.id, p.Channel.ACK), p.encode_ack(ack))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(tmp_path: Path, clock: Clock) -> Iterator[FleetApp]:
    store = open_store(None, tmp_path / "data")
    yield build(store, BlobStore(tmp_path / "files"), clock=clock)
    store.close()


@pytest.fixture
def link() -> FakeLink:
    return FakeLink()


@pytest.fixture
def fleetlink(service: FleetApp, link: FakeLink, clock: Clock) -> Iterator[FleetLink]:
    fl = FleetLink(
        service,
        link,
        base_url="http://fleet.example:8080/",
        ack_timeout_s=10,
        lease_s=30,
        resend_limit=2,
        dispatch_interval_s=5,
        decline_cooldown_s=300,
        tick_interval_s=None,
        clock=clock,
    )
    fl.start()
    yield fl
    fl.close()


def add_printer(service: FleetApp, printer_id: str, state: PrinterState = PrinterState.IDLE) -> Printer:
    return service.store.create_printer(
        Printer(printer_id, printer_id, state, Box.of_size(200, 200, 200), 0.4, "PLA", False, None, None, T0)
    )


def dispatched(
    service: FleetApp, fleetlink: FleetLink, link: FakeLink, clock: Clock, printer_id: str
) -> tuple[int, p.Command, Node]:
    """An idle printer, a queued job and the pass that offers it: the job, the one command the printer
    got, and the printer's side of the link, where most dispatch stories begin."""
    add_printer(service, printer_id)
    job_id = queue_job(service)
    fleetlink.tick(T0)
    [command] = link.commands(printer_id)
    return job_id, command, Node(link, printer_id, clock)


def queue_job(service: FleetApp, member_name: str = "alice") -> int:
    store = service.store
    try:
        member = store.get_member_by_name(member_name)
    except Exception:
        member = store.create_member(member_name, Role.MEMBER, now=T0)
    [job] = submit(
        store,
        member.id,
        file_sha256=SHA,
        filename="part.gcode",
        size_bytes=123,
        analysis={"estimated_time_s": 600},
        actor="test",
        reason="queued",
        now=T0,
    )
    return job.id
