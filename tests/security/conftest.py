"""Fixtures for the attack suite: a fleet with members, printers and jobs in every state, signed-in
browsers, a real waitress server, and ways to see that a refused request changed nothing."""

from __future__ import annotations

import base64
import io
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fleet.app import FleetApp
from fleet.config import FleetConfig, MetricsAccess
from fleet.geometry import Box
from fleet.http_protocol import BrokerAddress, EnrollRequest
from fleet.models import Job, Member, NewPrinter, Printer, PrinterSpec, Role
from fleet.server import Fleet
from fleet.states import JobState, PrinterState
from fleet.store import schema

PASSWORD = "correct horse battery"
VOLUME = {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 200, "max_y": 200, "max_z": 200}
CAPS = {"volume": VOLUME, "nozzle_diameter": 0.4, "material": "PLA"}


def enroll_request(code: str, name: str) -> EnrollRequest:
    """What a node with :data:`CAPS` sends to enroll as ``name``."""
    return EnrollRequest.from_json({"code": code, "name": name, "capabilities": CAPS})


CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
#: A few moves that pass the lab's checks.
GCODE = b"G28\nG1 Z0.2 F1200\nG1 X10 Y10 E1\nG1 X20 Y20 E2\n"
#: Columns that record use, not state: a refused request may touch them (a valid token was seen).
USE_COLUMNS = {"last_used_at", "last_seen"}
#: Tables that record use, not state: a refused request adds to them (a failed attempt is counted).
USE_TABLES = {"failed_attempts"}


def tiny_png() -> bytes:
    """A valid 1x1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0\x80"))
        + chunk(b"IEND", b"")
    )


def gcode_with_thumbnail() -> bytes:
    data = base64.b64encode(tiny_png())
    return b"; thumbnail begin 1x1 %d\n; %s\n; thumbnail end\n" % (len(data), data) + GCODE


class StrictClock:
    """Wall time that never repeats: every reading is later than the one before."""

    def __init__(self) -> None:
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self._last = max(time.time(), self._last + 0.001)
            return self._last


def open_fleet(data_dir: Path) -> Fleet:
    """A fleet on ``data_dir`` that can enroll printers (it names a broker; none needs to run)."""
    fleet = Fleet.open(FleetConfig(data_dir=data_dir, port=0))
    fleet.app.enrollment.node_mqtt = BrokerAddress("fleet.test", 18830, tls=False)
    fleet.app.clock = StrictClock()
    return fleet


def db_state(fleet: Fleet) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (minus the tables and columns that only record use), to compare before
    and after."""
    out = {}
    with fleet.store.engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            if table.name in USE_TABLES:
                continue
            columns = [c for c in table.columns if c.name not in USE_COLUMNS]
            out[table.name] = sorted(tuple(row) for row in conn.execute(select(*columns)).all())
    return out


def blob_files(fleet: Fleet) -> list[str]:
    """Every file under the blob store (staging included), relative to it."""
    root = fleet.blobs.root
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


class Browser:
    """A Flask test client with its own cookie jar: signs in through /signin, posts with its CSRF token."""

    def __init__(self, app: Any) -> None:
        self.http = app.test_client()
        self._csrf: str | None = None

    def csrf(self) -> str:
        if self._csrf is None:
            self._csrf = csrf_of(self.http.get("/signin").get_data(as_text=True))
        return self._csrf

    def sign_in(self, name: str, password: str = PASSWORD) -> Any:
        response = self.http.post("/signin", data={"name": name, "password": password, "csrf": self.csrf()})
        self._csrf = None  # a fresh session after signing in
        return response

    def signed_in(self, name: str, password: str = PASSWORD) -> Browser:
        response = self.sign_in(name, password)
        assert response.status_code == 303, f"{name} could not sign in: {response.status_code}"
        self._csrf = csrf_of(self.http.get("/account").get_data(as_text=True))
        return self

    def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.http.post(url, data={"csrf": self.csrf(), **(data or {})}, **kw)


