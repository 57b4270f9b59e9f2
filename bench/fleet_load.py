"""The fleet under load: N printers on their own MQTT connections, each reporting status at 1 Hz.

For each N (default 100, 500, 1000, 2000) the bench

- enrolls N printers and two members straight through the service (enrolling 2000 printers over
  HTTP would mostly measure enrollment), in a fresh data directory;
- starts ``crowdfab-fleet serve`` as its own process: the fleet's managed Mosquitto, with the
  configuration, password file and ACLs the fleet writes, and the fleet's HTTP server;
- runs the printers as light MQTT clients in a few worker processes (asyncio, one TCP connection and
  one broker login per printer, so the broker's ACLs apply to each): availability ``online`` with the
  ``offline`` last will, a protocol-valid status every second (QoS 1, retained), and for every
  dispatch the node's side of the protocol: the file downloaded with the printer's token and its
  sha256 checked, ``accepted``, ``job_started``, a short simulated print, ``job_done``, then a bed
  clear confirmed over HTTP (as a manager would), answered with ``done`` and ``bed_cleared``;
- submits jobs over HTTP at a steady rate the whole time;
- watches the dashboard's live stream (``/events``) as a signed-in browser would, and runs a bare
  ``mosquitto_sub`` on the same topics as the broker's reference ceiling;
- with ``--metrics on`` (the default) scrapes the fleet's Prometheus endpoint ``/metrics`` every 15 s
  (``--scrape-interval``) as a Prometheus server would (bearer token from the file the fleet was
  given with ``--metrics-token-file``, parsed with ``prometheus_client.parser``); with ``--metrics
  both`` the measured time alternates between windows with and without the scraper (``--segment``
  long, ``--duration`` in all for each), on the same fleet, so that both see the same machine, and
  the two are printed side by side;
- with ``--notify``, tells the member of every event of their jobs (a ``json://`` channel), the
  manager of the lab's, and a webhook of all of them, all posting to a local receiver that counts
  what arrives, beside the fleet's own counts of what it delivered;
- after a warm-up, measures over a window: what the fleet ingested (its ``/api/v1/metrics``), its CPU
  (``utime + stime`` from ``/proc/<pid>/stat``) and memory, the latency from a status's ``ts`` to the
  fleet's state (the fleet's ``status.lag_s`` histogram) and to the dashboard (the card's message
  carries the publish time), from a job's submission (the ``201``) to its printer receiving the
  dispatch, and the generator's own CPU.

    .venv/bin/python bench/fleet_load.py                     # N = 100, 500, 1000, 2000; 30 s each
    .venv/bin/python bench/fleet_load.py --sizes 1000 --duration 60
    .venv/bin/python bench/fleet_load.py --quick             # a small smoke run
    .venv/bin/python bench/fleet_load.py --sizes 1000 --profile /tmp/fleet-profile.txt
    .venv/bin/python bench/fleet_load.py --sizes 1000 --duration 60 --metrics both   # scraped or not
    .venv/bin/python bench/fleet_load.py --sizes 1000 --notify   # with notifications and webhooks on
    .venv/bin/python bench/fleet_load.py --sizes 1000,5000 --processes 1,2

With ``--processes`` the topology is the one several fleet processes share: a fresh PostgreSQL
database (``--pg-admin-url``), one Mosquitto with the dynamic security plugin started by the bench
from the file ``crowdfab-fleet broker init`` would write, and P fleet processes (``serve
--mqtt-dynsec``) on one data dir, splitting the printers' messages through a shared subscription;
jobs are submitted to the processes in turn, as a load balancer would. ``--status-hz 2`` doubles
every printer's status rate (overload runs). Scraping applies there too: each fleet process is
scraped on its own, as Prometheus scrapes every target, and the report counts all their scrapes.

The targets (checked at N = 1000): fleet under half a core, p99 status latency under 250 ms, p99
dispatch under 1 s, ingest at least half of what the bare subscriber receives. With ``--processes``,
at N = 5000: ingest at least 90% of the bare subscriber, status p99 under 500 ms, dispatch p99 under
1 s. "Ingest" counts the statuses a fleet took off the wire: handled, or replaced in its ingest queue
by a newer status of the same printer before their turn came; "handled" counts the first kind only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import random
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from prometheus_client.parser import text_string_to_metric_families

from fleet import protocol as p
from fleet.geometry import Box
from fleet.metrics import difference, percentile

if TYPE_CHECKING:
    from fleet.app import FleetApp
    from fleet.models import Member

ROOT = Path(__file__).resolve().parents[1]
VOLUME = {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 250, "max_y": 210, "max_z": 220}
PASSWORD = "bench manager password"  # noqa: S105 (a throw-away fleet's member)
SCRAPE_TOKEN = "bench-scrape-token-0123456789abcdef"  # noqa: S105 (a throw-away fleet's scrape token)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

TARGET_N = 1000
TARGET_CPU = 0.5
TARGET_STATUS_P99 = 0.250
TARGET_DISPATCH_P99 = 1.0
TARGET_RATIO = 0.5
SHARED_TARGET_N = 5000
SHARED_TARGET_RATIO = 0.9
SHARED_TARGET_STATUS_P99 = 0.5
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DYNSEC_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
FLEET_USER = "crowdfab_fleet"


# -- MQTT 3.1.1, only what a light printer needs ------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id: str, username: str, password: str, will: tuple[str, bytes]) -> bytes:
    # user name, password, will retain, will QoS 1, will flag, clean session
    flags = 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02
    body = _field(b"MQTT") + bytes([4, flags]) + struct.pack("!H", 60)
    body += _field(client_id.encode()) + _field(will[0].encode()) + _field(will[1])
    body += _field(username.encode()) + _field(password.encode())
    return b"\x10" + _varint(len(body)) + body


def publish_packet(topic: bytes, payload: bytes, packet_id: int, retain: bool) -> bytes:
    body = _field(topic) + struct.pack("!H", packet_id) + payload
    return bytes([0x32 | (0x01 if retain else 0)]) + _varint(len(body)) + body


def subscribe_packet(topic_filter: str, packet_id: int) -> bytes:
    body = struct.pack("!H", packet_id) + _field(topic_filter.encode()) + b"\x01"
    return b"\x82" + _varint(len(body)) + body


# -- the light printers (worker processes) ----------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    printer_id: str
    mqtt_password: str
    http_token: str


@dataclass
class WorkerPlan:
    index: int
    printers: list[Credentials]
    mqtt_port: int
    http_url: str
    manager_token: str
    print_s: float
    clear_delay_s: float
    download: bool
    status_hz: float = 1.0


class LightPrinter(asyncio.Protocol):
    """One printer's MQTT connection and the node's side of the protocol, without a node."""

    def __init__(self, worker: Worker, creds: Credentials) -> None:
        self.worker = worker
        self.creds = creds
        self.id = creds.printer_id
        self.topics = {c: p.topic(self.id, c).encode() for c in p.Channel}
        self.transport: Optional[asyncio.Transport] = None
        self.buffer = bytearray()
        self.connected: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.packet_id = 0
        self.state = p.NodeState.IDLE
        self.job_id: Optional[int] = None
        self.started_at = 0.0
        self.acks: dict[str, bytes] = {}
        self.taking: set[str] = set()
        self.rng = random.Random(hash(self.id))
        self.caps = p.Capabilities(volume=Box.from_dict(VOLUME), nozzle_diameter=0.4, material="PLA")

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        will = (p.topic(self.id, p.Channel.AVAILABILITY), p.OFFLINE.encode())
        transport.write(connect_packet(f"bench-{self.id}", self.id, self.creds.mqtt_password, will))

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(f"{self.id}: connection closed: {exc}"))
        elif not self.worker.stopping:
            self.worker.errors.append(f"{self.id}: connection lost: {exc}")
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        while len(buf) >= 2:
            length, shift, pos = 0, 0, 1
            while True:
                if pos >= len(buf):
                    return
                byte = buf[pos]
                length |= (byte & 0x7F) << shift
                shift += 7
                pos += 1
                if not byte & 0x80:
                    break
            if len(buf) < pos + length:
                return
            kind = buf[0] >> 4
            flags = buf[0] & 0x0F
            body = bytes(buf[pos : pos + length])
            del buf[: pos + length]
            self.packet(kind, flags, body)

    def packet(self, kind: int, flags: int, body: bytes) -> None:
        if kind == 2:  # CONNACK
            if body[1] != 0:
                self.connected.set_exception(ConnectionError(f"{self.id}: broker refused: code {body[1]}"))
                return
            self.send(subscribe_packet(p.topic(self.id, p.Channel.CMD), self.next_id()))
            self.publish(p.Channel.AVAILABILITY, p.ONLINE.encode(), retain=True)
            self.publish_status()
            self.connected.set_result(True)
        elif kind == 3:  # PUBLISH: a command
            topic_len = struct.unpack_from("!H", body)[0]
            start = 2 + topic_len
            qos = (flags >> 1) & 0x03
            if qos:
                self.send(b"\x40\x02" + body[start : start + 2])
                start += 2
            self.command(body[start:])
        # PUBACK, SUBACK, PINGRESP: nothing to do

    # sending

    def next_id(self) -> int:
        self.packet_id = self.packet_id % 65535 + 1
        return self.packet_id

    def send(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def publish(self, channel: p.Channel, payload: bytes, *, retain: bool = False) -> None:
        self.send(publish_packet(self.topics[channel], payload, self.next_id(), retain))

    def publish_status(self) -> None:
        now = time.time()
        rng = self.rng
        progress = None
        eta = None
        if self.state is p.NodeState.PRINTING:
            elapsed = now - self.started_at
            progress = min(100.0, 100.0 * elapsed / self.worker.plan.print_s)
            eta = self.started_at + self.worker.plan.print_s
        status = p.Status(
            state=self.state,
            ts=now,
            temperatures={
                "tool0": p.Temperature(209.5 + rng.random(), 210.0),
                "bed": p.Temperature(59.5 + rng.random(), 60.0),
            },
            progress=progress,
            job_id=self.job_id,
            eta=eta,
            capabilities=self.caps,
            # The dashboard shows the message: the bench reads the publish time back from the card.
            message=f"t={now:.3f}",
        )
        self.publish(p.Channel.STATUS, p.encode_status(status), retain=True)
        self.worker.published += 1

    def event(self, kind: p.EventType, job_id: Optional[int]) -> None:
        self.publish(p.Channel.EVENTS, p.encode_event(p.Event(kind, time.time(), job_id)))

    def ack(self, command: p.Command, status: p.AckStatus, reason: str = "") -> None:
        job_id = (
            command.job_id if command.job_id is not None else (command.job.job_id if command.job else None)
        )
        payload = p.encode_ack(p.Ack(command.id, status, time.time(), job_id, reason))
        self.acks[command.id] = payload
        self.publish(p.Channel.ACK, payload)

    # the node's side of the protocol

    def command(self, payload: bytes) -> None:
        received = time.time()
        try:
            command = p.decode_command(payload)
        except p.ProtocolError as exc:
            self.worker.errors.append(f"{self.id}: bad command: {exc.message}")
            return
        if command.id in self.acks:  # re-delivered: the same answer, nothing done twice
            self.publish(p.Channel.ACK, self.acks[command.id])
            return
        if command.id in self.taking:  # re-delivered while its file downloads: the answer follows
            return
        if command.type is p.CommandType.DISPATCH:
            assert command.job is not None
            self.worker.dispatches.append((command.job.job_id, self.id, received, command.issued_at))
            if self.state is not p.NodeState.IDLE:
                self.ack(command, p.AckStatus.DECLINED, f"busy: {self.state.value}")
                return
            self.state = p.NodeState.PRINTING  # taken: a second dispatch is declined
            self.taking.add(command.id)
            self.job_id = command.job.job_id
            self.started_at = time.time()
            if self.worker.plan.download:
                future = self.worker.http.submit(self.worker.download, self.creds, command.job)
                future.add_done_callback(
                    # A download still waiting when the bench shuts its pool down is cancelled: no result.
                    lambda f: (
                        f.cancelled()
                        or self.worker.loop.call_soon_threadsafe(self.downloaded, command, f.result())
                    )
                )
            else:
                self.downloaded(command, "")
        elif command.type is p.CommandType.BED_CLEARED:
            if self.state is p.NodeState.AWAITING_BED_CLEAR:
                job_id, self.job_id = self.job_id, None
                self.state = p.NodeState.IDLE
                self.ack(command, p.AckStatus.DONE)
                self.event(p.EventType.BED_CLEARED, job_id)
                self.publish_status()
            else:
                self.ack(command, p.AckStatus.DONE, "the bed was already clear")
        else:
            self.ack(command, p.AckStatus.DECLINED, f"job {command.job_id} is not running on this printer")

    def downloaded(self, command: p.Command, problem: str) -> None:
        assert command.job is not None
        self.taking.discard(command.id)
        if problem:
            self.worker.errors.append(f"{self.id}: job {command.job.job_id}: {problem}")
            self.state, self.job_id = p.NodeState.IDLE, None
            self.ack(command, p.AckStatus.FAILED, problem)
            return
        self.started_at = time.time()
        self.ack(command, p.AckStatus.ACCEPTED)
        self.event(p.EventType.JOB_STARTED, command.job.job_id)
        self.publish_status()
        self.worker.loop.call_later(self.worker.plan.print_s, self.finished, command.job.job_id)

    def finished(self, job_id: int) -> None:
        if self.job_id != job_id:
            return
        self.state = p.NodeState.AWAITING_BED_CLEAR
        self.event(p.EventType.JOB_DONE, job_id)
        self.publish_status()
        self.worker.loop.call_later(
            self.worker.plan.clear_delay_s,
            lambda: self.worker.http.submit(self.worker.confirm_bed_clear, self.id),
        )


class Worker:
    """Many light printers on one asyncio loop, in one process."""

    def __init__(self, plan: WorkerPlan, control: Any, results: Any) -> None:
        self.plan = plan
        self.control = control
        self.results = results
        self.printers: list[LightPrinter] = []
        self.published = 0
        self.late_max = 0.0
        self.dispatches: list[tuple[int, str, float, float]] = []
        self.errors: list[str] = []
        self.stopping = False
        self.stop_at = float("inf")
        self.http = ThreadPoolExecutor(4, thread_name_prefix="bench-http")
        self._local = threading.local()
        self.loop = asyncio.new_event_loop()

    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def download(self, creds: Credentials, job: p.JobRef) -> str:
        """Fetch the job's file as the printer would; an empty string when it is the file announced."""
        try:
            response = self.session().get(
                job.url, headers={"Authorization": f"Bearer {creds.http_token}"}, timeout=30
            )
        except requests.RequestException as exc:
            return f"download failed: {exc}"
        if response.status_code != 200:
            return f"download answered HTTP {response.status_code}"
        body = response.content
        if len(body) != job.size or hashlib.sha256(body).hexdigest() != job.sha256:
            return "the file is not the one the fleet announced"
        return ""

    def confirm_bed_clear(self, printer_id: str) -> None:
        """What a person at the printer does: confirm the plate is clear (once the fleet knows it is done)."""
        url = f"{self.plan.http_url}/api/v1/printers/{printer_id}/bed-cleared"
        headers = {"Authorization": f"Bearer {self.plan.manager_token}"}
        for _ in range(100):
            if self.stopping:
                return
            try:
                response = self.session().post(url, headers=headers, timeout=30)
            except requests.RequestException as exc:
                self.errors.append(f"{printer_id}: bed clear: {exc}")
                return
            if response.status_code == 200:
                return
            if response.status_code != 409:  # 409: the fleet has not settled the job yet
                self.errors.append(f"{printer_id}: bed clear answered {response.status_code}")
                return
            time.sleep(0.2)
        self.errors.append(f"{printer_id}: the fleet never let the bed be cleared")

    async def connect_all(self) -> None:
        gate = asyncio.Semaphore(50)

        async def one(creds: Credentials) -> None:
            async with gate:
                printer = LightPrinter(self, creds)
                await self.loop.create_connection(lambda: printer, "127.0.0.1", self.plan.mqtt_port)
                await asyncio.wait_for(printer.connected, 30)
                self.printers.append(printer)

        await asyncio.gather(*(one(c) for c in self.plan.printers))

    async def ticker(self) -> None:
        """Every printer's status ``status_hz`` times a second, spread evenly over the second, from the
        moment all are connected until ``stop_at`` (as nodes do: a status lost by an overloaded broker
        at the start is followed by the next one)."""
        printers = self.printers
        step = 1.0 / (len(printers) * self.plan.status_hz)
        next_at = time.time()
        i = 0
        while next_at < self.stop_at:
            now = time.time()
            self.late_max = max(self.late_max, now - next_at)
            while next_at <= now:
                printers[i].publish_status()
                i = (i + 1) % len(printers)
                next_at += step
            await asyncio.sleep(max(0.005, next_at - time.time()))

    async def main(self) -> None:
        await self.connect_all()
        self.results.put(("ready", self.plan.index, len(self.printers)))
        self.stop_at = float("inf")
        ticking = asyncio.ensure_future(self.ticker())
        t0, t1, self.stop_at = await self.loop.run_in_executor(None, self.control.get)
        counts: dict[str, int] = {}

        def window_starts() -> None:
            counts.setdefault("t0", self.published)
            self.late_max = 0.0  # lateness counts in the measured window only

        self.loop.call_at(self.loop.time() + max(0.0, t0 - time.time()), window_starts)
        self.loop.call_at(
            self.loop.time() + max(0.0, t1 - time.time()), lambda: counts.setdefault("t1", self.published)
        )
        await ticking
        self.stopping = True
        for printer in self.printers:
            if printer.transport is not None:
                printer.transport.write(b"\xe0\x00")  # DISCONNECT: a clean goodbye, no last will
                printer.transport.close()
        await asyncio.sleep(0.2)
        self.http.shutdown(wait=False, cancel_futures=True)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.results.put(
            (
                "done",
                self.plan.index,
                {
                    "published": counts.get("t1", self.published) - counts.get("t0", 0),
                    "late_max": self.late_max,
                    "dispatches": self.dispatches,
                    "errors": self.errors[:20],
                    "error_count": len(self.errors),
                    "cpu_s": usage.ru_utime + usage.ru_stime,
                },
            )
        )


