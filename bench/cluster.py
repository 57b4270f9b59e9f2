"""Two fleet processes behind HAProxy on one PostgreSQL and one Mosquitto, and what a failure costs.

The topology of docs/operations.md on one machine: a fresh PostgreSQL database, one shared Mosquitto
with its dynamic security plugin (started from the file ``crowdfab-fleet broker init`` writes: the
fleet's login and every enrolled printer's own), two ``crowdfab-fleet serve --mqtt-dynsec`` processes
on one data directory, which administer the broker's logins and split the printers' messages through
an MQTT 5 shared subscription, and HAProxy on a free port in front of them, checking
``/api/v1/health``.

    .venv/bin/python bench/cluster.py --up                # start it, print the addresses, Ctrl-C stops it
    .venv/bin/python bench/cluster.py                     # the scenario, 500 printers (make cluster-bench)
    .venv/bin/python bench/cluster.py --printers 50 --quick

The scenario: N light printers (raw MQTT clients, each with its own enrolled login, statuses at
1 Hz, the node's side of every dispatch: accept, start, print, done), members submitting through
HAProxy with an Idempotency-Key each (sent again with it until answered), and a signed-in dashboard
stream through HAProxy. Then the fleet process that holds the dispatch duty, and serves that stream,
is killed with SIGKILL; it is started again; then both are restarted one at a time (SIGTERM: each
drains first). It prints: the take-over time of the once-only duties, how soon the live page showed
changes again, p99 status-to-page latency, CPU per fleet process, and the ledger: submissions
answered 201, lost, doubled; jobs started on two printers; 5xx answers during the rolling restart;
in a window of steady load, the statuses each process took off the wire (handled, or superseded in
its queue by a newer one) against those the printers published (each is taken by one process only,
so the two add up to what was published); and how soon a printer revoked through one process is
cut off by the shared broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

import bench.fleet_load as load
from fleet.metrics import difference, percentile

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get(
    "CROWDFAB_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
FLEET = str(Path(sys.executable).with_name("crowdfab-fleet"))
#: A process that gets SIGTERM answers its health check with 503 this long before it stops.
DRAIN_S = 2.0


# -- the parts --------------------------------------------------------------------------------------


def free_port() -> int:
    return load.free_port()


def p99(values: list[float]) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def create_database(admin_url: str = PG_ADMIN_URL) -> str:
    """A new empty PostgreSQL database; returns its URL (drop it with :func:`drop_database`)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    name = f"crowdfab_cluster_{os.getpid()}_{random.getrandbits(32):08x}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, admin_url: str = PG_ADMIN_URL) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    engine.dispose()


