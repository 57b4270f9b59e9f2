"""End to end: a real fleet (`crowdfab-fleet serve` with its managed Mosquitto), a real OctoPrint with the
plugin on its virtual printer, and plain MQTT clients watching from outside."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from fleet import protocol as p
from fleet.gcode.generate import generate_box
from tests.brokers import OutsideClients, free_port, wait_until
from tests.octoprint_server import OctoPrintServer
from tests.processes import answers

FLEET = str(Path(sys.executable).parent / "crowdfab-fleet")
VOLUME = {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 200, "max_y": 200, "max_z": 200}


class RunningFleet:
    """``crowdfab-fleet serve`` in a subprocess, on an empty data dir."""

    def __init__(
        self, data_dir: Path, *, mqtt_url: str | None = None, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.mqtt_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [FLEET, "serve", "--data-dir", str(data_dir), "--port", str(self.port)]
        args += ["--mqtt-url", mqtt_url] if mqtt_url else ["--mqtt-port", str(self.mqtt_port)]
        args += extra_args
        self.log = (data_dir.parent / f"fleet-{self.port}.log").open("wb")
        self.process = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until(self._up, 30, "the fleet to answer")
        except BaseException:
            self.stop()  # a fleet that never answered is not left running (nor its broker)
            raise

    def _up(self) -> bool:
        return answers(f"{self.url}/api/v1/health", self.process, "the fleet", self.log_text)

    def log_text(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def cli(self, *args: str) -> dict:
        result = subprocess.run(
            [FLEET, *args, "--data-dir", str(self.data_dir), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def api(self, token: str, method: str, path: str, **kw) -> requests.Response:
        return requests.request(
            method, f"{self.url}/api/v1{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30, **kw
        )

    def fleet_mqtt_login(self) -> tuple[str, str]:
        creds = json.loads((self.data_dir / "fleet-mqtt.json").read_text())
        return creds["username"], creds["password"]

    def __enter__(self) -> RunningFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()


def submit(fleet: RunningFleet, token: str, text: str, name: str = "part.gcode") -> int:
    response = fleet.api(token, "POST", "/jobs", files={"file": (name, io.BytesIO(text.encode()))})
    assert response.status_code == 201, response.text
    return response.json()["jobs"][0]["id"]


def job_state(fleet: RunningFleet, token: str, job_id: int) -> str:
    return fleet.api(token, "GET", f"/jobs/{job_id}").json()["state"]


def octoprint_for(fleet: RunningFleet, code: str, **extra) -> OctoPrintServer:
    settings = {
        "fleet_url": fleet.url,
        "enroll_code": code,
        "volume": VOLUME,
        "material": "PLA",
        "nozzle_diameter": 0.4,
        "mqtt_keepalive_s": 5,
        **extra,
    }
    return OctoPrintServer(settings).start()


def the_printer(fleet: RunningFleet, token: str, state: str) -> dict | None:
    printers = fleet.api(token, "GET", "/printers").json()["printers"]
    return printers[0] if printers and printers[0]["state"] == state else None


@pytest.fixture
def managed_fleet(tmp_path):
    with RunningFleet(tmp_path / "fleet") as fleet:
        yield fleet


def test_a_job_goes_from_member_to_octoprint_and_back_as_done(managed_fleet):
    fleet = managed_fleet
    manager = fleet.cli("member", "add", "ada", "--role", "manager")["token"]
    member = fleet.cli("member", "add", "alice")["token"]
    code = fleet.cli("enroll-code")["code"]
    octoprint = octoprint_for(fleet, code)
    outside = OutsideClients("127.0.0.1", fleet.mqtt_port)
    try:
        # The plugin enrolls with the code and reports in: the printer appears, idle.
        wait_until(lambda: the_printer(fleet, manager, "idle"), 60, "the enrolled printer to report idle")
        printer_id = fleet.api(manager, "GET", "/printers").json()["printers"][0]["id"]

        # A plain MQTT client with the fleet's credentials sees the retained online and status.
        user, password = fleet.fleet_mqtt_login()
        watch = outside.sub(f"{p.PRINTERS}/{printer_id}/#", username=user, password=password)
        watch.wait_for(lambda t, m: t.endswith("/availability") and m == b"online", 10)
        watch.wait_for(
            lambda t, m: t.endswith("/status") and p.decode_status(m).state is p.NodeState.IDLE, 10
        )

        part = generate_box(12, 12, 1.0, origin=(50.0, 50.0))
        job_id = submit(fleet, member, part, "cube.gcode")
        wait_until(lambda: job_state(fleet, member, job_id) == "done", 120, "the job to be done")

        history = [h["to"] for h in fleet.api(member, "GET", f"/jobs/{job_id}").json()["history"]]
        assert history == ["submitted", "queued", "assigned", "printing", "done"]
        assert fleet.api(member, "GET", f"/printers/{printer_id}").json()["state"] == "awaiting_bed_clear"
        watch.wait_for(
            lambda t, m: t.endswith("/status") and p.decode_status(m).state is p.NodeState.PRINTING, 5
        )
        files = octoprint.admin.get(f"{octoprint.url}/api/files/local/crowdfab", timeout=10).json()
        assert [f["name"] for f in files["children"]] == [f"{job_id}-cube.gcode"]

        # The same dispatch delivered again (replayed by an outside client) starts nothing new.
        # Only the printer itself may read its commands: watch them with the plugin's own credentials.
        plugin = yaml.safe_load((octoprint.basedir / "config.yaml").read_text())["plugins"]["crowdfab"][
            "mqtt"
        ]
        commands = outside.sub(
            f"{p.PRINTERS}/{printer_id}/cmd", username=plugin["username"], password=plugin["password"]
        )
        acks = outside.sub(f"{p.PRINTERS}/{printer_id}/ack", username=user, password=password)
        second = submit(fleet, member, part, "cube.gcode")
        assert fleet.api(member, "POST", f"/printers/{printer_id}/bed-cleared").status_code == 200
        topic, dispatch = commands.wait_for(
            lambda t, m: p.decode_command(m).type is p.CommandType.DISPATCH, 30
        )
        command = p.decode_command(dispatch)
        assert command.job_id == second
        wait_until(lambda: job_state(fleet, member, second) == "done", 120, "the second job to be done")
        outside.pub(topic, dispatch, username=user, password=password, qos=1)
        replies = lambda: [a for _, m in acks.messages if (a := p.decode_ack(m)).command_id == command.id]  # noqa: E731
        wait_until(lambda: len(replies()) >= 2, 10, "the node to answer the replayed dispatch")
        assert {a.status for a in replies()} == {p.AckStatus.ACCEPTED}
        # The fleet hears "done" as OctoPrint enters "Finishing" (its end-of-print script still runs);
        # once it is back to Operational, the second file has been printed once and is not printing again.
        current = lambda: octoprint.admin.get(f"{octoprint.url}/api/job", timeout=10).json()  # noqa: E731
        wait_until(lambda: current()["state"] == "Operational", 60, "OctoPrint to finish the second print")
        assert current()["job"]["file"]["name"] == f"{second}-cube.gcode"
        url = f"{octoprint.url}/api/files/local/crowdfab/{second}-cube.gcode"
        prints = lambda: octoprint.admin.get(url, timeout=10).json().get("prints") or {}  # noqa: E731
        wait_until(lambda: prints().get("success") == 1, 30, "OctoPrint to record the second print")
        assert prints().get("failure", 0) == 0, prints()
        assert job_state(fleet, member, second) == "done"

        # A member queues a file from OctoPrint's own storage through the plugin's API.
        upload = octoprint.admin.post(
            f"{octoprint.url}/api/files/local",
            files={"file": ("bracket.gcode", io.BytesIO(part.encode()))},
            timeout=30,
        )
        assert upload.status_code == 201, upload.text
        plugin_api = f"{octoprint.url}/api/plugin/crowdfab"
        queued = octoprint.admin.post(
            plugin_api, json={"command": "queue_file", "path": "bracket.gcode", "token": member}, timeout=30
        )
        assert queued.status_code == 201, queued.text
        mine = fleet.api(member, "GET", "/jobs/mine").json()["jobs"]
        assert [j["filename"] for j in mine if j["state"] == "queued"] == ["bracket.gcode"]
        refused = octoprint.admin.post(
            plugin_api,
            json={"command": "queue_file", "path": "bracket.gcode", "token": "cfm_wrong"},
            timeout=30,
        )
        assert refused.status_code == 401 and "token" in refused.json()["error"]
        assert (
            octoprint.member.post(
                plugin_api,
                json={"command": "queue_file", "path": "bracket.gcode", "token": member},
                timeout=30,
            ).status_code
            == 403
        )

        # Killing OctoPrint (no clean disconnect) makes the broker publish the plugin's will.
        os.killpg(octoprint.process.pid, signal.SIGKILL)
        started = time.monotonic()
        watch.wait_for(lambda t, m: t.endswith("/availability") and m == b"offline", 5 * 1.5 + 3)
        assert time.monotonic() - started <= 5 * 1.5 + 3
        wait_until(
            lambda: the_printer(fleet, manager, "offline"), 10, "the fleet to mark the printer offline"
        )
    finally:
        outside.close()
        octoprint.stop()


def test_a_broker_outage_mid_print_loses_nothing_and_prints_nothing_twice(tmp_path, mosquitto):
    broker = mosquitto
    fleet = RunningFleet(tmp_path / "fleet", mqtt_url=broker.url)
    octoprint = None
    try:
        manager = fleet.cli("member", "add", "ada", "--role", "manager")["token"]
        code = fleet.cli("enroll-code")["code"]
        octoprint = octoprint_for(fleet, code)
        wait_until(lambda: the_printer(fleet, manager, "idle"), 60, "the enrolled printer to report idle")
        printer_id = fleet.api(manager, "GET", "/printers").json()["printers"][0]["id"]
        # A print that takes over 30 s on the virtual printer: it dwells twice.
        part = generate_box(10, 10, 0.6, origin=(50.0, 50.0), extra_lines={30: "G4 S16", 60: "G4 S16"})
        job_id = submit(fleet, manager, part, "slow.gcode")
        wait_until(lambda: job_state(fleet, manager, job_id) == "printing", 60, "the print to start")

        broker.stop()
        outage_started = time.monotonic()
        # The outage itself is the scenario: 20 s without a broker, while OctoPrint keeps printing.
        wait_until(lambda: time.monotonic() - outage_started >= 20, 25, "20 s of broker outage", 0.5)
        assert octoprint.admin.get(f"{octoprint.url}/api/job", timeout=10).json()["state"] == "Printing"
        broker.start()

        watch = broker.sub(f"{p.PRINTERS}/{printer_id}/status")
        watch.wait_for(lambda t, m: True, 15)  # status flows again by itself
        wait_until(lambda: job_state(fleet, manager, job_id) == "done", 90, "the job to be done")
        history = [h["to"] for h in fleet.api(manager, "GET", f"/jobs/{job_id}").json()["history"]]
        # The broker's restart may replay the node's last will before its fresh "online": the fleet then
        # holds the job as "outcome unknown" until the node's status settles it. It is never requeued.
        assert history[:4] == ["submitted", "queued", "assigned", "printing"] and history[-1] == "done"
        assert set(history[4:]) <= {"unknown", "printing", "done"}

        # OctoPrint writes a file's print history from its own PrintDone listener, which may land
        # after the node has told the fleet; wait for it rather than race it.
        def prints() -> dict:
            files = octoprint.admin.get(f"{octoprint.url}/api/files/local/crowdfab", timeout=10).json()
            (printed,) = files["children"]
            return printed.get("prints") or {}

        wait_until(lambda: prints().get("success") == 1, 30, "OctoPrint to record the print")
        assert prints().get("failure", 0) == 0
        assert fleet.api(manager, "GET", f"/printers/{printer_id}").json()["state"] == "awaiting_bed_clear"
    finally:
        if octoprint is not None:
            octoprint.stop()
        fleet.stop()
