"""Headless agents for end-to-end and fault tests: ``crowdfab-agent run`` on a simulated firmware.

The firmware runs in the test's process (a real pty, like a USB printer); the agent is a real
subprocess. An agent can be enrolled from here first, so that its saved broker address points through
a :class:`tests.netproxy.NetProxy` (a printer behind a link the test can cut).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

from fleet.agent import save_credentials
from fleet.gcode.generate import generate_box
from fleet.node.enroll import enroll
from fleet.serial.simulator import SimulatedFirmware, SimulatorOptions
from tests.e2e.test_fleet_octoprint import RunningFleet

AGENT = str(Path(sys.executable).parent / "crowdfab-agent")

#: Moves and heating 50 times faster than life: a dwell of ``G4 S50`` takes a second.
SPEEDUP = 50.0


def slow_part(tag: str, seconds: float, *, speedup: float = SPEEDUP) -> str:
    """A small box whose print takes about ``seconds`` (plus ~2 s) on a firmware at ``speedup``.

    Its ``M117 <tag>`` line shows in the firmware's executed commands once per time it was printed.
    """
    dwell = max(1, round(seconds * speedup / 2))
    lines = {5: f"M117 {tag}", 30: f"G4 S{dwell}", 60: f"G4 S{dwell}"}
    return generate_box(10, 10, 0.6, origin=(40.0, 40.0), extra_lines=lines)


class SimulatedAgent:
    """One simulated printer and its ``crowdfab-agent run`` process, its files under ``directory``."""

    def __init__(
        self,
        directory: Path,
        name: str,
        *,
        keepalive_s: int = 5,
        speedup: float = SPEEDUP,
    ) -> None:
        self.dir = directory
        self.data_dir = directory / "data"
        self.name = name
        self.keepalive_s = keepalive_s
        self.firmware = SimulatedFirmware(SimulatorOptions(speedup=speedup))
        self.device = self.firmware.start()
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.printer_id: Optional[str] = None
        directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "agent.log"

    def enroll(
        self,
        fleet: RunningFleet,
        code: str,
        *,
        mqtt_port: Optional[int] = None,
        mqtt_host: Optional[str] = None,
    ) -> str:
        """Enroll from here and save the credentials, with the broker address replaced if given."""
        caps = {"volume": {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 180, "max_y": 180, "max_z": 180}}
        enrollment = enroll(fleet.url, code, self.name, {**caps, "nozzle_diameter": 0.4, "material": "PLA"})
        mqtt = dataclasses.replace(
            enrollment.mqtt,
            port=mqtt_port if mqtt_port is not None else enrollment.mqtt.port,
            host=mqtt_host if mqtt_host is not None else enrollment.mqtt.host,
        )
        save_credentials(self.data_dir, dataclasses.replace(enrollment, mqtt=mqtt))
        self.printer_id = enrollment.printer_id
        return enrollment.printer_id

    def start(self, fleet: Optional[RunningFleet] = None, code: Optional[str] = None) -> SimulatedAgent:
        """Run the agent: with ``fleet`` and ``code`` it enrolls itself, else it uses saved credentials."""
        args = [AGENT, "-v", "run", "--port", self.device, "--data-dir", str(self.data_dir)]
        args += ["--keepalive", str(self.keepalive_s), "--name", self.name]
        if fleet is not None and code is not None:
            args += ["--fleet", fleet.url, "--enroll", code, "--volume", "180,180,180"]
            args += ["--nozzle", "0.4", "--material", "PLA"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def printed(self, tag: str) -> int:
        """How many times the firmware ran the file carrying ``M117 <tag>``."""
        return self.firmware.executed.count(f"M117 {tag}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """Ctrl-C the agent (it says offline and closes), then stop the firmware."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self.firmware.stop()