class FleetNode:
    """One ``crowdfab-fleet serve`` of the cluster: started, killed, drained and started again."""

    def __init__(self, name: str, args: list[str], port: int, log_path: Path) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.args = [FLEET, "serve", *args, "--port", str(port), "--drain-s", str(DRAIN_S)]
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen[bytes]] = None
        #: CPU seconds of this node's earlier lives, and of this one when last sampled.
        self._cpu_before = 0.0
        self._cpu_now = 0.0

    def sample_cpu(self) -> None:
        with contextlib.suppress(OSError, AssertionError):
            self._cpu_now = load.cpu_seconds(self.pid)

    def reset_cpu(self) -> None:
        self.sample_cpu()
        self._cpu_before = -self._cpu_now

    @property
    def cpu_s(self) -> float:
        """CPU seconds since :meth:`reset_cpu`, across restarts (a killed life counts to its last sample)."""
        return self._cpu_before + self._cpu_now

    def start(self) -> None:
        self._cpu_before += self._cpu_now
        self._cpu_now = 0.0
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start at {time.time():.3f}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def health(self) -> Optional[dict[str, Any]]:
        with contextlib.suppress(requests.RequestException, ValueError):
            response = requests.get(f"{self.url}/api/v1/health", timeout=2)
            if response.status_code == 200:
                found: dict[str, Any] = response.json()
                return found
        return None

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"fleet {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if self.health() is not None:
                return
            time.sleep(0.05)
        raise RuntimeError(f"fleet {self.name} was not healthy within {timeout:.0f} s:\n{self.log_tail()}")

    def duties(self) -> list[str]:
        found = self.health()
        return list(found["duties"]) if found else []

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> None:
        """SIGTERM: the process drains (health 503) for DRAIN_S, then stops cleanly."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""


def haproxy_config(port: int, servers: list[FleetNode], socket_path: Path) -> str:
    """HAProxy in front of the fleet processes: health-checked twice a second, a failed connection
    tried again on the other process, and a stream cut when its process is marked down."""
    lines = [
        "global",
        f"    stats socket {socket_path} mode 600 level admin",
        "    maxconn 4096",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-keep-alive 2s",
        "    option redispatch",
        "    retries 3",
        # Sent again elsewhere only when the request cannot have been handled: no connection, or the
        # connection closed before any answer (a process stopping); submissions carry an
        # Idempotency-Key, so even then nothing is queued twice.
        "    retry-on conn-failure empty-response",
        "frontend fleet",
        f"    bind 127.0.0.1:{port}",
        "    default_backend fleets",
        "backend fleets",
        "    balance leastconn",
        "    option httpchk GET /api/v1/health",
        "    http-check expect status 200",
        "    http-response set-header X-Served-By %s",
        "    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions",
    ]
    lines += [f"    server {node.name} 127.0.0.1:{node.port} check" for node in servers]
    return "\n".join(lines) + "\n"


@dataclass
class Cluster:
    """The whole topology on this machine, its files under ``work``."""

    work: Path
    printers: int = 0
    database_url: str = ""
    broker_port: int = 0
    http_port: int = 0
    nodes: list[FleetNode] = field(default_factory=list)
    credentials: list[load.Credentials] = field(default_factory=list)
    manager_token: str = ""
    member_token: str = ""
    probe_printer: str = ""
    #: A printer that only connects to be revoked (how soon the shared broker cuts it off).
    spare: Optional[load.Credentials] = None
    #: More ``serve`` options for both processes.
    serve_args: list[str] = field(default_factory=list)
    _own_database: bool = False
    _broker: Any = None
    _haproxy: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def data_dir(self) -> Path:
        return self.work / "data"

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        from fleet.broker import hash_password
        from fleet.dynsec import initial_config
        from fleet.server import FLEET_MQTT_USER

        self.work.mkdir(parents=True, exist_ok=True)
        if not self.database_url:
            self.database_url = create_database()
            self._own_database = True
        self.broker_port = self.broker_port or free_port()
        self.http_port = self.http_port or free_port()
        logins = self._enroll()
        # The shared broker: Mosquitto with its dynamic security plugin, from the file that
        # 'crowdfab-fleet broker init' writes (the fleet's login and every enrolled printer's). Both
        # processes administer it (--mqtt-dynsec) and split the printers' messages through a shared
        # subscription.
        password = f"cluster-{random.getrandbits(64):016x}"
        dynsec = initial_config(FLEET_MQTT_USER, hash_password(password), logins)
        self._broker = load.SharedBroker(self.work / "broker", self.broker_port, dynsec)
        mqtt_url = f"mqtt://{FLEET_MQTT_USER}:{password}@127.0.0.1:{self.broker_port}"
        common = [
            "--data-dir",
            str(self.data_dir),
            "--database-url",
            self.database_url,
            "--host",
            "127.0.0.1",
        ]
        common += ["--mqtt-url", mqtt_url, "--mqtt-dynsec", "--mqtt-public-host", "127.0.0.1"]
        common += ["--public-url", self.url]
        common += self.serve_args
        for name in ("a", "b"):
            node = FleetNode(name, common, free_port(), self.work / f"fleet-{name}.log")
            self.nodes.append(node)
            node.start()
        for node in self.nodes:
            node.wait_healthy()
        config = self.work / "haproxy.cfg"
        config.write_text(haproxy_config(self.http_port, self.nodes, self.work / "haproxy.sock"))
        with (self.work / "haproxy.log").open("ab") as log:
            self._haproxy = subprocess.Popen(
                [HAPROXY, "-f", str(config), "-db"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while self.haproxy_up() != {"a", "b"}:
            if self._haproxy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not come up:\n{(self.work / 'haproxy.log').read_text()}")
            time.sleep(0.1)

    def _enroll(self) -> list[tuple[str, str]]:
        """A manager, a member and the printers, straight through the service (as fleet_load does);
        returns every enrolled printer's broker login (printer id, password hash)."""
        from fleet.config import FleetConfig
        from fleet.http_protocol import BrokerAddress, EnrollRequest
        from fleet.models import Role
        from fleet.server import Fleet

        fleet = Fleet.open(FleetConfig(data_dir=self.data_dir, database_url=self.database_url))
        try:
            service = fleet.app
            service.enrollment.node_mqtt = BrokerAddress("127.0.0.1", self.broker_port)
            manager, self.manager_token = service.members.add_member("manager", Role.MANAGER)
            service.identity.set_password(manager, manager.id, load.PASSWORD)
            _, self.member_token = service.members.add_member("maker", Role.MEMBER)
            caps = {"volume": load.VOLUME, "nozzle_diameter": 0.4, "material": "PLA"}
            for i in range(self.printers + 2):
                code, _ = service.enrollment.create_enrollment_code(None)
                asked = EnrollRequest.from_json(
                    {"code": code, "name": f"cluster-{i:04d}", "capabilities": caps}
                )
                answer = service.enrollment.enroll(asked).answer
                creds = load.Credentials(answer.printer_id, answer.mqtt.password or "", answer.token)
                if i == self.printers:
                    self.probe_printer = answer.printer_id  # never connects: renamed to see changes travel
                elif i == self.printers + 1:
                    self.spare = creds  # connects at the end, to be revoked
                else:
                    self.credentials.append(creds)
            return [(c.printer_id, c.mqtt_password_hash) for c in fleet.store.active_credentials()]
        finally:
            fleet.close()

    def haproxy_up(self) -> set[str]:
        """The fleet processes HAProxy sends requests to now (its stats socket's ``show stat``)."""
        import socket

        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(str(self.work / "haproxy.sock"))
                sock.sendall(b"show stat\n")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
        except OSError:
            return set()
        up = set()
        for line in data.decode().splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[0] == "fleets" and fields[1] in ("a", "b") and fields[17] == "UP":
                up.add(fields[1])
        return up

    def node(self, name: str) -> FleetNode:
        return next(node for node in self.nodes if node.name == name)

    def duty_holder(self, duty: str = "dispatch") -> Optional[FleetNode]:
        return next((node for node in self.nodes if duty in node.duties()), None)

    def close(self) -> None:
        if self._haproxy is not None and self._haproxy.poll() is None:
            self._haproxy.terminate()
            self._haproxy.wait(10)
        for node in self.nodes:
            node.kill()
        if self._broker is not None:
            self._broker.stop()
        if self._own_database and self.database_url:
            with contextlib.suppress(Exception):
                drop_database(self.database_url)


