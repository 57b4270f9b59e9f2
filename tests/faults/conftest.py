"""Shared parts of the fault suite: a fleet that runs as a real ``crowdfab-fleet serve`` process and can
be killed, light printer nodes (the real node code over a printer that prints at once), and a check of
what the fleet keeps on disk.

The fleet process is started with ``start_new_session`` so a SIGKILL reaches only it (and, through
the parent-death signal, its managed broker); the test stays in charge of everything else.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest
import requests

from fleet.config import FleetConfig
from fleet.geometry import Box
from fleet.models import Role
from fleet.mqtt import BrokerAddress
from fleet.node import NodeSettings, PrinterNode, PrinterSnapshot, PrintOutcome, build_node
from fleet.node.enroll import enroll
from fleet.protocol import Capabilities
from fleet.server import Fleet
from fleet.states import JOB_TRANSITIONS, JobState
from tests.brokers import free_port, wait_until
from tests.processes import answers

FLEET = str(Path(sys.executable).parent / "crowdfab-fleet")
VOLUME = {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 200, "max_y": 200, "max_z": 200}


# -- the fleet as a process -----------------------------------------------------------------------


class FleetProcess:
    """``crowdfab-fleet serve`` on one data dir and one HTTP port, started and killed as often as asked."""

    def __init__(
        self,
        data_dir: Path,
        *,
        mqtt_url: Optional[str] = None,
        mqtt_port: Optional[int] = None,
        port: Optional[int] = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.port = port or free_port()
        self.mqtt_url = mqtt_url
        self.mqtt_port = mqtt_port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.log_path = data_dir.parent / f"fleet-{self.port}.log"
        #: Seconds from each start to the first answer of the health endpoint.
        self.start_times: list[float] = []

    def args(self) -> list[str]:
        args = [FLEET, "serve", "--data-dir", str(self.data_dir), "--port", str(self.port), *self.extra_args]
        if self.mqtt_url:
            return [*args, "--mqtt-url", self.mqtt_url]
        return [*args, "--mqtt-port", str(self.mqtt_port)]

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it to answer."""
        assert not self.running, "the fleet is already running"
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.args(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self.process

    def start(self, timeout: float = 60.0) -> float:
        """Start and wait until the API answers; returns how long that took."""
        began = time.monotonic()
        self.spawn()
        self.wait_up(timeout)
        took = time.monotonic() - began
        self.start_times.append(took)
        return took

    def wait_up(self, timeout: float = 60.0) -> None:
        wait_until(self._up, timeout, f"the fleet to answer on {self.url}", interval=0.01)

    def _up(self) -> bool:
        process = self.process
        assert process is not None
        return answers(f"{self.url}/api/v1/health", process, "the fleet", self.log_tail)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind runs in the fleet."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self, timeout: float = 20.0) -> None:
        """Ctrl-C, as a person stops it (killed if it does not stop in time)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def api(
        self,
        token: str,
        method: str,
        path: str,
        *,
        timeout: float = 30,
        headers: Optional[dict[str, str]] = None,
        **kw: Any,
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        return requests.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=timeout, **kw)


def prepare_data_dir(data_dir: Path, members: dict[str, Role]) -> dict[str, str]:
    """Create the fleet's database with these members (no server running); returns their tokens."""
    fleet = Fleet.open(FleetConfig(data_dir=data_dir))
    try:
        return {name: fleet.app.members.add_member(name, role)[1] for name, role in members.items()}
    finally:
        fleet.close()


def enrollment_code(data_dir: Path) -> str:
    fleet = Fleet.open(FleetConfig(data_dir=data_dir))
    try:
        return fleet.app.enrollment.create_enrollment_code(None)[0]
    finally:
        fleet.close()


# -- light printers -------------------------------------------------------------------------------


class InstantPrinter:
    """A :class:`~fleet.node.PrinterPort` whose prints end as soon as they start.

    It counts every start by the fleet job id in the stored file's name: the printers' own record of
    what they printed, independent of what the fleet believes.
    """

    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.node: Optional[PrinterNode] = None
        self.starts: list[int] = []
        self._results: dict[str, PrintOutcome] = {}
        self._lock = threading.Lock()

    def snapshot(self) -> PrinterSnapshot:
        return PrinterSnapshot(operational=True)

    def start(self, path: Path) -> None:
        job_id = int(path.name.split("-", 1)[0])
        with self._lock:
            self.starts.append(job_id)
            self._results[str(path)] = PrintOutcome.DONE
        assert self.node is not None
        # Queued on the node's worker: it runs once the node has recorded the start.
        self.node.on_print_done(path.name)

    def pause(self) -> None:
        raise AssertionError("nothing pauses in this test")

    def resume(self) -> None:
        raise AssertionError("nothing resumes in this test")

    def cancel(self) -> None:
        pass

    def store_file(self, job_id: int, filename: str, source: Path) -> Path:
        target = self.storage / "crowdfab" / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        return target

    def last_result(self, path: Path) -> Optional[PrintOutcome]:
        with self._lock:
            return self._results.get(str(path))


@dataclass
class SimPrinter:
    printer_id: str
    printer: InstantPrinter
    node: PrinterNode


def enroll_printers(
    fleet: FleetProcess, count: int, work: Path, printer_type: type[InstantPrinter] = InstantPrinter
) -> list[SimPrinter]:
    """Enroll ``count`` printers with the running fleet and start their nodes on the broker it names."""
    printers = []
    caps = {"volume": VOLUME, "nozzle_diameter": 0.4, "material": "PLA"}
    for n in range(count):
        code = enrollment_code(fleet.data_dir)
        enrolled = enroll(fleet.url, code, f"sim {n}", caps)
        mqtt = enrolled.mqtt
        address = BrokerAddress(mqtt.host, mqtt.port, mqtt.username, mqtt.password)
        folder = work / enrolled.printer_id
        printer = printer_type(folder / "storage")
        settings = NodeSettings(
            capabilities=Capabilities(volume=Box.from_dict(VOLUME), nozzle_diameter=0.4, material="PLA")
        )
        node = build_node(
            enrolled.printer_id,
            address,
            printer,
            folder / "journal.json",
            enrolled.token,
            settings,
            keepalive=5,
            min_backoff=0.2,
            max_backoff=1.0,
        )
        printer.node = node
        node.start()
        printers.append(SimPrinter(enrolled.printer_id, printer, node))
    return printers


# -- what the fleet keeps -------------------------------------------------------------------------


@dataclass
class StoreReport:
    """What :func:`check_store` found; ``problems`` is empty when every invariant holds."""

    problems: list[str] = field(default_factory=list)
    jobs: dict[int, dict[str, object]] = field(default_factory=dict)
    #: Blob files no job refers to (left by an upload whose job was never written).
    unreferenced_blobs: list[str] = field(default_factory=list)
    staging_files: list[str] = field(default_factory=list)


def check_store(data_dir: Path) -> StoreReport:
    """Check the fleet's SQLite database and file store while no fleet runs on them.

    - ``PRAGMA integrity_check`` and ``foreign_key_check`` are clean;
    - each job's history is a chain of allowed transitions (JOB_TRANSITIONS) from its first state
      that ends in the job's state, and an assignment names the printer the job holds;
    - a printer's current job names it back and is active; an active job's printer holds it;
    - every job's file is in the blob store, and no staging file is left behind.
    """
    report = StoreReport()
    db = sqlite3.connect(data_dir / "fleet.db")
    try:
        check = [row[0] for row in db.execute("PRAGMA integrity_check")]
        if check != ["ok"]:
            report.problems.append(f"integrity_check: {check}")
        fk = db.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            report.problems.append(f"foreign_key_check: {fk}")
        jobs = {
            row[0]: {"state": row[1], "printer_id": row[2], "file_sha256": row[3], "member_id": row[4]}
            for row in db.execute("SELECT id, state, printer_id, file_sha256, member_id FROM jobs")
        }
        report.jobs = jobs
        events: dict[int, list[tuple[Optional[str], str, str]]] = {}
        for job_id, from_state, to_state, data in db.execute(
            "SELECT job_id, from_state, to_state, data FROM job_events ORDER BY id"
        ):
            events.setdefault(job_id, []).append((from_state, to_state, data))
        printers = {
            row[0]: (row[1], row[2]) for row in db.execute("SELECT id, state, current_job_id FROM printers")
        }
    finally:
        db.close()
    for job_id, job in jobs.items():
        report.problems += _history_problems(job_id, job, events.get(job_id, []))
        if (
            job["state"] in ("assigned", "printing", "paused")
            and printers.get(job["printer_id"], (None, None))[1] != job_id
        ):
            report.problems.append(
                f"job {job_id} is {job['state']} on {job['printer_id']}, which does not hold it"
            )
    for printer_id, (state, current) in printers.items():
        if current is None:
            continue
        job = jobs.get(current)
        if job is None or job["printer_id"] != printer_id or job["state"] in ("done", "failed", "cancelled"):
            report.problems.append(f"printer {printer_id} ({state}) holds job {current}: {job}")
    blob_root = FleetConfig(data_dir=data_dir).blob_dir
    stored = {p.name for p in blob_root.glob("??/??/*") if p.is_file()}
    for job_id, job in jobs.items():
        if job["file_sha256"] not in stored:
            report.problems.append(f"job {job_id}'s file {job['file_sha256']} is not in the blob store")
    referenced = {job["file_sha256"] for job in jobs.values()}
    report.unreferenced_blobs = sorted(stored - referenced)
    report.staging_files = sorted(p.name for p in (blob_root / "tmp").glob("*"))
    return report


def _history_problems(
    job_id: int, job: dict[str, object], history: list[tuple[Optional[str], str, str]]
) -> list[str]:
    if not history:
        return [f"job {job_id} has no history"]
    problems = []
    first_from, _, _ = history[0]
    if first_from is not None:
        problems.append(f"job {job_id}'s history starts from {first_from}")
    state: Optional[str] = None
    holder: Optional[str] = None
    for from_state, to_state, data in history:
        if state is not None and from_state != state:
            problems.append(f"job {job_id}: an event from {from_state} follows one to {state}")
        if (
            state is not None
            and from_state != to_state
            and JobState(to_state) not in JOB_TRANSITIONS[JobState(state)]
        ):
            problems.append(f"job {job_id}: {state} -> {to_state} is not an allowed transition")
        if to_state == "assigned":
            holder = json.loads(data or "{}").get("printer_id")
        state = to_state
    if state != job["state"]:
        problems.append(f"job {job_id} is {job['state']} but its history ends in {state}")
    if job["state"] in ("assigned", "printing", "paused", "done", "failed") and job["printer_id"] != holder:
        problems.append(f"job {job_id} is on {job['printer_id']} but was last assigned to {holder}")
    return problems


def starts_by_job(printers: list[SimPrinter]) -> dict[int, list[str]]:
    """Which printers started each job, from the printers' own counts."""
    found: dict[int, list[str]] = {}
    for sim in printers:
        for job_id, times in Counter(sim.printer.starts).items():
            found.setdefault(job_id, []).extend([sim.printer_id] * times)
    return found


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def make_fleet() -> Iterator[Callable[..., FleetProcess]]:
    """Makes :class:`FleetProcess` objects, and stops whatever still runs of them after the test."""
    made: list[FleetProcess] = []

    def make(data_dir: Path, **options: Any) -> FleetProcess:
        fleet = FleetProcess(data_dir, **options)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.stop()
