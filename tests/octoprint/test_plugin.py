"""The plugin and its printer adapter inside a real OctoPrint with the virtual printer."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet.protocol import (
    AckStatus,
    Command,
    CommandType,
    EventType,
    JobRef,
    NodeState,
    decode_ack,
    decode_event,
    decode_status,
    encode_command,
)
from tests.http_stub import Reply, Request, serving
from tests.octoprint_server import OctoPrintServer, wait_for

from . import probe_plugin

SECRETS = {
    "enroll_code": "secret-enroll-code",
    "printer_token": "secret-printer-token",
    "mqtt": {"host": "", "port": 1883, "username": "secret-user", "password": "secret-password"},
}

GCODE = "\n".join(
    ["; a 30-line test print", "G21", "G90", "M82", "G28", "G92 E0"]
    + [f"G1 X{10 + i} Y{10 + i % 5} Z0.3 E{i * 0.1:.1f} F3000" for i in range(22)]
    + ["G1 Z10", "M84"]
).encode()


@pytest.fixture(scope="module")
def octoprint() -> Iterator[OctoPrintServer]:
    source = Path(probe_plugin.__file__).read_text()
    server = OctoPrintServer(SECRETS, extra_plugins={"crowdfab_probe": source}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def job_files() -> Iterator[str]:
    """An HTTP server, like the fleet's, that serves job 41's file to the probe's printer token."""

    def answer(request: Request) -> Reply:
        ok = request.path == "/jobs/41/file" and request.headers.get("Authorization") == (
            f"Bearer {probe_plugin.PROBE_TOKEN}"
        )
        return Reply(200, GCODE) if ok else Reply(404)

    with serving(answer) as url:
        yield url


def test_plugin_loads_and_reports_not_enrolled(octoprint: OctoPrintServer) -> None:
    def status() -> Any:
        answer = octoprint.admin.get(f"{octoprint.url}/api/plugin/crowdfab", timeout=5)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return body if body["link"] != "starting" else None

    body = wait_for(status, 10, "the plugin's runtime to start")
    assert body["link"] == "not enrolled"
    assert body["pending_offer"] is None


def test_plugin_api_needs_a_user(octoprint: OctoPrintServer) -> None:
    assert octoprint.anonymous.get(f"{octoprint.url}/api/plugin/crowdfab", timeout=5).status_code in (
        401,
        403,
    )
    answer = octoprint.member.post(
        f"{octoprint.url}/api/plugin/crowdfab", json={"command": "accept"}, timeout=5
    )
    assert answer.status_code == 403, "accepting fleet jobs is for the printer's admins"


def crowdfab_settings(session: Any, url: str) -> dict[str, Any]:
    answer = session.get(f"{url}/api/settings", timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["plugins"]["crowdfab"]


def test_secrets_are_readable_by_admins_only(octoprint: OctoPrintServer) -> None:
    admin = crowdfab_settings(octoprint.admin, octoprint.url)
    assert admin["printer_token"] == "secret-printer-token"
    assert admin["mqtt"]["password"] == "secret-password"

    member = crowdfab_settings(octoprint.member, octoprint.url)
    assert member["material"] == "PLA", "unrestricted settings stay readable"
    secrets = [
        member["enroll_code"],
        member["printer_token"],
        member["mqtt"]["username"],
        member["mqtt"]["password"],
    ]
    assert secrets == [None, None, None, None]

    anonymous = octoprint.anonymous.get(f"{octoprint.url}/api/settings", timeout=5)
    assert "secret" not in anonymous.text


def published(octoprint: OctoPrintServer) -> list[dict[str, Any]]:
    answer = octoprint.admin.get(f"{octoprint.url}/api/plugin/crowdfab_probe", timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["published"]


def on(messages: list[dict[str, Any]], channel: str) -> list[bytes]:
    return [m["payload"].encode() for m in messages if m["channel"] == channel]


def test_dispatched_job_prints_on_the_virtual_printer(octoprint: OctoPrintServer, job_files: str) -> None:
    now = time.time()
    ref = JobRef(41, f"{job_files}/jobs/41/file", hashlib.sha256(GCODE).hexdigest(), len(GCODE), "cube.gcode")
    command = Command("dispatch-41", CommandType.DISPATCH, now, now + 60, 41, ref)
    payload = base64.b64encode(encode_command(command)).decode()
    answer = octoprint.admin.post(
        f"{octoprint.url}/api/plugin/crowdfab_probe",
        json={"command": "deliver", "payload": payload},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text

    def events() -> list[EventType]:
        return [decode_event(p).type for p in on(published(octoprint), "events")]

    wait_for(lambda: EventType.JOB_DONE in events(), 45, "the print to finish", 0.5)
    messages = published(octoprint)
    assert events() == [EventType.JOB_STARTED, EventType.JOB_DONE]
    assert [decode_ack(p).status for p in on(messages, "ack")] == [AckStatus.ACCEPTED]
    states = [decode_status(p).state for p in on(messages, "status")]
    assert NodeState.IDLE in states and NodeState.PRINTING in states
    assert states[-1] is NodeState.AWAITING_BED_CLEAR

    stored = octoprint.admin.get(f"{octoprint.url}/api/files/local/crowdfab/41-cube.gcode", timeout=5)
    assert stored.status_code == 200, "the file is kept in the crowdfab folder"

    def history() -> dict:
        answer = octoprint.admin.get(f"{octoprint.url}/api/files/local/crowdfab/41-cube.gcode", timeout=5)
        return answer.json().get("prints") or {}

    # OctoPrint records the print from its own PrintDone listener, which may come after our event.
    wait_for(lambda: history().get("success") == 1, 15, "OctoPrint to record the print", 0.2)
    assert history().get("failure", 0) == 0, json.dumps(history())


def test_software_update_knows_the_plugin_and_stays_calm_off_line(octoprint: OctoPrintServer) -> None:
    answer = octoprint.admin.get(f"{octoprint.url}/plugin/softwareupdate/check?targets=crowdfab", timeout=60)
    assert answer.status_code == 200, answer.text
    entry = answer.json()["information"]["crowdfab"]
    assert entry["displayName"] == "CrowdFab" and not entry["disabled"]
    # This machine has no network: the check says so and nothing else breaks.
    assert entry["error"] in (None, "network"), entry


def test_plugin_metadata_and_no_autoescape_warning(octoprint: OctoPrintServer) -> None:
    import octoprint_crowdfab as plugin

    assert plugin.__plugin_description__ and plugin.__plugin_license__ == "AGPL-3.0-or-later"
    assert plugin.__plugin_url__.startswith("https://") and plugin.__plugin_author__
    assert "not being autoescaped" not in octoprint.log_text()