# -- the printers ---------------------------------------------------------------------------------


class ClusterPrinter(load.LightPrinter):
    """A light printer that also notes every job it started (a job started twice is the failure), and
    keeps its worker's count of statuses published where the scenario reads it."""

    def publish_status(self) -> None:
        super().publish_status()
        self.worker.published_count.value = self.worker.published  # type: ignore[attr-defined]

    def downloaded(self, command: Any, problem: str) -> None:
        if not problem and command.job is not None:
            self.worker.started.append((command.job.job_id, self.id))  # type: ignore[attr-defined]
        super().downloaded(command, problem)


class ClusterWorker(load.Worker):
    """Light printers until told to stop; reports what they started."""

    def __init__(self, plan: load.WorkerPlan, control: Any, results: Any, published: Any) -> None:
        super().__init__(plan, control, results)
        self.started: list[tuple[int, str]] = []
        #: Shared with the scenario (a ``multiprocessing`` RawValue): statuses published so far.
        self.published_count = published

    async def connect_all(self) -> None:
        gate = asyncio.Semaphore(50)

        async def one(creds: load.Credentials) -> None:
            async with gate:
                printer = ClusterPrinter(self, creds)
                await self.loop.create_connection(lambda: printer, "127.0.0.1", self.plan.mqtt_port)
                await asyncio.wait_for(printer.connected, 30)
                self.printers.append(printer)

        await asyncio.gather(*(one(c) for c in self.plan.printers))

    async def main(self) -> None:
        await self.connect_all()
        self.results.put(("ready", self.plan.index, len(self.printers)))
        stop = self.control  # an mp.Event
        ticker = self.loop.create_task(self.ticker())  # until stopped: stop_at stays at infinity
        while not stop.is_set():
            await asyncio.sleep(0.2)
        ticker.cancel()
        self.stopping = True
        for printer in self.printers:
            if printer.transport is not None:
                printer.transport.write(b"\xe0\x00")
                printer.transport.close()
        self.http.shutdown(wait=False, cancel_futures=True)
        self.results.put(("done", self.plan.index, {"started": self.started, "errors": self.errors[:20]}))


