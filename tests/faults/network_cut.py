"""A printer's network cut in mid-print, for ``test_network_cut.py`` (D of about half a minute) and
``bench/soak_network_cut.py`` (D of five minutes): one scenario, two lengths.

The printer ("cut") is a ``crowdfab-agent run`` on a simulated firmware that reaches both the broker
and the fleet's HTTP through :class:`tests.netproxy.NetProxy` links. A second printer ("bystander"),
idle and able to take the same job, is connected directly: a fleet that gave the cut printer's job
away would give it to this one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from fleet import protocol as p
from fleet.gcode.generate import generate_box
from fleet.node.enroll import enroll
from tests.brokers import TestBroker, wait_until
from tests.e2e.agents import SimulatedAgent, slow_part
from tests.e2e.test_fleet_octoprint import RunningFleet, job_state, submit
from tests.netproxy import NetProxy
from tests.octoprint_server import OctoPrintServer

TAG = "network-cut-job"


@dataclass
class CutReport:
    """What happened, with times in seconds from the cut (``*_after_cut``) or from the restore."""

    cut_s: float
    keepalive_s: int
    print_s: float
    offline_after_cut: Optional[float] = None
    printer_done_after_cut: Optional[float] = None
    settled_after_restore: Optional[float] = None
    bed_clear_after_restore: Optional[float] = None
    history: list[str] = field(default_factory=list)
    printed: dict[str, int] = field(default_factory=dict)
    dispatches: int = 0
    bystander_states: set[str] = field(default_factory=set)
    reconnect_attempts_during_cut: int = 0
    #: With an OctoPrint printer cut at the same time: what happened to it, in words.
    octoprint: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"cut: {self.cut_s:.0f} s (MQTT keepalive {self.keepalive_s} s), print ~{self.print_s:.0f} s",
            f"fleet marked the printer offline {self.offline_after_cut:.1f} s after the cut",
            f"the print finished on the printer {self.printer_done_after_cut:.1f} s after the cut",
            f"the node tried to reconnect {self.reconnect_attempts_during_cut} times during the cut",
            f"the fleet settled the job {self.settled_after_restore:.1f} s after the link came back",
            f"the printer awaited its bed clear {self.bed_clear_after_restore:.1f} s after the link was back",
            f"job history: {' -> '.join(self.history)}",
            f"times printed, by printer: {self.printed}; dispatch commands sent: {self.dispatches}",
            f"bystander printer states seen during the cut: {sorted(self.bystander_states)}",
            *(f"OctoPrint: {line}" for line in self.octoprint),
        ]


def journal_phase(agent: SimulatedAgent) -> Optional[str]:
    """The phase of the fleet job in the agent's journal (read only: the agent owns the file)."""
    try:
        job = json.loads((agent.data_dir / "journal.json").read_text())["job"]
    except (FileNotFoundError, ValueError):
        return None
    return None if job is None else str(job["phase"])


class CutOctoPrint:
    """A real OctoPrint with the plugin, enrolled from here so that it reaches the broker through a
    proxy; it prints a file that dwells on OctoPrint's virtual printer for ``print_s`` seconds."""

    TAG = "network-cut-octoprint"

    def __init__(
        self, fleet: RunningFleet, code: str, link: NetProxy, keepalive_s: int, print_s: float
    ) -> None:
        caps = {"volume": {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 180, "max_y": 180, "max_z": 180}}
        enrollment = enroll(fleet.url, code, "Octo", {**caps, "nozzle_diameter": 0.4, "material": "PLA"})
        self.printer_id = enrollment.printer_id
        m = enrollment.mqtt
        self.server = OctoPrintServer(
            {
                "fleet_url": fleet.url,
                "printer_id": enrollment.printer_id,
                "printer_token": enrollment.token,
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": link.port,
                    "username": m.username,
                    "password": m.password,
                },
                **caps,
                "material": "PLA",
                "nozzle_diameter": 0.4,
                "mqtt_keepalive_s": keepalive_s,
            }
        )
        dwell = max(1, round(print_s / 2))
        self.part = generate_box(
            10, 10, 0.6, origin=(60.0, 60.0), extra_lines={30: f"G4 S{dwell}", 60: f"G4 S{dwell}"}
        )

    def prints(self) -> dict[str, int]:
        """OctoPrint's own count of successful and failed prints of the fleet's files."""
        admin, url = self.server.admin, self.server.url
        files = admin.get(f"{url}/api/files/local/crowdfab", timeout=10).json().get("children", [])
        counts = {"success": 0, "failure": 0}
        for f in files:
            for key in counts:
                counts[key] += int((f.get("prints") or {}).get(key, 0))
        return counts


