"""End to end: a real fleet (managed broker) and ``crowdfab-agent run`` on a simulated firmware."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
from pathlib import Path

from fleet.gcode.generate import generate_box
from tests.brokers import wait_until
from tests.e2e.test_fleet_octoprint import RunningFleet, job_state, submit

AGENT = str(Path(sys.executable).parent / "crowdfab-agent")


def printers(fleet: RunningFleet, token: str) -> list[dict]:
    return fleet.api(token, "GET", "/printers").json()["printers"]


def test_the_agent_enrolls_prints_a_dispatched_job_and_goes_offline_on_ctrl_c(tmp_path, simulator):
    firmware, device = simulator(speedup=float("inf"))
    fleet = RunningFleet(tmp_path / "fleet")
    process = None
    try:
        manager = fleet.cli("member", "add", "ada", "--role", "manager")["token"]
        code = fleet.cli("enroll-code")["code"]
        data_dir = tmp_path / "agent"
        log = (tmp_path / "agent.log").open("wb")
        process = subprocess.Popen(
            [
                AGENT,
                "run",
                "--port",
                device,
                "--fleet",
                fleet.url,
                "--enroll",
                code,
                "--data-dir",
                str(data_dir),
                "--name",
                "Bench MINI",
                "--volume",
                "180,180,180",
                "--nozzle",
                "0.4",
                "--material",
                "PLA",
                "--keepalive",
                "5",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(
            lambda: [p["state"] for p in printers(fleet, manager)] == ["idle"],
            30,
            "the agent's printer to be idle",
        )
        printer = printers(fleet, manager)[0]
        assert printer["id"] == "bench-mini"
        assert printer["volume"]["max_x"] == 180 and printer["material"] == "PLA"
        credentials = data_dir / "credentials.json"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert json.loads(credentials.read_text())["printer_id"] == "bench-mini"

        part = generate_box(10, 10, 0.6, origin=(40.0, 40.0))
        job_id = submit(fleet, manager, part, "cube.gcode")
        wait_until(lambda: job_state(fleet, manager, job_id) == "done", 60, "the job to be done")
        history = [h["to"] for h in fleet.api(manager, "GET", f"/jobs/{job_id}").json()["history"]]
        assert history == ["submitted", "queued", "assigned", "printing", "done"]
        assert (data_dir / "crowdfab" / f"{job_id}-cube.gcode").read_text() == part
        assert "G28" in firmware.executed
        assert printers(fleet, manager)[0]["state"] == "awaiting_bed_clear"

        # Ctrl-C: a clean stop that tells the fleet at once (no waiting for the keepalive).
        process.send_signal(signal.SIGINT)
        assert process.wait(15) == 0
        wait_until(lambda: printers(fleet, manager)[0]["state"] == "offline", 5, "the printer to go offline")

        # Started again it uses the saved credentials (the code is spent) and still holds the plate.
        process = subprocess.Popen(
            [AGENT, "run", "--port", device, "--data-dir", str(data_dir), "--keepalive", "5"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(
            lambda: printers(fleet, manager)[0]["state"] == "awaiting_bed_clear",
            30,
            "the agent to report back",
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(15) == 0
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        fleet.stop()
