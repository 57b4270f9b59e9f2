"""The fleet process killed with SIGKILL at random moments while members submit and printers print.

One test, 50 kills: a real ``crowdfab-fleet serve`` (SQLite, a real Mosquitto given as an external
broker, so the broker outlives every fleet process) restarted after each kill; members submitting
over HTTP from threads, each submission with its own Idempotency-Key and sent again with it until
the fleet answers (so every submission must exist exactly once); four printers running the real
node code over printers that print at once and count what they started. Then the fleet runs once
more, the load stops, and everything settles. The seed is printed; set ``CROWDFAB_FAULT_SEED`` to
replay a run's kill moments.

A shorter run does the same with the fleet's own managed broker, which now dies with it. Below
them: the managed broker's fate when its fleet is killed (gone within seconds, taken over if one
was left), and the half-written uploads a killed fleet leaves (removed at the next start).
"""

from __future__ import annotations

import os
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from fleet.gcode.generate import generate_box
from fleet.models import Role
from fleet.store import BlobStore
from tests.brokers import MOSQUITTO, TestBroker, port_open, wait_until

from .conftest import FleetProcess, SimPrinter, check_store, enroll_printers, prepare_data_dir, starts_by_job

KILLS = 50
PRINTERS = 4
#: Submissions stop here, so the queue stays a size the printers keep up with.
MAX_SUBMITS = 160
MakeFleet = Callable[..., FleetProcess]
TRANSIENT = {"submitted", "assigned", "printing", "paused", "unknown"}


@dataclass
class Ledger:
    """What the members sent and were told: each submission by its Idempotency-Key, with its jobs."""

    limit: int
    copies: dict[str, int] = field(default_factory=dict)  # key -> copies the submission asked for
    answered: dict[str, list[int]] = field(default_factory=dict)  # key -> the jobs the fleet answered
    resent: int = 0  # requests whose answer was lost, sent again with the same key
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def refused(exc: BaseException) -> bool:
    """True when the connection was refused (no fleet listening), so the request never left."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ConnectionRefusedError):
            return True
        seen.add(id(cause))
        cause = (
            cause.__cause__
            or cause.__context__
            or (cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None)
        )
    return False


def submitter(
    fleet: FleetProcess,
    token: str,
    seed: int,
    ledger: Ledger,
    stop: threading.Event,
    give_up: threading.Event,
) -> None:
    rng = random.Random(seed)
    small = generate_box(8, 8, 0.4, origin=(60.0, 60.0))
    large = generate_box(50, 50, 60, origin=(60.0, 60.0))  # ~120 KB: a longer intake to be killed in
    while not stop.is_set():
        key = f"{seed}-{rng.getrandbits(64):016x}"
        # Mostly distinct files (a new blob each), sometimes one already stored.
        base = large if rng.random() < 0.3 else small
        text = base if rng.random() < 0.2 else f"; submission {key}\n{base}"
        copies = 2 if rng.random() < 0.15 else 1
        with ledger.lock:
            if len(ledger.copies) >= ledger.limit:
                return
            ledger.copies[key] = copies
        # Sent until the fleet answers, always with the submission's key: a retry never queues it twice.
        while not give_up.is_set():
            try:
                response = fleet.api(
                    token,
                    "POST",
                    "/jobs",
                    files={"file": ("part.gcode", text.encode())},
                    data={"copies": str(copies)},
                    headers={"Idempotency-Key": f'"{key}"'},
                    timeout=10,
                )
            except requests.RequestException as exc:
                if not refused(exc):  # sent, and the fleet died (or stalled) before it answered
                    with ledger.lock:
                        ledger.resent += 1
                give_up.wait(0.05)  # a fleet down or starting: send it again in a moment
                continue
            with ledger.lock:
                if response.status_code == 201:
                    ledger.answered[key] = [job["id"] for job in response.json()["jobs"]]
                else:
                    ledger.refused.append(f"{response.status_code} {response.text[:200]}")
            break
        stop.wait(rng.uniform(0.1, 0.5))


def bed_clearer(fleet: FleetProcess, token: str, stop: threading.Event) -> None:
    """The lab's manager, confirming every plate the moment it waits to be cleared."""
    while not stop.is_set():
        try:
            printers = fleet.api(token, "GET", "/printers", timeout=5).json()["printers"]
            for printer in printers:
                if printer["state"] == "awaiting_bed_clear":
                    fleet.api(token, "POST", f"/printers/{printer['id']}/bed-cleared", timeout=5)
        except (requests.RequestException, ValueError, KeyError):
            pass
        stop.wait(0.1)