def run_cluster_worker(plan: load.WorkerPlan, stop: Any, results: Any, published: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker = ClusterWorker(plan, stop, results, published)
    worker.loop.run_until_complete(worker.main())


class Printers:
    """The cluster's printers in ``workers`` processes."""

    def __init__(self, cluster: Cluster, *, workers: int, print_s: float = 2.0) -> None:
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.results: Any = ctx.Queue()
        creds = cluster.credentials
        self.procs = []
        self._published = [ctx.RawValue("q", 0) for _ in range(workers)]
        for index in range(workers):
            plan = load.WorkerPlan(
                index=index,
                printers=creds[index::workers],
                mqtt_port=cluster.broker_port,
                http_url=cluster.url,
                manager_token=cluster.manager_token,
                print_s=print_s,
                clear_delay_s=0.5,
                download=True,
            )
            proc = ctx.Process(
                target=run_cluster_worker,
                args=(plan, self.stop, self.results, self._published[index]),
                daemon=True,
            )
            proc.start()
            self.procs.append(proc)
        for _ in range(workers):
            kind, index, detail = self.results.get(timeout=120)
            if kind != "ready":
                raise RuntimeError(f"printer worker {index} failed: {detail}")

    def published(self) -> int:
        """Statuses the printers have published so far (each worker's count, as of its last one)."""
        return sum(int(value.value) for value in self._published)

    def finish(self) -> tuple[list[tuple[int, str]], list[str]]:
        """Stop them; every job each printer started, and their errors."""
        self.stop.set()
        started: list[tuple[int, str]] = []
        errors: list[str] = []
        for _ in self.procs:
            with contextlib.suppress(queue.Empty):
                kind, _index, detail = self.results.get(timeout=30)
                if kind == "done":
                    started += [tuple(s) for s in detail["started"]]  # type: ignore[misc]
                    errors += detail["errors"]
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        return started, errors


# -- members and a live page ----------------------------------------------------------------------


@dataclass
class Ledger:
    """Every submission by its Idempotency-Key: what the fleet answered, and every 5xx seen."""

    answered: dict[str, list[int]] = field(default_factory=dict)
    answered_at: dict[str, float] = field(default_factory=dict)
    server_errors: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Members:
    """Members submitting through HAProxy, each submission sent again with its key until answered."""

    def __init__(self, url: str, token: str, gcode: bytes, *, rate: float, threads: int = 2) -> None:
        self.url, self.token, self.gcode = url, token, gcode
        self.interval = threads / rate
        self.ledger = Ledger()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self, index: int) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.token}"}
        n = 0
        while not self._stop.is_set():
            n += 1
            key = f"m{index}-{n}-{random.getrandbits(32):08x}"
            while True:  # until answered, always with the same key
                try:
                    response = session.post(
                        f"{self.url}/api/v1/jobs",
                        headers={**headers, "Idempotency-Key": f'"{key}"'},
                        files={
                            "file": (f"part-{key}.gcode", self.gcode + f"; {key}\n".encode(), "text/plain")
                        },
                        timeout=30,
                    )
                except requests.RequestException:
                    time.sleep(0.1)
                    continue
                if response.status_code >= 500:
                    with self.ledger.lock:
                        self.ledger.server_errors.append((time.time(), response.status_code))
                    time.sleep(0.1)
                    continue
                with self.ledger.lock:
                    if response.status_code == 201:
                        self.ledger.answered[key] = [job["id"] for job in response.json()["jobs"]]
                        self.ledger.answered_at[key] = time.time()
                break
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(40)