def run_worker(plan: WorkerPlan, control: Any, results: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    worker = Worker(plan, control, results)
    try:
        worker.loop.run_until_complete(worker.main())
    except BaseException as exc:
        results.put(("failed", plan.index, f"{type(exc).__name__}: {exc}"))
        raise


# -- the fleet, its broker and the watchers ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory now and at its peak, in MB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append((int(entry), name))
    return found


def raise_file_limit() -> int:
    """Let this process and its children (the fleet, its broker, the workers) hold many sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Setup:
    data_dir: Path
    printers: list[Credentials]
    manager_token: str
    member_token: str
    gcode: bytes


class NotifyReceiver:
    """A local HTTP server that counts what the fleet's notifications POST to it, by path."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        counts: dict[str, int] = {}
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    counts[self.path] = counts.get(self.path, 0) + 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.counts, self.lock = counts, lock
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="notify-receiver", daemon=True).start()

    def total(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def subscribe_everyone(service: FleetApp, manager: Member, member: Member, base: str) -> None:
    """Through ``service`` (the fleet's), tell ``member`` of every event of their jobs (a json://
    channel), ``manager`` of the lab's, and a webhook of all of them, each at ``base`` (host:port)."""
    from fleet.notify.events import ALL_KINDS, MANAGER_KINDS, MEMBER_KINDS

    notes = service.notifications
    notes.add_channel(member, "bench", f"json://{base}/member", [k.value for k in MEMBER_KINDS])
    notes.add_channel(manager, "bench", f"json://{base}/manager", [k.value for k in MANAGER_KINDS])
    notes.add_webhook(manager, f"http://{base}/webhook", [k.value for k in ALL_KINDS])


def enroll(
    data_dir: Path,
    n: int,
    mqtt_port: int,
    database_url: Optional[str] = None,
    notify_base: Optional[str] = None,
) -> Setup:
    """A fresh fleet's data: a manager, a member and ``n`` enrolled printers (through the service).

    With ``notify_base`` (host:port of a :class:`NotifyReceiver`), the member is told of every event of
    their jobs, the manager of the lab's, and a webhook receives them all (:func:`subscribe_everyone`).
    """
    from fleet.config import FleetConfig
    from fleet.gcode.generate import generate_box
    from fleet.http_protocol import BrokerAddress, EnrollRequest
    from fleet.models import Role
    from fleet.server import Fleet

    fleet = Fleet.open(FleetConfig(data_dir=data_dir, database_url=database_url))
    try:
        service = fleet.app
        # Enrollment hands nodes the broker's address: the one serve will run.
        service.enrollment.node_mqtt = BrokerAddress("127.0.0.1", mqtt_port)
        manager, manager_token = service.members.add_member("manager", Role.MANAGER)
        service.identity.set_password(manager, manager.id, PASSWORD)
        maker, member_token = service.members.add_member("maker", Role.MEMBER)
        if notify_base is not None:
            subscribe_everyone(service, manager, maker, notify_base)
        caps = {"volume": VOLUME, "nozzle_diameter": 0.4, "material": "PLA"}

        def one(i: int) -> Credentials:
            code, _ = service.enrollment.create_enrollment_code(None)
            asked = EnrollRequest.from_json({"code": code, "name": f"bench-{i:04d}", "capabilities": caps})
            answer = service.enrollment.enroll(asked).answer
            return Credentials(answer.printer_id, answer.mqtt.password or "", answer.token)

        # A few at a time: on PostgreSQL each enrollment mostly waits for its commit.
        with ThreadPoolExecutor(8 if database_url else 1) as pool:
            printers = list(pool.map(one, range(n)))
    finally:
        fleet.close()
    gcode = generate_box(20, 20, 1.0).encode()
    return Setup(data_dir, printers, manager_token, member_token, gcode)


class FleetProcess:
    """``crowdfab-fleet serve`` as a child process, its log in the data directory."""

    def __init__(
        self,
        data_dir: Path,
        http_port: int,
        mqtt_port: int,
        profile: Optional[Path],
        *,
        shared: Optional[tuple[str, str]] = None,
        index: int = 0,
        scraped: bool = False,
    ) -> None:
        """``shared``: (database URL, broker URL with the fleet's login) of the shared topology;
        ``scraped``: ``/metrics`` opened to :data:`SCRAPE_TOKEN` (``--metrics-token-file``)."""
        script = Path(sys.executable).with_name("crowdfab-fleet")
        fleet = [str(script)] if script.exists() else [sys.executable, "-m", "fleet.cli"]
        if profile is not None:
            fleet = [sys.executable, str(ROOT / "bench" / "stack_sampler.py"), str(profile)]
        args = ["serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(http_port)]
        if shared is None:
            args += ["--mqtt-port", str(mqtt_port)]
        else:
            database_url, broker_url = shared
            args += ["--database-url", database_url, "--mqtt-url", broker_url, "--mqtt-dynsec"]
            args += ["--mqtt-public-host", "127.0.0.1"]
        if scraped:
            token_file = data_dir / "scrape-token"
            token_file.write_text(SCRAPE_TOKEN + "\n")
            os.chmod(token_file, 0o600)
            args += ["--metrics-token-file", str(token_file)]
        self.url = f"http://127.0.0.1:{http_port}"
        self.log_path = data_dir / (f"fleet-{index}.log" if shared else "fleet.log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(fleet + args, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.pid = self.proc.pid
        self._broker: Optional[int] = None

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the fleet exited with {self.proc.returncode}; see {self.log_path}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the fleet did not answer within {timeout:.0f} s; see {self.log_path}")

    def broker_pid(self) -> int:
        for pid, name in children(self.pid):
            if name == "mosquitto":
                self._broker = pid
                return pid
        raise RuntimeError("the fleet's managed mosquitto is not running")

    def stop(self) -> None:
        """Ctrl-C, as a person would (the fleet stops its broker); killed, with its broker, if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if self._broker is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self._broker, signal.SIGTERM)
        self._log.close()


class SharedBroker:
    """A Mosquitto with the dynamic security plugin, as an operator runs one for several fleets."""

    def __init__(self, directory: Path, port: int, dynsec: str) -> None:
        import pwd

        from fleet.dynsec import find_plugin

        directory.mkdir(parents=True, exist_ok=True)
        (directory / "dynsec.json").write_text(dynsec)
        os.chmod(directory / "dynsec.json", 0o600)
        conf = [
            "per_listener_settings false",
            "allow_anonymous false",
            f"listener {port} 127.0.0.1",
            f"plugin {find_plugin() or DYNSEC_PLUGIN}",
            f"plugin_opt_config_file {directory / 'dynsec.json'}",
            "persistence false",
            f"log_dest file {directory / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
        ]
        (directory / "mosquitto.conf").write_text("\n".join(conf) + "\n")
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen(
            [exe, "-c", str(directory / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the shared mosquitto did not start; see {directory / 'mosquitto.log'}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class PostgresDatabase:
    """A throw-away PostgreSQL database for one run."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url
        from sqlalchemy.pool import NullPool

        self._text = text
        self._engine = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self.name = f"crowdfab_bench_{os.getpid()}_{random.randrange(1 << 30)}"
        with self._engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        with self._engine.connect() as conn:
            conn.execute(self._text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._engine.dispose()


def merged(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics windows of several fleet processes as one: counters summed, histograms added."""
    out: dict[str, Any] = {"seconds": max(w["seconds"] for w in windows), "counters": {}, "histograms": {}}
    for window in windows:
        for name, value in window["counters"].items():
            out["counters"][name] = out["counters"].get(name, 0) + value
        for name, hist in window["histograms"].items():
            have = out["histograms"].get(name)
            if have is None:
                out["histograms"][name] = dict(hist, counts=list(hist["counts"]))
            else:
                have["counts"] = [a + b for a, b in zip(have["counts"], hist["counts"])]
                have["count"] += hist["count"]
    return out


class BareSubscriber:
    """``mosquitto_sub`` as the fleet's user on the fleet's topics, printing one topic a line."""

    def __init__(self, data_dir: Path, mqtt_port: int, login: Optional[tuple[str, str]] = None) -> None:
        if login is None:
            creds = json.loads((data_dir / "fleet-mqtt.json").read_text())
        else:
            creds = {"username": login[0], "password": login[1]}
        exe = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
        # Receive time, topic and payload: the payload's ts gives this subscriber's own latency.
        args = [exe, "-h", "127.0.0.1", "-p", str(mqtt_port), "-q", "1", "-F", "%U %t %p"]
        args += ["-u", creds["username"], "-P", creds["password"], "-i", f"bench-bare-{os.getpid()}"]
        for channel in (p.Channel.STATUS, p.Channel.AVAILABILITY, p.Channel.EVENTS, p.Channel.ACK):
            args += ["-t", p.wildcard(channel)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.status = 0
        self.other = 0
        self.samples: list[tuple[float, float]] = []  # (received, lag)
        self._thread = threading.Thread(target=self._read, name="bare-sub", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        tail = b""
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            for line in lines:
                received, topic, payload = line.split(b" ", 2)
                if not topic.endswith(b"/status"):
                    self.other += 1
                    continue
                self.status += 1
                at = payload.find(b'"ts":')
                if at >= 0:
                    ts = float(payload[at + 5 : payload.index(b",", at)])
                    self.samples.append((float(received), float(received) - ts))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class DashboardWatcher:
    """A signed-in browser's live stream: when each printer card shows a status, against its publish time."""

    def __init__(self, url: str, *, enabled: bool = True) -> None:
        self.url = url
        self.samples: list[tuple[float, float]] = []  # (received, lag)
        self.messages = 0
        self.error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard-watch", daemon=True)
        if enabled:
            self._thread.start()

    def _run(self) -> None:
        try:
            session = requests.Session()
            page = session.get(f"{self.url}/signin", timeout=10).text
            found = re.search(r'name="csrf" value="([^"]+)"', page)
            if found is None:
                raise RuntimeError("no CSRF token on the sign-in page")
            form = {"csrf": found.group(1), "name": "manager", "password": PASSWORD, "next": "/"}
            response = session.post(f"{self.url}/signin", data=form, timeout=10, allow_redirects=False)
            if response.status_code != 303:
                raise RuntimeError(f"sign-in answered {response.status_code}")
            while not self._stop.is_set():
                with session.get(f"{self.url}/events", stream=True, timeout=30) as stream:
                    event = ""
                    for line in self._lines(stream.raw):
                        if self._stop.is_set():
                            return
                        if line.startswith(b"event: "):
                            event = line[7:].decode()
                        elif line.startswith(b"data: ") and event == "printers":
                            self._printers(line[6:])
        except Exception as exc:  # reported with the results, the run goes on without this figure
            if not self._stop.is_set():
                self.error = f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _lines(raw: Any) -> Iterator[bytes]:
        """The stream's lines as they arrive, in time linear in their length.

        A card update for thousands of printers is one line of megabytes. ``iter_lines`` joins its
        512-byte pieces one at a time (quadratic: seconds a message, which showed as the page's lag),
        and a bigger piece size waits for that many bytes before handing over a short line; ``read1``
        hands over whatever has arrived."""
        buffer = bytearray()
        while data := raw.read1(65536):
            searched = len(buffer)
            buffer += data
            start = 0
            while (end := buffer.find(b"\n", searched)) >= 0:
                yield bytes(buffer[start:end]).rstrip(b"\r")
                start = searched = end + 1
            del buffer[:start]

    def _printers(self, data: bytes) -> None:
        received = time.time()
        self.messages += 1
        for card in json.loads(data)["changed"]:
            message = card.get("message") or ""
            if message.startswith("t="):
                self.samples.append((received, received - float(message[2:])))

    def stop(self) -> None:
        self._stop.set()


class Scraper:
    """A Prometheus server's part: ``/metrics`` every ``interval_s`` with the scrape token, parsed."""

    def __init__(self, url: str, interval_s: float) -> None:
        self.url = url
        self.interval_s = interval_s
        self.scrapes: list[tuple[float, float, int]] = []  # (when, seconds taken, bytes)
        self.errors: list[str] = []
        self.last: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._stop = threading.Event()
        self._active = False
        self._next_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="scraper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def set_active(self, active: bool) -> None:
        """Scrape (from now on, every interval) or pause, as a Prometheus server started or stopped."""
        if active and not self._active:
            self._next_at = time.monotonic()
        self._active = active

    def _run(self) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {SCRAPE_TOKEN}", "Accept": "text/plain"}
        while not self._stop.is_set():
            if not self._active or time.monotonic() < self._next_at:
                self._stop.wait(0.05)
                continue
            self._next_at += self.interval_s
            started = time.time()
            try:
                response = session.get(f"{self.url}/metrics", headers=headers, timeout=10)
                if response.status_code != 200:
                    self.errors.append(f"scrape answered {response.status_code}")
                else:
                    samples = {}
                    for family in text_string_to_metric_families(response.text):
                        for sample in family.samples:
                            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
                    self.last = samples
                    self.scrapes.append((started, time.time() - started, len(response.content)))
            except (requests.RequestException, ValueError) as exc:
                self.errors.append(f"scrape failed: {exc}")

    def stop(self) -> None:
        self._stop.set()


class Submitter:
    """Submits a job over HTTP every ``1 / rate`` seconds, noting when each was accepted."""

    def __init__(self, urls: list[str], token: str, gcode: bytes, rate: float) -> None:
        """``urls``: the fleet processes, taken in turn (as a load balancer would)."""
        self.urls, self.token, self.gcode, self.rate = urls, token, gcode, rate
        self.jobs: list[tuple[int, float, float]] = []  # (job id, sent, accepted)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="submitter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.token}"}
        next_at = time.monotonic()
        i = 0
        while not self._stop.is_set():
            i += 1
            sent = time.time()
            try:
                response = session.post(
                    f"{self.urls[i % len(self.urls)]}/api/v1/jobs",
                    headers=headers,
                    files={"file": (f"box-{i}.gcode", self.gcode, "text/plain")},
                    timeout=30,
                )
                accepted = time.time()
                if response.status_code == 201:
                    self.jobs.append((response.json()["jobs"][0]["id"], sent, accepted))
                else:
                    self.errors.append(f"submit answered {response.status_code}: {response.text[:200]}")
            except requests.RequestException as exc:
                self.errors.append(f"submit failed: {exc}")
            next_at += 1.0 / self.rate
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(35)


def all_printers(url: str, token: str) -> list[dict[str, Any]]:
    """Every printer the fleet lists, following its pages."""
    found: list[dict[str, Any]] = []
    params: dict[str, str] = {"limit": "500"}
    while True:
        response = requests.get(
            f"{url}/api/v1/printers", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        response.raise_for_status()
        page = response.json()
        found += page["printers"]
        if page["next_cursor"] is None:
            return found
        params["cursor"] = page["next_cursor"]


def wait_all_idle(url: str, token: str, n: int, timeout: float) -> tuple[float, int]:
    """Wait until the fleet holds every printer idle (each has reported in), or ``timeout`` passed:
    how long it waited, and how many printers were idle then."""
    started = time.monotonic()
    idle = 0
    while time.monotonic() - started < timeout:
        idle = sum(1 for printer in all_printers(url, token) if printer["state"] == "idle")
        if idle >= n:
            break
        time.sleep(2.0)
    return time.monotonic() - started, idle


def metrics(url: str, token: str) -> dict[str, Any]:
    response = requests.get(f"{url}/api/v1/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


# -- one run --------------------------------------------------------------------------------------


@dataclass
class Result:
    n: int
    seconds: float
    published: float = 0.0
    ingest: float = 0.0
    bare: float = 0.0
    fleet_cpu: float = 0.0
    fleet_rss: float = 0.0
    fleet_peak_rss: float = 0.0
    broker_cpu: float = 0.0
    generator_cpu: float = 0.0
    status_p50: Optional[float] = None
    status_p99: Optional[float] = None
    handle_p99: Optional[float] = None
    bare_p50: Optional[float] = None
    bare_p99: Optional[float] = None
    dash_p50: Optional[float] = None
    dash_p99: Optional[float] = None
    dispatch_p50: Optional[float] = None
    dispatch_p99: Optional[float] = None
    jobs: int = 0
    undispatched: int = 0
    dispatch_passes: int = 0
    pass_p50: Optional[float] = None
    pass_p99: Optional[float] = None
    store_checks: float = 0.0
    state_writes: float = 0.0
    dash_updates: int = 0
    #: Fleet processes (0: the managed single-process topology).
    processes: int = 0
    #: Statuses handled per second (the rest of ``ingest`` was replaced by newer ones while waiting).
    handled: float = 0.0
    fleet_cpus: list[float] = field(default_factory=list)
    #: Statuses each process took off the wire, per second.
    ingest_each: list[float] = field(default_factory=list)
    #: Whether a scraper read /metrics (every process's) every 15 s, and what each scrape cost.
    scraped: bool = False
    scrapes: int = 0
    scrape_p50: Optional[float] = None
    scrape_max: Optional[float] = None
    scrape_kb: float = 0.0
    #: What the notification receiver was sent in the window (``--notify``), by path.
    told: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.ingest / self.bare if self.bare else 0.0


def exact_percentile(values: list[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_one(n: int, args: argparse.Namespace, processes: int, modes: list[bool]) -> list[Result]:
    """One fleet of ``n`` printers, measured with /metrics scraped or not (``modes``: either or both);
    ``processes`` 0 is the managed single-process fleet, 1 or more the shared topology (PostgreSQL, a
    dynamic security Mosquitto, that many fleet processes)."""
    workers = max(1, min(args.workers, n // 50 or 1))
    label = f"N={n}" + (f" P={processes}" if processes else "")
    with tempfile.TemporaryDirectory(prefix=f"crowdfab-load-{n}-") as tmp:
        data_dir = Path(tmp) / "data"
        mqtt_port = free_port()
        http_ports = [free_port() for _ in range(max(1, processes))]
        started = time.monotonic()
        database: Optional[PostgresDatabase] = None
        shared_broker: Optional[SharedBroker] = None
        receiver: Optional[NotifyReceiver] = None
        fleets: list[FleetProcess] = []
        scrapers: list[Scraper] = []
        procs: list[Any] = []
        watchers: list[Any] = []
        start_note = ""
        scraped = any(modes)
        try:
            if processes:
                database = PostgresDatabase(args.pg_admin_url)
            if args.notify:
                receiver = NotifyReceiver()
            setup = enroll(
                data_dir,
                n,
                mqtt_port,
                database.url if database else None,
                receiver.base if receiver else None,
            )
            print(f"{label}: enrolled {n} printers in {time.monotonic() - started:.1f} s", flush=True)
            profile = Path(f"{args.profile}.{n}") if args.profile else None
            login: Optional[tuple[str, str]] = None
            if database is not None:
                from fleet.broker import hash_password
                from fleet.config import FleetConfig
                from fleet.dynsec import initial_config
                from fleet.server import Fleet

                # What 'crowdfab-fleet broker init' writes: the fleet's login and every enrolled printer's.
                fleet_password = f"bench-{random.randrange(1 << 60):x}"
                opened = Fleet.open(FleetConfig(data_dir=data_dir, database_url=database.url))
                try:
                    creds = [(c.printer_id, c.mqtt_password_hash) for c in opened.store.active_credentials()]
                finally:
                    opened.close()
                dynsec = initial_config(FLEET_USER, hash_password(fleet_password), creds)
                shared_broker = SharedBroker(Path(tmp) / "broker", mqtt_port, dynsec)
                login = (FLEET_USER, fleet_password)
                broker_url = f"mqtt://{FLEET_USER}:{fleet_password}@127.0.0.1:{mqtt_port}"
                for i in range(processes):
                    fleets.append(
                        FleetProcess(
                            data_dir,
                            http_ports[i],
                            mqtt_port,
                            profile if i == 0 else None,
                            shared=(database.url, broker_url),
                            index=i,
                            scraped=scraped,
                        )
                    )
            else:
                fleets.append(FleetProcess(data_dir, http_ports[0], mqtt_port, profile, scraped=scraped))
            for fleet in fleets:
                fleet.wait_ready(60)
            # Prometheus scrapes every target: each fleet process on its own.
            for fleet in fleets:
                scraper = Scraper(fleet.url, args.scrape_interval)
                scraper.set_active(modes[0])
                scraper.start()
                scrapers.append(scraper)
                watchers.append(scraper)
            broker = shared_broker.pid if shared_broker is not None else fleets[0].broker_pid()
            bare = BareSubscriber(data_dir, mqtt_port, login)
            watchers.append(bare)
            # The dashboard of the first process (with several, it shows that process's own ingest).
            dash = DashboardWatcher(fleets[0].url, enabled=not args.no_dashboard)
            watchers.append(dash)
            ctx = mp.get_context("spawn")
            results = ctx.Queue()
            controls = []
            for w in range(workers):
                plan = WorkerPlan(
                    w,
                    setup.printers[w::workers],
                    mqtt_port,
                    fleets[w % len(fleets)].url,
                    setup.manager_token,
                    args.print_s,
                    args.clear_delay_s,
                    not args.no_download,
                    args.status_hz,
                )
                control = ctx.Queue()
                proc = ctx.Process(target=run_worker, args=(plan, control, results), name=f"bench-worker-{w}")
                proc.start()
                procs.append(proc)
                controls.append(control)
            ready = 0
            deadline = time.monotonic() + 120
            while ready < workers:
                kind, index, value = results.get(timeout=max(1.0, deadline - time.monotonic()))
                if kind != "ready":
                    raise RuntimeError(f"worker {index}: {value}")
                ready += 1
            print(f"{label}: {n} printers connected ({workers} worker processes)", flush=True)
            # Each printer's first status is written to the database: that takes a while at thousands.
            took, idle = wait_all_idle(fleets[0].url, setup.manager_token, n, 180 + 0.02 * n)
            print(f"{label}: the fleet holds {idle} of {n} printers idle ({took:.1f} s after they connected)")
            if idle < n:
                start_note = (
                    f"measured with only {idle} of {n} printers idle at the fleet ({took:.0f} s after "
                    "connecting)"
                )
            submitter = Submitter([f.url for f in fleets], setup.member_token, setup.gcode, args.job_rate)
            submitter.start()
            plan_ = segments(modes, args)
            t0 = time.time() + args.warmup
            t1 = t0 + sum(length for _, length in plan_)
            stop_at = t1 + args.print_s + args.clear_delay_s + 3.0
            for control in controls:
                control.put((t0, t1, stop_at))
            pids = {f"fleet{i}": fleet.pid for i, fleet in enumerate(fleets)}
            pids.update({"broker": broker, "bare": bare.pid})
            pids.update({f"worker{i}": proc.pid for i, proc in enumerate(procs)})

            def reading() -> Reading:
                cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
                own = time.process_time()
                figures = [metrics(fleet.url, setup.manager_token) for fleet in fleets]
                told = {} if receiver is None else receiver.total()
                return Reading(cpu, own, figures, bare.status, time.time(), told)

            time.sleep(max(0.0, t0 - time.time()))
            windows: list[tuple[bool, Reading, Reading]] = []
            before = reading()
            end_at = t0
            for mode, length in plan_:
                for scraper in scrapers:
                    scraper.set_active(mode)
                end_at += length
                time.sleep(max(0.0, end_at - time.time()))
                after = reading()
                windows.append((mode, before, after))
                before = after
            for scraper in scrapers:
                scraper.set_active(False)
            rss, peak = rss_mb(fleets[0].pid)
            submitter.stop()
            done: dict[int, dict[str, Any]] = {}
            while len(done) < workers:
                kind, index, value = results.get(timeout=max(30.0, stop_at - time.time() + 30))
                if kind == "failed":
                    raise RuntimeError(f"worker {index}: {value}")
                if kind == "done":
                    done[index] = value
            for proc in procs:
                proc.join(10)
        finally:
            for watcher in watchers:
                watcher.stop()
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
            for fleet in fleets:
                fleet.stop()
            if shared_broker is not None:
                shared_broker.stop()
            if database is not None:
                database.drop()
            if receiver is not None:
                receiver.stop()
        received: dict[int, float] = {}
        for d in done.values():
            for job_id, _printer, at, _issued in d["dispatches"]:
                received.setdefault(job_id, at)
        errors = [e for d in done.values() for e in d["errors"]] + submitter.errors
        error_count = sum(d["error_count"] for d in done.values()) + len(submitter.errors)
        late = max(d["late_max"] for d in done.values())
        published = sum(d["published"] for d in done.values()) / (t1 - t0)
        found = []
        for mode in modes:
            mine = [(b, a) for scraped_, b, a in windows if scraped_ is mode]
            result = summarize(n, processes, mode, mine, args)
            if start_note:
                result.notes.insert(0, start_note)
            result.published = published
            result.fleet_rss, result.fleet_peak_rss = rss, peak
            spans = [(b.at, a.at) for b, a in mine]

            def inside(at: float, spans: list[tuple[float, float]] = spans) -> bool:
                return any(start <= at <= end for start, end in spans)

            result.dash_updates = sum(1 for at, _ in dash.samples if inside(at))
            bare_lags = [lag for at, lag in bare.samples if inside(at)]
            result.bare_p50, result.bare_p99 = (
                exact_percentile(bare_lags, 0.5),
                exact_percentile(bare_lags, 0.99),
            )
            dash_lags = [lag for at, lag in dash.samples if inside(at)]
            result.dash_p50, result.dash_p99 = (
                exact_percentile(dash_lags, 0.5),
                exact_percentile(dash_lags, 0.99),
            )
            waits = []
            for job_id, _sent, accepted in submitter.jobs:
                if not inside(accepted):
                    continue
                result.jobs += 1
                at = received.get(job_id)
                if at is None:
                    result.undispatched += 1
                    waits.append(float("inf"))
                else:
                    # A dispatch may reach its printer before the 201 reaches the bench: that is no wait.
                    waits.append(max(0.0, at - accepted))
            result.dispatch_p50 = exact_percentile(waits, 0.5)
            result.dispatch_p99 = exact_percentile(waits, 0.99)
            if result.undispatched:
                result.notes.append(f"{result.undispatched} of {result.jobs} jobs never reached a printer")
            if mode:
                taken = [(took, size) for s in scrapers for at, took, size in s.scrapes if inside(at)]
                result.scrapes = len(taken)
                result.scrape_p50 = exact_percentile([t for t, _ in taken], 0.5)
                result.scrape_max = max((t for t, _ in taken), default=None)
                result.scrape_kb = max((size for _, size in taken), default=0) / 1024
                for i, scraper in enumerate(scrapers):
                    process = f"process {i}'s " if len(scrapers) > 1 else ""
                    statuses = scraper.last.get(("crowdfab_mqtt_messages_total", (("kind", "status"),)), 0.0)
                    if not statuses:
                        result.notes.append(f"{process}last scrape showed no status messages")
                    if scraper.errors:
                        result.notes.append(
                            f"{process}{len(scraper.errors)} scrape errors, e.g. {scraper.errors[:2]}"
                        )
            if dash.error:
                result.notes.append(f"dashboard stream: {dash.error}")
            if error_count:
                result.notes.append(f"{error_count} errors, e.g. {errors[:3]}")
            if late > 0.5:
                result.notes.append(f"the generator fell behind its schedule by up to {late:.1f} s")
            if profile is not None:
                result.notes.append(f"profile: {profile}")
            found.append(result)
        return found


@dataclass(frozen=True)
class Reading:
    """What the bench reads at a window's edge: CPU seconds by process, its own, each fleet process's
    figures, the bare subscriber's count, the time, and what the notification receiver was sent."""

    cpu: dict[str, float]
    own_cpu: float
    figures: list[dict[str, Any]]
    bare_status: int
    at: float
    told: dict[str, int] = field(default_factory=dict)


def segments(modes: list[bool], args: argparse.Namespace) -> list[tuple[bool, float]]:
    """The measured windows: one of ``--duration`` for one mode; for both, ``--segment``-long windows
    alternating between them (unscraped first), ``--duration`` in all for each, so that both see the
    same machine (the load of other processes on it drifts)."""
    if len(modes) == 1:
        return [(modes[0], args.duration)]
    count = max(1, round(args.duration / args.segment))
    length = args.duration / count
    return [(mode, length) for _ in range(count) for mode in modes]


def added(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two metrics windows' counts as one (counters summed, histograms added); ``seconds`` is ``a``'s."""
    out: dict[str, Any] = {"seconds": a["seconds"], "counters": dict(a["counters"]), "histograms": {}}
    for name, value in b["counters"].items():
        out["counters"][name] = out["counters"].get(name, 0) + value
    for name in {*a["histograms"], *b["histograms"]}:
        x, y = a["histograms"].get(name), b["histograms"].get(name)
        if x is None or y is None:
            only = x if x is not None else y
            assert only is not None
            out["histograms"][name] = dict(only, counts=list(only["counts"]))
            continue
        counts = [i + j for i, j in zip(x["counts"], y["counts"])]
        out["histograms"][name] = dict(x, counts=counts, count=sum(counts), sum_s=x["sum_s"] + y["sum_s"])
    return out


#: How the fleet counts a status it handled (its JSON snapshot's name for the labelled series).
STATUS_HANDLED = "mqtt.messages{kind=status}"


def summarize(
    n: int, processes: int, scraped: bool, windows: list[tuple[Reading, Reading]], args: argparse.Namespace
) -> Result:
    """One mode's figures over its windows: per process, the sums of the windows' differences; the
    processes' together (:func:`merged`) for the fleet."""
    seconds = sum(a.at - b.at for b, a in windows)
    count = len(windows[0][0].figures)
    each: list[dict[str, Any]] = []
    for i in range(count):
        total: Optional[dict[str, Any]] = None
        for before, after in windows:
            window = difference(before.figures[i], after.figures[i])
            if total is None:
                total = window
            else:
                total = added(total, window)
                total["seconds"] += window["seconds"]
        assert total is not None
        each.append(total)
    window = merged(each)
    counters, histograms = window["counters"], window["histograms"]
    cpu: dict[str, float] = {}
    own = 0.0
    bare = 0
    told: dict[str, int] = {}
    for before, after in windows:
        for name in before.cpu:
            cpu[name] = cpu.get(name, 0.0) + after.cpu[name] - before.cpu[name]
        own += after.own_cpu - before.own_cpu
        bare += after.bare_status - before.bare_status
        for path, posted in after.told.items():
            told[path] = told.get(path, 0) + posted - before.told.get(path, 0)
    result = Result(n, seconds, processes=processes, scraped=scraped)

    def taken(counters: dict[str, Any]) -> float:
        # Off the wire: handled, or replaced by a newer status of the same printer while waiting.
        return float(counters.get(STATUS_HANDLED, 0) + counters.get("status.superseded", 0))

    result.ingest = taken(counters) / window["seconds"]
    result.ingest_each = [taken(w["counters"]) / w["seconds"] for w in each]
    result.handled = counters.get(STATUS_HANDLED, 0) / window["seconds"]
    result.bare = bare / seconds
    wall = {name: used / seconds for name, used in cpu.items()}
    result.fleet_cpus = [wall[f"fleet{i}"] for i in range(count)]
    result.fleet_cpu = sum(result.fleet_cpus)
    result.broker_cpu = wall["broker"]
    result.generator_cpu = sum(v for k, v in wall.items() if k.startswith("worker")) + wall["bare"]
    result.generator_cpu += own / seconds
    lag = histograms.get("status.lag_s")
    if lag:
        result.status_p50, result.status_p99 = percentile(lag, 0.5), percentile(lag, 0.99)
    handled = histograms.get("status.handled_s")
    if handled:
        result.handle_p99 = percentile(handled, 0.99)
    waits = histograms.get("ingest.wait_s")
    if waits and waits["count"]:
        result.notes.append(
            f"a message waited in the ingest queue p50 {ms(percentile(waits, 0.5))} ms, "
            f"p99 {ms(percentile(waits, 0.99))} ms"
        )
    passes = histograms.get("dispatch.pass_s")
    if passes:
        result.dispatch_passes = passes["count"]
        result.pass_p50, result.pass_p99 = percentile(passes, 0.5), percentile(passes, 0.99)
    result.store_checks = counters.get("status.store_checks", 0) / window["seconds"]
    result.state_writes = counters.get("status.printer_writes", 0) / window["seconds"]
    dropped = counters.get("mqtt.dropped", 0)
    if dropped:
        result.notes.append(f"the fleet dropped {dropped:.0f} messages (see its log)")
    if args.notify:
        result.told = told
        # The fleet's own counts by kind of channel: notifications.delivered{channel=json}, ...
        sent = {
            name.removeprefix("notifications."): int(value)
            for name, value in sorted(counters.items())
            if name.startswith(("notifications.delivered{", "notifications.failed{")) and value
        }
        result.notes.append(f"the fleet counted: {sent or 'nothing sent'}")
        sending = histograms.get("notifications.send_s")
        if sending and sending["count"]:
            result.notes.append(f"one delivery attempt p99 {ms(percentile(sending, 0.99))} ms")
    if len(windows) > 1:
        result.notes.append(f"measured over {len(windows)} windows of {seconds / len(windows):.0f} s")
    return result


# -- the report -----------------------------------------------------------------------------------


def ms(value: Optional[float]) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "never"
    return f"{value * 1000:.0f}"


def tag_of(r: Result) -> str:
    """How the report names one row: N, P (shared topology) and, beside each other, scraped or not."""
    return f"N={r.n}" + (f" P={r.processes}" if r.processes else "") + (" scraped" if r.scraped else "")


def report(results: list[Result], args: argparse.Namespace) -> None:
    print()
    print(
        f"CrowdFab fleet under load: status at {args.status_hz:g} Hz per printer, {args.job_rate:g} job/s "
        f"submitted, {args.duration:g} s measured after {args.warmup:g} s warm-up, {os.cpu_count()} CPUs"
    )
    head = (
        f"{'N':>5} {'P':>2} {'scraped':>7} {'sent/s':>7} {'ingest/s':>8} {'bare/s':>7} {'ratio':>5} "
        f"{'handled/s':>9} {'fleet cpu':>15} {'rss MB':>6} {'status p50/p99 ms':>17} "
        f"{'dashboard p50/p99':>17} {'dispatch p50/p99':>16} {'jobs':>4} {'broker cpu':>10} {'gen cpu':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        cpus = "+".join(f"{c:.2f}" for c in r.fleet_cpus) if len(r.fleet_cpus) > 1 else f"{r.fleet_cpu:.2f}"
        print(
            f"{r.n:>5} {r.processes or '-':>2} {'yes' if r.scraped else 'no':>7} {r.published:>7.0f} "
            f"{r.ingest:>8.0f} {r.bare:>7.0f} {r.ratio:>5.2f} {r.handled:>9.0f} {cpus:>15} "
            f"{r.fleet_rss:>6.0f} "
            f"{ms(r.status_p50) + ' / ' + ms(r.status_p99):>17} "
            f"{ms(r.dash_p50) + ' / ' + ms(r.dash_p99):>17} "
            f"{ms(r.dispatch_p50) + ' / ' + ms(r.dispatch_p99):>16} {r.jobs:>4} "
            f"{r.broker_cpu:>10.2f} {r.generator_cpu:>7.2f}"
        )
    for r in results:
        tag = tag_of(r)
        each = ""
        if len(r.ingest_each) > 1:
            each = "ingest per process " + " / ".join(f"{x:.0f}/s" for x in r.ingest_each) + "; "
        print(
            f"  {tag}: {each}bare subscriber's status latency p50 {ms(r.bare_p50)} ms, "
            f"p99 {ms(r.bare_p99)} ms; "
            f"status handling p99 {ms(r.handle_p99)} ms; {r.store_checks:.0f} statuses/s checked "
            f"against the store, {r.state_writes:.1f}/s changed a printer record; "
            f"{r.dispatch_passes} dispatch passes (p50 {ms(r.pass_p50)} ms, p99 {ms(r.pass_p99)} ms); "
            f"{r.dash_updates} card updates seen on "
            f"the dashboard; fleet peak RSS {r.fleet_peak_rss:.0f} MB"
        )
        if r.scraped:
            targets = f" from {len(r.fleet_cpus)} processes" if len(r.fleet_cpus) > 1 else ""
            print(
                f"  {tag}: /metrics scraped {r.scrapes} times{targets} in the window "
                f"(every {args.scrape_interval:g} s): "
                f"p50 {ms(r.scrape_p50)} ms, slowest {ms(r.scrape_max)} ms, {r.scrape_kb:.0f} kB each"
            )
        if args.notify:
            told = ", ".join(f"{path.strip('/')} {count}" for path, count in sorted(r.told.items()))
            print(f"  {tag}: notifications received in the window: {told or 'none'}")
        for note in r.notes:
            print(f"  {tag}: {note}")
    side_by_side(results)
    print(
        "  ingest: statuses the fleet took off the wire (handled, or replaced by a newer one of the same "
        "printer while waiting: handled/s counts only the first); P: fleet processes (- the managed "
        "single-process topology); scraped: /metrics read as Prometheus would; status: a printer's "
        "publish (the ts in its payload) to the fleet's state, from the fleet's status.lag_s histogram "
        "(bucket upper bounds); dashboard: to the card in the live stream (of the first process); "
        "dispatch: the job's 201 to its printer receiving the command."
    )
    checked = False
    for target in results:
        if target.n == TARGET_N and not target.processes:
            check_targets(target)
            checked = True
        if target.n == SHARED_TARGET_N and target.processes:
            check_shared_targets(target, args)
            checked = True
    if not checked:
        print(
            f"  targets: not checked (they are for N = {TARGET_N}, "
            f"and N = {SHARED_TARGET_N} with --processes)"
        )


def side_by_side(results: list[Result]) -> None:
    """For each N (and P) run both ways: the scraped run's figures over the unscraped one's."""
    for n, processes in sorted({(r.n, r.processes) for r in results}):
        same = [r for r in results if r.n == n and r.processes == processes]
        off = next((r for r in same if not r.scraped), None)
        on = next((r for r in same if r.scraped), None)
        if off is None or on is None:
            continue

        def ratio(a: Optional[float], b: Optional[float]) -> str:
            return f"{a / b:.2f}" if a is not None and b else "-"

        print(
            f"  {tag_of(off)}: scraped / not scraped, measured side by side: fleet cpu "
            f"{on.fleet_cpu:.2f} / {off.fleet_cpu:.2f} cores ({ratio(on.fleet_cpu, off.fleet_cpu)}), "
            f"status p99 {ms(on.status_p99)} / {ms(off.status_p99)} ms, "
            f"dispatch p99 {ms(on.dispatch_p99)} / {ms(off.dispatch_p99)} ms, "
            f"ingest ratio {on.ratio:.2f} / {off.ratio:.2f}, rss {on.fleet_rss:.0f} / {off.fleet_rss:.0f} MB"
        )


def check_targets(target: Result) -> None:
    """The single-process targets, at N = 1000."""
    checks = [
        (f"fleet under {TARGET_CPU} core", target.fleet_cpu < TARGET_CPU, f"{target.fleet_cpu:.2f} cores"),
        (
            f"p99 status latency under {TARGET_STATUS_P99 * 1000:.0f} ms",
            target.status_p99 is not None and target.status_p99 < TARGET_STATUS_P99,
            f"{ms(target.status_p99)} ms",
        ),
        dispatch_check(target),
        (
            f"ingest at least {TARGET_RATIO:.0%} of the bare subscriber",
            target.ratio >= TARGET_RATIO,
            f"{target.ratio:.0%}",
        ),
    ]
    print(f"  targets at N = {TARGET_N}, /metrics {'scraped' if target.scraped else 'not scraped'}:")
    for name, met, value in checks:
        print(f"    {'met    ' if met else 'NOT MET'}  {name}: {value}")


def check_shared_targets(r: Result, args: argparse.Namespace) -> None:
    """The shared topology's targets, at N = 5000."""
    checks = [
        (
            f"ingest at least {SHARED_TARGET_RATIO:.0%} of the bare subscriber",
            r.ratio >= SHARED_TARGET_RATIO,
            f"{r.ratio:.0%}",
        ),
        (
            f"p99 status latency under {SHARED_TARGET_STATUS_P99 * 1000:.0f} ms",
            r.status_p99 is not None and r.status_p99 < SHARED_TARGET_STATUS_P99,
            f"{ms(r.status_p99)} ms",
        ),
        dispatch_check(r),
    ]
    print(
        f"  targets at N = {SHARED_TARGET_N}, {r.processes} process(es), {args.status_hz:g} Hz, "
        f"/metrics {'scraped' if r.scraped else 'not scraped'}:"
    )
    for name, met, value in checks:
        print(f"    {'met    ' if met else 'NOT MET'}  {name}: {value}")


def dispatch_check(r: Result) -> tuple[str, bool, str]:
    return (
        f"p99 dispatch under {TARGET_DISPATCH_P99:g} s",
        r.dispatch_p99 is not None and r.dispatch_p99 < TARGET_DISPATCH_P99 and r.jobs > 0,
        f"{ms(r.dispatch_p99)} ms over {r.jobs} jobs",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500,1000,2000", help="printer counts, comma-separated")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured per size")
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds after connecting, before measuring"
    )
    parser.add_argument("--job-rate", type=float, default=1.0, help="jobs submitted per second")
    parser.add_argument("--print-s", type=float, default=8.0, help="how long a simulated print takes")
    parser.add_argument("--clear-delay-s", type=float, default=1.0, help="job done to bed-clear confirmation")
    parser.add_argument("--workers", type=int, default=2, help="processes running the light printers")
    parser.add_argument("--no-download", action="store_true", help="printers skip fetching the job file")
    parser.add_argument("--no-dashboard", action="store_true", help="no browser watches the live stream")
    parser.add_argument(
        "--notify",
        action="store_true",
        help="notifications on: the member, the manager and a webhook are told of every event (json:// and "
        "webhook posts to a local receiver, counted in the report)",
    )
    parser.add_argument("--profile", help="sample the fleet's stacks; the report goes to PROFILE.<N>")
    parser.add_argument(
        "--metrics",
        choices=("on", "off", "both"),
        default="on",
        help="scrape /metrics during the run (on), not (off), or run each N both ways side by side; "
        "with --processes each process is scraped",
    )
    parser.add_argument(
        "--scrape-interval", type=float, default=15.0, help="seconds between scrapes (Prometheus: 15)"
    )
    parser.add_argument(
        "--segment",
        type=float,
        default=30.0,
        help="with --metrics both: the length of each window, scraped and not scraped in turn",
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run: 20 printers, 5 s")
    parser.add_argument(
        "--processes",
        help="fleet process counts, comma-separated, each run in the shared topology (PostgreSQL, a dynamic "
        "security Mosquitto, shared subscriptions); default: one process with its managed broker and SQLite",
    )
    parser.add_argument("--status-hz", type=float, default=1.0, help="statuses per printer per second")
    parser.add_argument(
        "--pg-admin-url", default=PG_ADMIN_URL, help="PostgreSQL, to create each run's database"
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.duration, args.warmup, args.print_s = "20", 5.0, 3.0, 2.0
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be whole numbers separated by commas, not {args.sizes!r}")
    if not sizes or min(sizes) < 1:
        parser.error("--sizes needs at least one printer count of 1 or more")
    if min(args.duration, args.job_rate, args.status_hz, args.scrape_interval, args.segment) <= 0:
        parser.error("--duration, --job-rate, --status-hz, --scrape-interval and --segment must be positive")
    if args.workers < 1:
        parser.error("--workers must be 1 or more")
    try:
        counts = [int(c) for c in args.processes.split(",") if c.strip()] if args.processes else [0]
    except ValueError:
        parser.error(f"--processes must be whole numbers separated by commas, not {args.processes!r}")
    if not counts or min(counts) < 0 or (args.processes and min(counts) < 1):
        parser.error("--processes needs at least one process count of 1 or more")
    limit = raise_file_limit()
    if limit < max(sizes) * 2 + 200:
        print(
            f"warning: only {limit} open files allowed; "
            f"{max(sizes)} printers need about {max(sizes) * 2 + 200}"
        )
    results = []
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.metrics]
    for n in sizes:
        for processes in counts:
            for r in run_one(n, args, processes, modes):
                results.append(r)
                print(
                    f"{tag_of(r)}: ingest {r.ingest:.0f}/s "
                    f"(bare {r.bare:.0f}/s, handled {r.handled:.0f}/s), fleet {r.fleet_cpu:.2f} cores, "
                    f"status p99 {ms(r.status_p99)} ms, dispatch p99 {ms(r.dispatch_p99)} ms",
                    flush=True,
                )
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
