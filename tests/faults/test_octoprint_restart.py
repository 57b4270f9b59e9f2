"""OctoPrint restarted while it downloads a dispatched job: no half file is printed.

A real fleet (its managed Mosquitto) serves job files through a throttled :class:`tests.netproxy.NetProxy`,
so the download of a job takes seconds; a real OctoPrint with the plugin is stopped in the middle of it,
first killed (SIGKILL), then shut down cleanly, and started again on the same base directory.

What the design promises, and this test holds it to: the node accepts a dispatch before downloading it
and keeps the command in its journal until the file is on the printer. The download goes to a temporary
``.part`` file outside OctoPrint's storage and reaches the printer only once its size and sha256 match
what the fleet announced. A node that stops in the middle leaves only that ``.part``, which it removes
when it starts again, and then fetches the job again and prints it: once, and the whole file. The fleet
meanwhile holds the job for that printer (``unknown`` while the printer is away), never giving it to
another printer.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

from fleet.gcode.generate import generate_box
from tests.brokers import wait_until
from tests.e2e.test_fleet_octoprint import RunningFleet, job_state, octoprint_for, submit
from tests.netproxy import NetProxy
from tests.octoprint_server import OctoPrintServer

#: Bytes a second the job file trickles at: the ~250 kB file takes about ten seconds.
SLOW = 25_000


def big_part(tag: str) -> str:
    """A small box padded with comments to ~250 kB: slow to fetch through the proxy, quick to print."""
    box = generate_box(10, 10, 0.4, origin=(50.0, 50.0))
    padding = "".join(f"; {tag} padding line {i:05d} " + "-" * 80 + "\n" for i in range(2500))
    return box + padding


def downloads(octoprint: OctoPrintServer) -> Path:
    return octoprint.basedir / "data" / "crowdfab" / "downloads"


def fleet_files(octoprint: OctoPrintServer) -> list[Path]:
    """What sits in OctoPrint's own storage under the fleet's folder (what OctoPrint could print)."""
    folder = octoprint.basedir / "uploads" / "crowdfab"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def partial_bytes(octoprint: OctoPrintServer) -> int:
    return (
        sum(p.stat().st_size for p in downloads(octoprint).glob("*.part"))
        if downloads(octoprint).is_dir()
        else 0
    )


def printer(fleet: RunningFleet, token: str) -> dict:
    """The fleet's one printer (an empty record until it has enrolled)."""
    printers = fleet.api(token, "GET", "/printers").json()["printers"]
    assert len(printers) <= 1, printers
    return printers[0] if printers else {"state": None}


def stop_mid_download(
    fleet: RunningFleet,
    octoprint: OctoPrintServer,
    proxy: NetProxy,
    token: str,
    job_id: int,
    how: signal.Signals,
) -> None:
    """Stop OctoPrint once part of the job's file has arrived; check nothing of it is in its storage."""
    assert octoprint.process is not None
    wait_until(lambda: partial_bytes(octoprint) >= 60_000, 60, "the download to be under way", 0.05)
    if how is signal.SIGKILL:
        os.killpg(octoprint.process.pid, signal.SIGKILL)
    else:
        octoprint.process.send_signal(how)
    octoprint.process.wait(30)
    left = partial_bytes(octoprint)
    size = fleet.api(token, "GET", f"/jobs/{job_id}").json()["size_bytes"]
    assert 0 < left < size, f"{left} of {size} bytes were fetched when OctoPrint stopped"
    stored = [p.name for p in fleet_files(octoprint)]
    assert not any(name.startswith(f"{job_id}-") for name in stored), (
        f"a half file reached OctoPrint: {stored}"
    )
    wait_until(
        lambda: printer(fleet, token)["state"] == "offline", 20, "the fleet to see the printer go", 0.2
    )
    assert job_state(fleet, token, job_id) == "unknown"  # held for this printer, not given to another


def check_printed_once_and_whole(octoprint: OctoPrintServer, job_id: int, text: str) -> None:
    (stored,) = [p for p in fleet_files(octoprint) if p.name.startswith(f"{job_id}-")]
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == hashlib.sha256(text.encode()).hexdigest()
    url = f"{octoprint.url}/api/files/local/crowdfab/{stored.name}"
    prints = lambda: octoprint.admin.get(url, timeout=10).json().get("prints") or {}  # noqa: E731
    # OctoPrint records the print from its own PrintDone listener, which may come after the fleet heard.
    wait_until(lambda: prints().get("success") == 1, 30, "OctoPrint to record the print")
    assert prints().get("failure", 0) == 0, prints()
    assert list(downloads(octoprint).glob("*.part")) == [], "a partial download was left behind"


def test_octoprint_stopped_mid_download_prints_the_job_once_and_whole_after_it_restarts(tmp_path):
    proxy = NetProxy().start()
    fleet = RunningFleet(tmp_path / "fleet", extra_args=("--public-url", proxy.url))
    proxy.aim("127.0.0.1", fleet.port)
    octoprint = None
    try:
        manager = fleet.cli("member", "add", "ada", "--role", "manager")["token"]
        octoprint = octoprint_for(fleet, fleet.cli("enroll-code")["code"])
        wait_until(lambda: printer(fleet, manager)["state"] == "idle", 60, "the printer to be idle", 0.2)
        printer_id = printer(fleet, manager)["id"]

        for how in (signal.SIGKILL, signal.SIGTERM):
            text = big_part(how.name)
            proxy.throttle(SLOW)
            job_id = submit(fleet, manager, text, f"big-{how.name}.gcode")
            started = time.monotonic()
            stop_mid_download(fleet, octoprint, proxy, manager, job_id, how)
            proxy.throttle(None)
            octoprint.launch()
            wait_until(lambda j=job_id: job_state(fleet, manager, j) == "done", 90, "the job to be done", 0.2)
            print(f"{how.name}: job done {time.monotonic() - started:.1f} s after its submission")

            history = [h["to"] for h in fleet.api(manager, "GET", f"/jobs/{job_id}").json()["history"]]
            assert history[:3] == ["submitted", "queued", "assigned"], history
            assert history.count("done") == 1 and history[-1] == "done", history
            assert "queued" not in history[2:], f"the job went back to the queue: {history}"
            check_printed_once_and_whole(octoprint, job_id, text)
            assert printer(fleet, manager)["state"] == "awaiting_bed_clear"
            assert fleet.api(manager, "POST", f"/printers/{printer_id}/bed-cleared").status_code == 200
    except AssertionError as exc:
        node_log = octoprint.log_text()[-3000:] if octoprint is not None else ""
        raise AssertionError(f"{exc}\nfleet log:\n{fleet.log_text()}\nOctoPrint log:\n{node_log}") from None
    finally:
        if octoprint is not None:
            octoprint.stop()
        fleet.stop()
        proxy.close()