class LivePage:
    """A signed-in dashboard's live stream through HAProxy, reconnecting as a browser does.

    Notes when each printers event and queue event arrived, the status-to-page lag from the cards'
    messages (``t=<publish time>``), and which fleet process served each connection. The first
    printers event of each connection shows every card as the process holds it then: the ages of
    those cards are kept apart (``connect_ages``), as they measure the outage, not a status's way.
    """

    def __init__(self, url: str, probe_printer: str = "") -> None:
        self.url = url
        self.probe_printer = probe_printer
        #: When the page showed each name of the probe printer.
        self.probe_names: list[tuple[float, str]] = []
        self.session = requests.Session()
        self._sign_in()
        self.served_by: Optional[str] = None
        self.connected = threading.Event()
        self.events: list[tuple[float, str]] = []  # (received, event)
        self.lags: list[tuple[float, float]] = []  # (received, lag)
        self.connect_ages: list[tuple[float, float]] = []  # (received, age) of cards shown on connecting
        self._first_cards = True
        self.connections: list[tuple[float, str]] = []
        self.retry_s = 2.0
        self._stop = threading.Event()
        self._response: Optional[requests.Response] = None
        self._thread = threading.Thread(target=self._run, name="live-page", daemon=True)
        self._thread.start()

    def _sign_in(self) -> None:
        page = self.session.get(f"{self.url}/signin", timeout=10).text
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        if found is None:
            raise RuntimeError("no CSRF token on the sign-in page")
        form = {"csrf": found.group(1), "name": "manager", "password": load.PASSWORD, "next": "/"}
        response = self.session.post(f"{self.url}/signin", data=form, timeout=10, allow_redirects=False)
        if response.status_code != 303:
            raise RuntimeError(f"sign-in answered {response.status_code}")

    def reconnect(self) -> None:
        """Drop the stream (the next one may land on the other process)."""
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.raw._fp.fp.raw._sock.shutdown(2)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.connected.clear()
            try:
                with self.session.get(f"{self.url}/events", stream=True, timeout=(5, 30)) as stream:
                    self._response = stream
                    if stream.status_code != 200:
                        raise RuntimeError(f"/events answered {stream.status_code}")
                    self.served_by = stream.headers.get("X-Served-By")
                    self.connections.append((time.time(), self.served_by or "?"))
                    self._first_cards = True
                    self.connected.set()
                    event = ""
                    for line in stream.iter_lines():
                        if self._stop.is_set():
                            return
                        if line.startswith(b"retry: "):
                            self.retry_s = int(line[7:]) / 1000
                        elif line.startswith(b"event: "):
                            event = line[7:].decode()
                        elif line.startswith(b"data: "):
                            self._data(event, line[6:])
            except Exception:  # noqa: S110 (a broken stream is what a killed process gives: reconnect)
                pass
            self.connected.clear()
            self._stop.wait(self.retry_s)  # as a browser's EventSource waits before reconnecting

    def _data(self, event: str, data: bytes) -> None:
        received = time.time()
        self.events.append((received, event))
        if event == "printers":
            lags = self.connect_ages if self._first_cards else self.lags
            self._first_cards = False
            for card in json.loads(data)["changed"]:
                if card["id"] == self.probe_printer:
                    self.probe_names.append((received, card["name"]))
                message = card.get("message") or ""
                if message.startswith("t="):
                    lags.append((received, received - float(message[2:])))

    def back_after(self, at: float, timeout: float) -> Optional[float]:
        """When the page, connected again after ``at``, first showed printers (None: not in time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            since = next((t for t, _ in list(self.connections) if t > at), None)
            if since is not None:
                shown = next((t for t, e in list(self.events) if t >= since and e == "printers"), None)
                if shown is not None:
                    return shown
            time.sleep(0.02)
        return None

    def shown(self, name: str, timeout: float) -> Optional[float]:
        """When the page showed the probe printer named ``name`` (None: not within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for received, shown in list(self.probe_names):
                if shown == name:
                    return received
            time.sleep(0.01)
        return None

    def close(self) -> None:
        self._stop.set()
        self.reconnect()
        self._thread.join(10)


# -- the scenario ---------------------------------------------------------------------------------


@dataclass
class Report:
    printers: int
    answered: int = 0
    lost: list[int] = field(default_factory=list)
    doubled: list[int] = field(default_factory=list)
    started_twice: dict[int, list[str]] = field(default_factory=dict)
    jobs_done: int = 0
    takeover_s: Optional[float] = None
    page_back_s: Optional[float] = None
    change_to_page_s: list[float] = field(default_factory=list)
    #: Over the whole run (the kill and the restarts included), and in steady load before the kill.
    status_p99_s: Optional[float] = None
    #: The p99 age of the cards a (re)connected page is shown first.
    connect_age_p99_s: Optional[float] = None
    steady_status_p99_s: Optional[float] = None
    kill_5xx: int = 0
    rolling_5xx: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)
    #: Statuses each process took off the wire in a window of steady load before the kill (handled,
    #: ``mqtt.messages{kind=status}``, or replaced in its queue by a newer one, ``status.superseded``),
    #: of them superseded, and how many the printers published meanwhile (counted by the printers).
    ingest: dict[str, int] = field(default_factory=dict)
    superseded: dict[str, int] = field(default_factory=dict)
    #: Each process's p99 from a status's publication to the process holding it, in that window.
    ingest_p99_s: dict[str, Optional[float]] = field(default_factory=dict)
    #: ... and its p99 time spent handling one (the rest of the lag is waiting: for a core, in a queue).
    handled_p99_s: dict[str, Optional[float]] = field(default_factory=dict)
    published: int = 0
    ingest_window_s: float = 0.0
    #: A printer revoked through one process: from the request, and from its answer, until the shared
    #: broker closed the printer's connection; and which process was asked.
    revoke_cut_off_s: Optional[float] = None
    revoke_after_answer_s: Optional[float] = None
    revoked_through: str = ""
    seconds: float = 0.0
    printer_errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        def s(value: Optional[float]) -> str:
            return "-" if value is None else f"{value:.2f} s"

        return [
            f"printers                         {self.printers}",
            f"submissions answered 201         {self.answered}",
            f"  lost / doubled                 {len(self.lost)} / {len(self.doubled)}",
            f"jobs started on two printers     {len(self.started_twice)}",
            f"jobs printed to the end          {self.jobs_done}",
            f"take-over of the duties          {s(self.takeover_s)} after the SIGKILL",
            f"live page back (reconnected)     {s(self.page_back_s)} after the SIGKILL",
            "a change to the page             "
            + (", ".join(f"{v:.2f} s" for v in self.change_to_page_s) or "-"),
            f"status-to-page p99               {s(self.steady_status_p99_s)} in steady load, "
            f"{s(self.status_p99_s)} over the whole run (cards shown on each (re)connect: "
            f"{s(self.connect_age_p99_s)} old at p99)",
            f"5xx through HAProxy              {self.kill_5xx} at the SIGKILL, "
            f"{self.rolling_5xx} in the rolling restart",
            "CPU per fleet process            "
            + ", ".join(
                f"{name} {cpu / max(self.seconds, 1e-9):.2f} core" for name, cpu in self.cpu_s.items()
            ),
            "statuses ingested per process    "
            + ", ".join(
                f"{n} {c} ({c / max(self.ingested, 1):.0%}, {self.superseded.get(n, 0)} superseded)"
                for n, c in self.ingest.items()
            )
            + f": together {self.ingested} of {self.published} published in {self.ingest_window_s:.1f} s",
            "status to fleet p99, per process "
            + ", ".join(f"{n} {s(v)}" for n, v in self.ingest_p99_s.items())
            + " in steady load (handling one: "
            + ", ".join(
                f"{n} {'-' if v is None else f'{v * 1000:.0f} ms'}" for n, v in self.handled_p99_s.items()
            )
            + ")",
            f"a revoked printer cut off        {s(self.revoke_cut_off_s)} after the request to fleet "
            f"{self.revoked_through or '-'} ({s(self.revoke_after_answer_s)} after its answer)",
            f"printer-side errors              {len(self.printer_errors)} {self.printer_errors[:3]}",
        ]

    @property
    def ingested(self) -> int:
        """Statuses the processes took off the wire together in the window."""
        return sum(self.ingest.values())


