"""A USB printer unplugged mid-print: the job fails with a clear message, and when a device appears again
at the same stable path (as udev's /dev/serial/by-id links do) the running agent opens it by itself and
the fleet sees the printer available again."""

from __future__ import annotations

import threading
from pathlib import Path

from fleet.agent import Agent, AgentConfig
from fleet.gcode.generate import generate_box
from fleet.geometry import Box
from fleet.protocol import Capabilities
from fleet.serial.streamer import StreamerConfig
from tests.brokers import wait_until
from tests.e2e.test_fleet_octoprint import RunningFleet, job_state, submit

FAST = StreamerConfig(ok_timeout_s=5.0, connect_timeout_s=5.0, temperature_interval_s=0.2)


def printer_state(fleet: RunningFleet, token: str) -> str:
    printers = fleet.api(token, "GET", "/printers").json()["printers"]
    return printers[0]["state"] if printers else "none"


def test_an_unplugged_printer_fails_its_job_and_is_reopened_when_it_returns(tmp_path: Path, simulator):
    by_id = tmp_path / "serial" / "by-id"
    by_id.mkdir(parents=True)
    link = by_id / "usb-CrowdFab_Simulated_Printer_0001-if00"
    first, device = simulator(speedup=5.0)
    link.symlink_to(device)
    fleet = RunningFleet(tmp_path / "fleet")
    stop = threading.Event()
    runner = None
    agent = None
    try:
        manager = fleet.cli("member", "add", "ada", "--role", "manager")["token"]
        config = AgentConfig(
            port=str(link),
            baud=115200,
            data_dir=tmp_path / "agent",
            fleet_url=fleet.url,
            enroll_code=fleet.cli("enroll-code")["code"],
            name="Unplugged MINI",
            capabilities=Capabilities(Box(0.0, 0.0, 0.0, 180.0, 180.0, 180.0), 0.4, "PLA"),
            keepalive_s=5,
            reconnect_interval_s=0.2,
            streamer=FAST,
        )
        agent = Agent(config)
        agent.start()
        runner = threading.Thread(target=agent.run, args=(stop,), name="agent-run", daemon=True)
        runner.start()
        wait_until(lambda: printer_state(fleet, manager) == "idle", 30, "the printer to be idle")

        part = generate_box(60, 60, 4.0, origin=(30.0, 30.0), temperatures=(0, 0))
        job_id = submit(fleet, manager, part, "long.gcode")
        assert first.wait_executed(20, 30), "the print did not start"
        assert job_state(fleet, manager, job_id) == "printing"

        # Unplugged: the device and its by-id link vanish together.
        first.stop()
        link.unlink()
        wait_until(lambda: job_state(fleet, manager, job_id) == "failed", 30, "the job to fail")
        stored = tmp_path / "agent" / "crowdfab" / f"{job_id}-long.gcode"
        result = agent.printer.last_print(stored)
        assert result is not None and "lost the connection" in result.message, result
        # The member reads why in the job's history, in the streamer's words.
        history = fleet.api(manager, "GET", f"/jobs/{job_id}").json()["history"]
        assert history[-1]["to"] == "failed" and "lost the connection" in history[-1]["reason"], history
        assert not agent.printer.connected
        wait_until(lambda: printer_state(fleet, manager) == "offline", 30, "the fleet to see it unplugged")

        # Plugged back in: a new device node behind the same link; nobody restarts the agent.
        second, device = simulator(speedup=float("inf"))
        link.symlink_to(device)
        wait_until(lambda: agent.printer.connected, 30, "the agent to reopen the printer")
        assert agent.printer.snapshot().operational and not agent.printer.snapshot().busy
        # The failed print may still be on the plate: back, it waits for someone to clear it, then is idle.
        wait_until(
            lambda: printer_state(fleet, manager) == "awaiting_bed_clear", 30, "the printer to be back"
        )
        cleared = fleet.api(manager, "POST", "/printers/unplugged-mini/bed-cleared")
        assert cleared.status_code == 200, cleared.text
        wait_until(lambda: printer_state(fleet, manager) == "idle", 30, "the printer to be idle again")
        # And it prints on the device that came back.
        again = submit(fleet, manager, generate_box(10, 10, 0.6, origin=(40.0, 40.0)), "cube.gcode")
        wait_until(lambda: job_state(fleet, manager, again) == "done", 60, "the next job to be done")
        assert "G28" in second.executed
    finally:
        stop.set()
        if runner is not None:
            runner.join(15)
        elif agent is not None:
            agent.close()
        fleet.stop()