def job_states(fleet: FleetProcess, token: str) -> dict[int, str]:
    """Every job's state, page after page (a list answers at most one page)."""
    states: dict[int, str] = {}
    cursor = None
    while True:
        params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        page = fleet.api(token, "GET", "/jobs", params=params).json()
        states.update((job["id"], job["state"]) for job in page["jobs"])
        cursor = page.get("next_cursor")
        if not cursor:
            return states


def half_way(fleet: FleetProcess, token: str, printers: list[SimPrinter]) -> str:
    """The jobs not settled, each with its history and where the printers say it started."""
    starts = starts_by_job(printers)
    lines = []
    for job_id, state in sorted(job_states(fleet, token).items()):
        if state in TRANSIENT:
            history = fleet.api(token, "GET", f"/jobs/{job_id}").json()["history"]
            steps = " > ".join(f"{h['to']} ({h['reason']})" for h in history)
            lines.append(f"job {job_id} {state}, started on {starts.get(job_id, [])}: {steps}")
    printers_now = fleet.api(token, "GET", "/printers").json()["printers"]
    lines += [f"printer {p['id']}: {p['state']} job {p.get('current_job_id')}" for p in printers_now]
    return "\n".join(lines[:40])


def test_fifty_kills_lose_no_job_print_none_twice_and_keep_the_store_whole(
    tmp_path: Path, mosquitto: TestBroker, make_fleet: MakeFleet
) -> None:
    kill_soak(make_fleet, tmp_path, KILLS, max_submits=MAX_SUBMITS, mqtt_url=mosquitto.url)


def test_kills_that_take_the_managed_broker_down_too_lose_nothing(
    tmp_path: Path, make_fleet: MakeFleet
) -> None:
    """The default setup: each kill also stops the fleet's own Mosquitto (it dies with its fleet), so
    printers lose their broker too, and what was on its way lives in its saved sessions and in the
    nodes' own queues."""
    kill_soak(make_fleet, tmp_path, 10, max_submits=40, mqtt_url=None)