def _metrics(node: FleetNode, token: str) -> dict[str, Any]:
    """The process's counters and histograms (empty when it does not answer)."""
    with contextlib.suppress(requests.RequestException, ValueError):
        response = requests.get(
            f"{node.url}/api/v1/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        if response.status_code == 200:
            found: dict[str, Any] = response.json()
            return found
    return {"counters": {}, "histograms": {}}


def run_scenario(
    cluster: Cluster,
    *,
    workers: int,
    rate: float,
    settle_s: float,
    ingest_window_s: Optional[float] = None,
    log: Any = print,
) -> Report:
    """The whole scenario on a started cluster (see the module's doc); returns what it measured.

    ``ingest_window_s`` (default ``settle_s``): how long the statuses are counted in steady load."""
    from fleet.gcode.generate import generate_box

    report = Report(cluster.printers)
    began = time.monotonic()
    printers = Printers(cluster, workers=workers)
    load.wait_all_idle(cluster.url, cluster.manager_token, cluster.printers, timeout=120)
    members = Members(cluster.url, cluster.member_token, generate_box(10, 10, 0.6).encode(), rate=rate)
    page = LivePage(cluster.url, cluster.probe_printer)
    for node in cluster.nodes:
        node.reset_cpu()
    measured_from = time.monotonic()
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.25):
            for node in cluster.nodes:
                node.sample_cpu()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    steady_from = steady_to = 0.0
    try:
        # The stream on the process that holds the dispatch duty: the one killed serves both.
        holder = None
        deadline = time.monotonic() + 30
        while holder is None or page.served_by != holder.name:
            if time.monotonic() > deadline:
                raise RuntimeError("the live page never landed on the dispatch duty's holder")
            holder = cluster.duty_holder()
            if page.connected.wait(5) and holder is not None and page.served_by != holder.name:
                page.reconnect()
                time.sleep(0.3)
        assert holder is not None
        survivor = next(node for node in cluster.nodes if node is not holder)
        # Each status counted once, by whichever process took it: the window opens and closes with
        # the printers' own count read between the two processes' counters.
        before = {node.name: _metrics(node, cluster.manager_token) for node in cluster.nodes}
        published_from = printers.published()
        window_from, steady_from = time.monotonic(), time.time()
        time.sleep(settle_s if ingest_window_s is None else ingest_window_s)
        steady_to = time.time()
        published_to = printers.published()
        report.ingest_window_s = time.monotonic() - window_from
        for node in cluster.nodes:
            window = difference(before[node.name], _metrics(node, cluster.manager_token))
            superseded = int(window["counters"].get("status.superseded", 0))
            handled = int(window["counters"].get("mqtt.messages{kind=status}", 0))
            report.ingest[node.name] = handled + superseded
            report.superseded[node.name] = superseded
            lag = window["histograms"].get("status.lag_s")
            report.ingest_p99_s[node.name] = percentile(lag, 0.99) if lag else None
            handled = window["histograms"].get("status.handled_s")
            report.handled_p99_s[node.name] = percentile(handled, 0.99) if handled else None
        report.published = published_to - published_from
        log(f"killing fleet {holder.name} (pid {holder.pid}): it holds {holder.duties()} and serves the page")
        holder.sample_cpu()
        killed_at = time.time()
        holder.kill()
        # The survivor takes the duties over.
        while "dispatch" not in survivor.duties() or "sweeps" not in survivor.duties():
            if time.time() - killed_at > 30:
                raise RuntimeError(f"{survivor.name} did not take the duties over:\n{survivor.log_tail()}")
            time.sleep(0.05)
        report.takeover_s = time.time() - killed_at
        # The live page reconnects (through HAProxy, to the survivor) and shows changes again.
        back = page.back_after(killed_at, timeout=30)
        report.page_back_s = None if back is None else back - killed_at
        report.change_to_page_s.append(_change_shown(cluster, page))
        with members.ledger.lock:
            report.kill_5xx = len(members.ledger.server_errors)
        log(f"take-over {report.takeover_s:.2f} s; page back {report.page_back_s} s")
        holder.start()
        holder.wait_healthy()
        _wait_haproxy(cluster, {"a", "b"})
        time.sleep(settle_s)
        # A rolling restart: one process at a time, each drained first.
        rolling_from = time.time()
        for node in cluster.nodes:
            log(f"rolling restart of fleet {node.name}")
            node.sample_cpu()
            node.terminate()
            node.start()
            node.wait_healthy()
            _wait_haproxy(cluster, {"a", "b"})
            report.change_to_page_s.append(_change_shown(cluster, page))
        time.sleep(settle_s)
        with members.ledger.lock:
            report.rolling_5xx = sum(1 for at, _ in members.ledger.server_errors if at >= rolling_from)
        # A printer revoked through the process that does not hold the duties: any process may.
        through = next((node for node in cluster.nodes if not node.duties()), cluster.nodes[0])
        report.revoked_through = through.name
        report.revoke_cut_off_s, report.revoke_after_answer_s = revoke_cut_off(cluster, through)
    finally:
        members.stop()
        page.close()
        started, report.printer_errors = printers.finish()
        sampling.set()
        sampler.join(5)
    report.seconds = time.monotonic() - measured_from
    for node in cluster.nodes:
        node.sample_cpu()
        report.cpu_s[node.name] = node.cpu_s
    report.status_p99_s = p99([lag for _, lag in page.lags])
    report.connect_age_p99_s = p99([age for _, age in page.connect_ages])
    report.steady_status_p99_s = p99([lag for at, lag in page.lags if steady_from <= at <= steady_to])
    _check_ledger(cluster, members.ledger, started, report)
    log(f"scenario took {time.monotonic() - began:.1f} s")
    return report