@dataclass
class World:
    """A fleet with people, printers and jobs, served by one app; setups add what each request needs."""

    fleet: Fleet
    app: Any
    people: dict[str, Member]
    tokens: dict[str, str]
    printers: dict[str, Printer]
    commands: list[tuple[str, str, int | None]] = field(default_factory=list)
    #: What setups made once, by name (for requests that change nothing).
    cache: dict[str, Any] = field(default_factory=dict)
    _serial: int = 0

    @property
    def service(self) -> FleetApp:
        return self.fleet.app

    def unique(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{self._serial}"

    def member(self, role: Role = Role.MEMBER, *, password: bool = False) -> tuple[Member, str]:
        member, token = self.service.members.add_member(self.unique("m"), role)
        if password:
            self.service.identity.set_password(member, member.id, PASSWORD)
        return member, token

    def printer(self, *, restricted: bool = False) -> Printer:
        printer_id = self.unique("p")
        spec = PrinterSpec(Box.from_dict(VOLUME), material="PLA")
        return self.service.printers.add_printer(
            self.people["manager"], NewPrinter(printer_id, printer_id, spec, restricted)
        )

    def enrolled(self) -> tuple[Printer, str]:
        """A printer enrolled with a code, idle, and its HTTP token."""
        code, _ = self.service.enrollment.create_enrollment_code(None)
        enrollment = self.service.enrollment.enroll(enroll_request(code, self.unique("node")))
        printer = self.service.store.update_printer(enrollment.printer.id, state=PrinterState.IDLE)
        return printer, enrollment.answer.token

    def job(self, state: JobState = JobState.QUEUED, *, owner: str = "alice", content: bytes = GCODE) -> Job:
        """A job of ``owner`` brought to ``state`` the way the fleet would bring it there."""
        member = self.people[owner]
        if state is JobState.AWAITING_APPROVAL:
            member = self.service.store.update_member(member.id, requires_approval=True)
        try:
            [job] = self.service.intake.submit_job(member, io.BytesIO(content), filename="part.gcode").jobs
        finally:
            if state is JobState.AWAITING_APPROVAL:
                self.service.store.update_member(member.id, requires_approval=None)
        if state in (JobState.QUEUED, JobState.AWAITING_APPROVAL):
            return job
        return self.run(job, self.printer(), state)

    def run(self, job: Job, printer: Printer, state: JobState) -> Job:
        """Give ``job`` to ``printer`` and let the printer report it up to ``state``."""
        assert self.service.store.assign_job(job.id, printer.id, actor="system", now=self.service.clock())
        steps = {
            JobState.ASSIGNED: [],
            JobState.PRINTING: [JobState.PRINTING],
            JobState.PAUSED: [JobState.PRINTING, JobState.PAUSED],
            JobState.DONE: [JobState.PRINTING, JobState.DONE],
        }[state]
        for step in steps:
            self.service.reports.printer_job_event(printer.id, job.id, step, "reported by the test printer")
        return self.service.store.get_job(job.id)

    def plate_of_alice(self) -> Printer:
        """A printer waiting for its bed to be cleared of alice's print.

        Bob's later-submitted job printed there first: the plate is alice's by when the jobs ended,
        though bob's job has the higher id.
        """
        printer = self.printer()
        alices = self.job(JobState.QUEUED, owner="alice")
        bobs = self.job(JobState.QUEUED, owner="bob")
        self.run(bobs, printer, JobState.DONE)
        self.service.printers.confirm_bed_cleared(self.people["manager"], printer.id)
        self.run(alices, printer, JobState.DONE)
        cleared = self.service.printers.get_printer(printer.id)
        assert cleared.state is PrinterState.AWAITING_BED_CLEAR
        return cleared


#: Limits high enough that the matrix's own failed attempts never trip them.
NO_LIMITS = {
    "CROWDFAB_TOKEN_ATTEMPTS": 1_000_000,
    "CROWDFAB_ENROLL_ATTEMPTS": 1_000_000,
    "CROWDFAB_SIGNIN_ATTEMPTS": 1_000_000,
    "CROWDFAB_LIVE_CLIENTS": 1000,
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A manager, alice and bob (members, with passwords and tokens), two enrolled printers and a job
    dispatched to the first, served by one app with limits out of the way."""
    from fleet.api import create_app

    fleet = open_fleet(tmp_path_factory.mktemp("world") / "data")
    scraping = MetricsAccess.of("scrape-token-" + "s" * 24)  # /metrics on, for a token nobody here holds
    app = create_app(fleet.app, {"TESTING": True, "CROWDFAB_METRICS_ACCESS": scraping, **NO_LIMITS})
    people, tokens = {}, {}
    for name, role in (("manager", Role.MANAGER), ("alice", Role.MEMBER), ("bob", Role.MEMBER)):
        member, token = fleet.app.members.add_member(name, role)
        fleet.app.identity.set_password(member, member.id, PASSWORD)
        people[name], tokens[name] = member, token
    built = World(fleet, app, people, tokens, {})
    fleet.app.hooks.on_printer_command(lambda p, c, j: built.commands.append((p, c.value, j)))
    for role in ("printer", "other_printer"):
        built.printers[role], built.tokens[role] = built.enrolled()
    yield built
    fleet.close()


@pytest.fixture
def small_fleet(tmp_path: Path) -> Iterator[Fleet]:
    fleet = open_fleet(tmp_path / "data")
    yield fleet
    fleet.close()


@dataclass
class LiveServer:
    """The fleet served by the real waitress server (``fleet.server.make_server``) on a free port."""

    fleet: Fleet
    server: Any
    url: str
    host: str
    port: int


@pytest.fixture
def live_server(small_fleet: Fleet) -> Iterator[LiveServer]:
    from fleet.server import make_server

    server = make_server(small_fleet)
    thread = threading.Thread(target=server.run, name="security-http", daemon=True)
    thread.start()
    host, port = server.effective_host, server.effective_port
    yield LiveServer(small_fleet, server, f"http://{host}:{port}", host, port)

    def stop() -> None:
        for channel in list(server.active_channels.values()):
            channel.will_close = True
        server.close()

    # Closed from the server's own loop (woken by its trigger): closing its sockets from this thread
    # while it waits on them would make its select() fail.
    server.trigger.pull_trigger(stop)
    thread.join(10)
    assert not thread.is_alive(), "the server did not stop"
    server.task_dispatcher.shutdown()