def kill_soak(
    make_fleet: MakeFleet, tmp_path: Path, kills: int, *, max_submits: int, mqtt_url: str | None
) -> None:
    """Kill the fleet ``kills`` times under load, restart it, let it settle, and check everything."""
    seed = int(os.environ.get("CROWDFAB_FAULT_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"fault seed: {seed} (CROWDFAB_FAULT_SEED={seed} replays these kill moments)")
    rng = random.Random(seed)
    began = time.monotonic()

    data_dir = tmp_path / "fleet"
    tokens = prepare_data_dir(data_dir, {"ada": Role.MANAGER, "alice": Role.MEMBER, "bob": Role.MEMBER})
    fleet = make_fleet(data_dir, mqtt_url=mqtt_url)
    fleet.start()
    printers: list[SimPrinter] = []
    ledger = Ledger(limit=max_submits)
    stop = threading.Event()
    give_up = threading.Event()  # submitters stop resending (only when the test fails)
    threads = [
        threading.Thread(
            target=submitter, args=(fleet, tokens["alice"], seed, ledger, stop, give_up), daemon=True
        ),
        threading.Thread(
            target=submitter, args=(fleet, tokens["bob"], seed + 1, ledger, stop, give_up), daemon=True
        ),
        threading.Thread(target=bed_clearer, args=(fleet, tokens["ada"], stop), daemon=True),
    ]
    try:
        printers += enroll_printers(fleet, PRINTERS, tmp_path / "printers")
        for thread in threads:
            thread.start()
        during_start = 0
        for n in range(kills):
            if n:
                if rng.random() < 0.15:
                    # Killed while it starts: opening the store, recovering dispatches, connecting.
                    during_start += 1
                    fleet.spawn()
                    time.sleep(rng.uniform(0.05, 0.4))
                    fleet.kill()
                    fleet.start()
                else:
                    fleet.start()
            time.sleep(rng.uniform(0.0, 0.9))
            fleet.kill()
        killed_at = time.monotonic()

        fleet.start()
        stop.set()
        for thread in threads:
            thread.join(60)  # a submission whose answer was lost is sent again to the running fleet
        assert not any(thread.is_alive() for thread in threads), "a submitter got no answer in 60 s"
        # Settled: every job is done or waits in the queue; nothing is half-way on a printer.
        polled_at = [0.0]

        def settled() -> bool:
            # The moment the poll began: a job still queued then may be given out before it answers.
            polled_at[0] = time.time()
            return not TRANSIENT & set(job_states(fleet, tokens["ada"]).values())

        try:
            wait_until(
                settled,
                60,
                "every job to be done or queued",
                interval=0.2,
            )
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; still half-way:\n{half_way(fleet, tokens['ada'], printers)}"
            ) from None
        settled_at = time.monotonic()
        settled_wall = polled_at[0]
        states = job_states(fleet, tokens["ada"])
    finally:
        stop.set()
        give_up.set()
        for sim in printers:
            sim.node.close(2)
        fleet.stop()

    report = check_store(data_dir)
    starts = starts_by_job(printers)
    runs = len(fleet.start_times)
    print(
        f"{kills} kills ({during_start} during start-up) in {killed_at - began:.1f} s; settled in "
        f"{settled_at - killed_at:.1f} s; fleet start to first answer: median "
        f"{sorted(fleet.start_times)[runs // 2]:.2f} s, max {max(fleet.start_times):.2f} s "
        f"over {runs} starts; "
        f"{len(ledger.answered)} submissions answered, {ledger.resent} sent again after a lost answer, "
        f"{len(report.jobs)} jobs stored, {sum(s == 'done' for s in states.values())} done, "
        f"{sum(len(v) for v in starts.values())} prints started; "
        f"{len(report.unreferenced_blobs)} unreferenced blobs"
    )

    assert not ledger.refused, f"submissions refused: {ledger.refused[:5]}"
    # Every submission exists exactly once: each was answered, with its copies as jobs of its own,
    # and the store holds those jobs and no others (a lost answer's retry queued nothing twice).
    unanswered = sorted(set(ledger.copies) - set(ledger.answered))
    assert not unanswered, f"submissions never answered: {unanswered}"
    wrong = {k: ids for k, ids in ledger.answered.items() if len(ids) != ledger.copies[k]}
    assert not wrong, f"submissions answered with other than their copies: {wrong}"
    answered = [job_id for ids in ledger.answered.values() for job_id in ids]
    assert len(answered) == len(set(answered)), "two submissions were answered with the same job"
    lost = sorted(set(answered) - set(report.jobs))
    assert not lost, f"jobs answered with 201 but missing: {lost}"
    extra = sorted(set(report.jobs) - set(answered))
    assert not extra, f"jobs stored that no submission was answered with (queued twice): {extra}"

    twice = {job_id: who for job_id, who in starts.items() if len(who) > 1}
    assert not twice, f"jobs started more than once (job: printers): {twice}"
    assert not report.problems, "\n".join(report.problems[:20])
    assert not report.staging_files, f"staging files left behind: {report.staging_files}"
    # An upload stored before its job was written is the same blob its retry's jobs refer to.
    assert not report.unreferenced_blobs, f"stored files no job refers to: {report.unreferenced_blobs}"

    given_out_after = assigned_since(data_dir, settled_wall)
    for job_id, job in report.jobs.items():
        started_on = starts.get(job_id, [])
        if job["state"] in ("assigned", "printing", "unknown") and job_id in given_out_after:
            # Queued when everything had settled, then given to a printer freed meanwhile by the fleet
            # that stayed up: assigned, printing, or unknown once the printers shut down before the
            # fleet. No kill's doing; it still never starts twice (checked above).
            assert len(started_on) <= 1, f"job {job_id} started on {started_on}"
            continue
        assert job["state"] in ("done", "queued"), f"job {job_id} ended {job['state']}"
        if job["state"] == "done":
            assert started_on == [job["printer_id"]], (
                f"job {job_id} is done on {job['printer_id']}: {started_on}"
            )
        else:
            assert not started_on, f"job {job_id} is queued but was started on {started_on}"
    assert any(state == "done" for state in states.values()), "no job was printed at all"


def test_a_start_removes_the_uploads_a_killed_fleet_left_half_written(
    tmp_path: Path, mosquitto: TestBroker, make_fleet: MakeFleet
) -> None:
    data_dir = tmp_path / "fleet"
    prepare_data_dir(data_dir, {"ada": Role.MANAGER})
    staging = data_dir / "files" / "tmp"
    staging.mkdir(parents=True)
    # What a fleet killed mid-upload leaves: a staging file nobody holds any more.
    (staging / "upload-abandoned").write_bytes(b"G28\nG1 X10")
    # And an upload another fleet process on the same data dir is writing right now: it holds the lock.
    live = BlobStore(data_dir / "files")
    with live.staging(max_bytes=1024) as staged:
        staged.write(b"G28\n")
        fleet = make_fleet(data_dir, mqtt_url=mosquitto.url)
        fleet.start()
        try:
            assert sorted(p.name for p in staging.iterdir()) == [staged.path.name]
            assert "removed 1 unfinished upload(s) left by an earlier run" in fleet.log_tail()
            staged.commit()  # the other process finishes its upload undisturbed
        finally:
            fleet.stop()
    assert list(staging.iterdir()) == []


# -- the managed broker when its fleet dies --------------------------------------------------------


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for a parent to reap it has stopped running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def broker_pid(data_dir: Path) -> int:
    return int((data_dir / "mosquitto" / "mosquitto.pid").read_text())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_killed_fleet_takes_its_managed_broker_with_it(tmp_path: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(tmp_path / "fleet")
    fleet.start()
    try:
        wait_until(lambda: port_open(fleet.mqtt_port), 10, "the managed broker's port")
        pid = broker_pid(fleet.data_dir)
        assert alive(pid)
        fleet.kill()
        wait_until(lambda: not alive(pid), 5, f"the managed broker (pid {pid}) to stop with its fleet")
        # Its port is free again: the next start brings up a broker of its own at once.
        fleet.start()
        wait_until(lambda: port_open(fleet.mqtt_port), 10, "the new broker's port")
        assert broker_pid(fleet.data_dir) != pid
    finally:
        fleet.stop()


def test_a_broker_an_earlier_run_left_behind_is_taken_over(tmp_path: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(tmp_path / "fleet")
    fleet.start()
    fleet.stop()
    conf = fleet.data_dir / "mosquitto" / "mosquitto.conf"
    # A broker that outlived its fleet (on a system without the parent-death signal, say).
    stale = subprocess.Popen([MOSQUITTO, "-c", str(conf)], start_new_session=True)
    try:
        (fleet.data_dir / "mosquitto" / "mosquitto.pid").write_text(f"{stale.pid}\n")
        wait_until(lambda: port_open(fleet.mqtt_port), 10, "the stale broker's port")
        fleet.start()
        assert stale.wait(10) == 0, "the stale broker was not stopped cleanly"
        wait_until(lambda: port_open(fleet.mqtt_port), 10, "the fleet's own broker")
        assert alive(broker_pid(fleet.data_dir)) and broker_pid(fleet.data_dir) != stale.pid
        assert "left running by an earlier run" in fleet.log_tail()
    finally:
        fleet.stop()
        if stale.poll() is None:
            stale.kill()
            stale.wait()


def test_a_broker_port_another_program_holds_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    fleet = FleetProcess(tmp_path / "fleet")
    with socket.socket() as other:
        other.bind(("127.0.0.1", fleet.mqtt_port))
        other.listen()
        result = subprocess.run(fleet.args(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert f"port {fleet.mqtt_port} on 127.0.0.1 is already in use" in result.stderr


def assigned_since(data_dir: Path, since: float) -> set[int]:
    """The jobs given to a printer at ``since`` (wall clock) or later, whatever became of them after."""
    db = sqlite3.connect(data_dir / "fleet.db")
    try:
        rows = db.execute(
            "SELECT DISTINCT job_id FROM job_events WHERE to_state = 'assigned' AND at >= ?", (since,)
        ).fetchall()
    finally:
        db.close()
    return {job_id for (job_id,) in rows}