def revoke_cut_off(cluster: Cluster, node: FleetNode, timeout: float = 10.0) -> tuple[float, float]:
    """Connect the spare printer to the shared broker under its own login, revoke it through ``node``
    (straight, not through HAProxy) and wait for the broker to close its connection; returns the
    seconds from the request and from the answer until then."""
    import socket

    from fleet import protocol as p

    spare = cluster.spare
    assert spare is not None, "the cluster has no spare printer"
    will = (p.topic(spare.printer_id, p.Channel.AVAILABILITY), p.OFFLINE.encode())
    with socket.create_connection(("127.0.0.1", cluster.broker_port), timeout=timeout) as sock:
        sock.sendall(
            load.connect_packet(f"spare-{spare.printer_id}", spare.printer_id, spare.mqtt_password, will)
        )
        connack = b""
        while len(connack) < 4:
            chunk = sock.recv(4 - len(connack))
            if not chunk:
                raise RuntimeError("the shared broker closed the spare printer's connection at once")
            connack += chunk
        if connack[0] != 0x20 or connack[3] != 0:
            raise RuntimeError(
                f"the shared broker refused the spare printer's login: CONNACK {connack.hex()}"
            )
        asked = time.monotonic()
        response = requests.post(
            f"{node.url}/api/v1/printers/{spare.printer_id}/revoke",
            headers={"Authorization": f"Bearer {cluster.manager_token}"},
            timeout=timeout,
        )
        answered = time.monotonic()
        response.raise_for_status()
        try:
            while sock.recv(4096):
                pass  # nothing is sent to it; anything would be read and dropped
        except socket.timeout:
            raise RuntimeError(f"the revoked printer was still connected {timeout:.0f} s later") from None
        except OSError:
            pass  # reset: cut off all the same
        closed = time.monotonic()
    return closed - asked, closed - answered