def run_network_cut(
    work: Path, *, cut_s: float, keepalive_s: int = 5, print_s: float = 14.0, octoprint: bool = False
) -> CutReport:
    """Cut the printer's links ~3 s into a print of ~``print_s`` seconds, for ``cut_s``; then restore.

    With ``octoprint``, a real OctoPrint printing a job of its own is cut off at the same moment.
    Fails (AssertionError) as soon as something goes wrong; returns the timings otherwise.
    """
    report = CutReport(cut_s, keepalive_s, print_s)
    broker = TestBroker(work / "broker")
    broker.start()
    mqtt_link = NetProxy("127.0.0.1", broker.port).start()
    octo_link = NetProxy("127.0.0.1", broker.port).start()
    octo: Optional[CutOctoPrint] = None
    http_link = NetProxy().start()  # aimed at the fleet once its port is known
    try:
        fleet = RunningFleet(work / "fleet", mqtt_url=broker.url, extra_args=("--public-url", http_link.url))
    except BaseException:  # the fleet never came up: close what was started for it
        for link in (octo_link, mqtt_link, http_link):
            link.close()
        broker.close()
        raise
    http_link.aim("127.0.0.1", fleet.port)
    cut = SimulatedAgent(work / "cut", "Cut", keepalive_s=keepalive_s)
    bystander = SimulatedAgent(work / "bystander", "Bystander", keepalive_s=keepalive_s)
    try:
        manager = fleet.cli("member", "add", "ada", "--role", "manager")["token"]
        watch = broker.sub([f"{p.PRINTERS}/+/availability", f"{p.PRINTERS}/+/cmd"])

        def printers() -> dict[str, dict]:
            return {pr["id"]: pr for pr in fleet.api(manager, "GET", "/printers").json()["printers"]}

        octo_job = None
        if octoprint:
            # First, while it is the only printer, so its job (timed for its printer) goes to it.
            octo = CutOctoPrint(fleet, fleet.cli("enroll-code")["code"], octo_link, keepalive_s, print_s + 15)
            octo.server.start()
            octo_id = octo.printer_id
            wait_until(
                lambda: printers().get(octo_id, {}).get("state") == "idle", 60, "OctoPrint to be idle", 0.2
            )
            octo_job = submit(fleet, manager, octo.part, "octo.gcode")
            wait_until(
                lambda: job_state(fleet, manager, octo_job) == "printing", 60, "OctoPrint to print", 0.2
            )
        cut_id = cut.enroll(fleet, fleet.cli("enroll-code")["code"], mqtt_port=mqtt_link.port)
        cut.start()

        wait_until(
            lambda: printers().get(cut_id, {}).get("state") == "idle", 60, "the printer to be idle", 0.2
        )
        job_id = submit(fleet, manager, slow_part(TAG, print_s), "long.gcode")
        wait_until(lambda: job_state(fleet, manager, job_id) == "printing", 60, "the print to start", 0.2)
        # Only now the bystander joins: it is idle, fits the job, and is the one printer it could go to.
        bystander_id = bystander.enroll(fleet, fleet.cli("enroll-code")["code"])
        bystander.start()
        wait_until(
            lambda: printers().get(bystander_id, {}).get("state") == "idle",
            60,
            "the bystander to be idle",
            0.2,
        )
        wait_until(lambda: cut.firmware.executed.count(f"M117 {TAG}") == 1, 30, "the file to run", 0.2)

        accepted_before = mqtt_link.accepted
        mqtt_link.cut()
        http_link.cut()
        octo_link.cut()
        cut_at = time.monotonic()
        octo_seen: dict[str, float] = {}

        def during_cut() -> bool:
            now = time.monotonic() - cut_at
            states = printers()
            report.bystander_states.add(states[bystander_id]["state"])
            assert states[bystander_id]["current_job_id"] is None, f"job given to the bystander: {states}"
            if report.offline_after_cut is None and states[cut_id]["state"] == "offline":
                report.offline_after_cut = now
                assert job_state(fleet, manager, job_id) == "unknown", "an offline printer's job is unknown"
            if report.printer_done_after_cut is None and journal_phase(cut) == "done":
                report.printer_done_after_cut = now
            if octo is not None and octo_job is not None:
                if "offline" not in octo_seen and states[octo.printer_id]["state"] == "offline":
                    octo_seen["offline"] = now
                    assert job_state(fleet, manager, octo_job) == "unknown"
                if "done" not in octo_seen and octo.prints()["success"] == 1:
                    octo_seen["done"] = now
            return now >= cut_s

        wait_until(during_cut, cut_s + 30, f"{cut_s:g} s of cut link", 0.5)
        assert report.offline_after_cut is not None, "the fleet never marked the cut printer offline"
        # The broker gives up on a client 1.5 keepalives after its last packet, checking now and then.
        assert report.offline_after_cut <= keepalive_s * 2 + 5, (
            f"the fleet marked the printer offline {report.offline_after_cut:.1f} s after the cut, "
            f"more than twice its keepalive of {keepalive_s} s"
        )
        assert report.printer_done_after_cut is not None, "the print did not finish during the cut"
        assert job_state(fleet, manager, job_id) == "unknown"
        report.reconnect_attempts_during_cut = mqtt_link.accepted - accepted_before

        if octo is not None:
            assert "offline" in octo_seen and "done" in octo_seen, f"OctoPrint during the cut: {octo_seen}"
            report.octoprint.append(
                f"offline {octo_seen['offline']:.1f} s, done printing {octo_seen['done']:.1f} s after the cut"
            )

        mqtt_link.restore()
        http_link.restore()
        octo_link.restore()
        restored = time.monotonic()
        wait_until(lambda: job_state(fleet, manager, job_id) == "done", 60, "the job to be settled done", 0.2)
        report.settled_after_restore = time.monotonic() - restored
        if octo is not None and octo_job is not None:
            wait_until(
                lambda: job_state(fleet, manager, octo_job) == "done", 60, "OctoPrint's job to be done", 0.2
            )
            settled = time.monotonic() - restored
            wait_until(
                lambda: printers()[octo.printer_id]["state"] == "awaiting_bed_clear",
                30,
                "OctoPrint's bed",
                0.2,
            )
            history = [h["to"] for h in fleet.api(manager, "GET", f"/jobs/{octo_job}").json()["history"]]
            assert history.count("done") == 1 and "queued" not in history[2:], history
            assert octo.prints() == {"success": 1, "failure": 0}, octo.prints()
            report.octoprint.append(f"job settled done {settled:.1f} s after the link was back")
            report.octoprint.append(f"job history: {' -> '.join(history)}; printed once")
        wait_until(
            lambda: printers()[cut_id]["state"] == "awaiting_bed_clear",
            30,
            "the printer to await a bed clear",
            0.2,
        )
        report.bed_clear_after_restore = time.monotonic() - restored

        report.history = [h["to"] for h in fleet.api(manager, "GET", f"/jobs/{job_id}").json()["history"]]
        report.printed = {cut_id: cut.printed(TAG), bystander_id: bystander.printed(TAG)}
        report.dispatches = len(
            {
                c.id
                for t, m in watch.messages
                if t.endswith("/cmd") and (c := p.decode_command(m)).type is p.CommandType.DISPATCH
            }
        )
        assert report.history[:4] == ["submitted", "queued", "assigned", "printing"], report.history
        assert report.history.count("done") == 1 and report.history[-1] == "done", report.history
        assert "queued" not in report.history[2:], f"the job went back to the queue: {report.history}"
        assert report.printed == {cut_id: 1, bystander_id: 0}, report.printed
        jobs = 1 if octo is None else 2
        assert report.dispatches == jobs, f"{report.dispatches} dispatch commands for {jobs} jobs"
        assert printers()[bystander_id]["state"] == "idle"
        return report
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nfleet log:\n{fleet.log_text()}\ncut agent log:\n{cut.log_text()}"
        ) from None
    finally:
        if octo is not None:
            octo.server.stop()
        cut.stop()
        bystander.stop()
        octo_link.close()
        fleet.stop()
        mqtt_link.close()
        http_link.close()
        broker.close()