def _wait_haproxy(cluster: Cluster, names: set[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while cluster.haproxy_up() != names:
        if time.monotonic() > deadline:
            raise RuntimeError(f"HAProxy never saw {sorted(names)} up")
        time.sleep(0.05)


def _change_shown(cluster: Cluster, page: LivePage) -> float:
    """A manager renames the probe printer on each running process in turn (straight, not through
    HAProxy); how long from the answer until the page, on whichever process, shows the new name.
    Returns the slowest."""
    slowest = 0.0
    for node in [node for node in cluster.nodes if node.running]:
        if not page.connected.wait(10):
            raise RuntimeError("the live page is not connected")
        name = f"probe {node.name} {time.time():.3f}"
        response = requests.patch(
            f"{node.url}/api/v1/printers/{cluster.probe_printer}",
            headers={"Authorization": f"Bearer {cluster.manager_token}"},
            json={"name": name},
            timeout=30,
        )
        response.raise_for_status()
        answered = time.time()
        shown = page.shown(name, timeout=10)
        if shown is None:
            raise RuntimeError(
                f"a change made on fleet {node.name} never reached the page on {page.served_by} "
                f"(connections: {page.connections[-3:]})"
            )
        slowest = max(slowest, shown - answered)
    return slowest


def _check_ledger(cluster: Cluster, ledger: Ledger, started: list[tuple[int, str]], report: Report) -> None:
    from fleet.config import FleetConfig
    from fleet.server import Fleet

    fleet = Fleet.open(FleetConfig(data_dir=cluster.data_dir, database_url=cluster.database_url))
    try:
        store = fleet.store
        member = next(m for m in store.list_members() if m.name == "maker")
        jobs = store.list_jobs(member_id=member.id)
        probes = {job.id for job in jobs if job.filename == "probe.gcode"}
        stored = {job.id for job in jobs} - probes
        answered = [job_id for ids in ledger.answered.values() for job_id in ids]
        report.answered = len(ledger.answered)
        report.lost = sorted(set(answered) - stored)
        report.doubled = sorted(stored - set(answered)) + sorted(
            j for j in set(answered) if answered.count(j) > 1
        )
        report.jobs_done = sum(1 for job in jobs if job.state.value == "done")
    finally:
        fleet.close()
    by_job: dict[int, list[str]] = {}
    for job_id, printer_id in started:
        by_job.setdefault(job_id, []).append(printer_id)
    report.started_twice = {job: p for job, p in by_job.items() if len(set(p)) > 1}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--printers", type=int, default=500)
    parser.add_argument("--workers", type=int, default=0, help="printer processes (default: 1 per 250)")
    parser.add_argument("--rate", type=float, default=2.0, help="submissions a second")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of steady load between steps")
    parser.add_argument("--quick", action="store_true", help="50 printers, short steps")
    parser.add_argument("--up", action="store_true", help="start the topology and wait for Ctrl-C")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more option for both serve commands",
    )
    args = parser.parse_args()
    if args.quick:
        args.printers, args.settle = 50, 3.0
    load.raise_file_limit()
    work = Path(tempfile.mkdtemp(prefix="crowdfab-cluster-"))
    cluster = Cluster(work, printers=0 if args.up else args.printers, serve_args=args.serve_arg)
    try:
        cluster.start()
        if args.up:
            print(
                f"CrowdFab cluster: HAProxy on {cluster.url}/ in front of fleet a ({cluster.node('a').url})"
            )
            print(f"and fleet b ({cluster.node('b').url}); PostgreSQL database {cluster.database_url}")
            print(f"shared Mosquitto on 127.0.0.1:{cluster.broker_port}; files in {work}")
            print(f"sign in as 'manager', password {load.PASSWORD!r} (a throw-away lab); Ctrl-C stops it")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
            return 0
        workers = args.workers or max(1, (args.printers + 249) // 250)
        report = run_scenario(cluster, workers=workers, rate=args.rate, settle_s=args.settle)
        print("\n".join(report.lines()))
        failed = report.lost or report.doubled or report.started_twice or report.rolling_5xx
        return 1 if failed else 0
    finally:
        cluster.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
