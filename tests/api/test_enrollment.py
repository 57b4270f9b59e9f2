"""Enrolling printers, the printer/member token split, job file downloads, revocation."""

from __future__ import annotations

import hashlib

import pytest

from fleet.app.enrollment import ENROLLMENT_CODE_REFUSALS
from fleet.http_protocol import BrokerAddress
from fleet.models import CodeRefusal
from fleet.states import JobState

from .test_printers_members import PART, submit

CAPS = {
    "volume": {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 250, "max_y": 210, "max_z": 220},
    "nozzle_diameter": 0.4,
    "material": "pla",
}


@pytest.fixture(autouse=True)
def broker_address(fleet):
    fleet.app.enrollment.node_mqtt = BrokerAddress("fleet.lab", 18830, tls=False)


def enroll(api, name="Prusa MK4"):
    code = api["manager"].post("/api/v1/enroll-codes", json={}).get_json()["code"]
    response = api["anonymous"].post(
        "/api/v1/printers/enroll", json={"code": code, "name": name, "capabilities": CAPS}
    )
    assert response.status_code == 201, response.get_json()
    return code, response.get_json()


def as_printer(api, token):
    return {"Authorization": f"Bearer {token}"}


def test_a_code_enrolls_once_and_the_answer_has_the_secrets(api, fleet):
    assert api["alice"].post("/api/v1/enroll-codes").status_code == 403
    code, body = enroll(api)
    assert body["printer_id"] == "prusa-mk4" and body["token"].startswith("cfp_")
    assert body["mqtt"] == {
        **body["mqtt"],
        "host": "fleet.lab",
        "port": 18830,
        "username": "prusa-mk4",
        "tls": False,
    }
    again = api["anonymous"].post(
        "/api/v1/printers/enroll", json={"code": code, "name": "x", "capabilities": CAPS}
    )
    assert again.status_code == 401 and again.get_json() == {
        "error": "unauthorized",
        "message": ENROLLMENT_CODE_REFUSALS[CodeRefusal.USED],
        "field": "code",
        "details": {"reason": "used"},
    }
    [user] = fleet.app.enrollment.broker_users()
    assert user.username == "prusa-mk4" and body["mqtt"]["password"] not in user.password_hash
    assert user.password_hash.startswith("$7$")
    assert enroll(api)[1]["printer_id"] == "prusa-mk4-2"


def test_an_expired_code_and_an_unknown_one_are_each_told_so(api, fleet):
    code, expires_at = fleet.app.enrollment.create_enrollment_code(None, ttl_s=60)
    fleet.app.clock = lambda: expires_at  # expired from that instant on
    response = api["anonymous"].post(
        "/api/v1/printers/enroll", json={"code": code, "name": "x", "capabilities": CAPS}
    )
    assert response.status_code == 401 and response.get_json()["details"] == {"reason": "expired"}
    assert response.get_json()["message"] == "this enrollment code has expired: ask a manager for a new one"
    unknown = api["anonymous"].post(
        "/api/v1/printers/enroll", json={"code": "2222-3333-4444", "name": "x", "capabilities": CAPS}
    )
    assert unknown.status_code == 401 and unknown.get_json()["details"] == {"reason": "unknown"}
    assert unknown.get_json()["message"] == ENROLLMENT_CODE_REFUSALS[CodeRefusal.UNKNOWN]


def test_bad_capabilities_name_the_field_and_keep_the_code(api):
    code = api["manager"].post("/api/v1/enroll-codes").get_json()["code"]
    bad = api["anonymous"].post(
        "/api/v1/printers/enroll",
        json={"code": code, "name": "x", "capabilities": {**CAPS, "nozzle_diameter": 9}},
    )
    assert bad.status_code == 422 and bad.get_json()["field"] == "nozzle_diameter"
    good = api["anonymous"].post(
        "/api/v1/printers/enroll", json={"code": code.lower(), "name": "x", "capabilities": CAPS}
    )
    assert good.status_code == 201


def test_tokens_do_not_cross_and_only_the_assigned_printer_downloads(api, fleet):
    _, mk4 = enroll(api, "mk4")
    _, mini = enroll(api, "mini")
    job_id = submit(api["alice"])
    for printer in ("mk4", "mini"):
        fleet.store.update_printer(printer, state="idle")
    [(job_id, holder)] = fleet.app.dispatcher.dispatch_pass()
    other = "mini" if holder == "mk4" else "mk4"
    tokens = {"mk4": mk4["token"], "mini": mini["token"]}
    url = f"/api/v1/printers/{holder}/jobs/{job_id}/file"

    got = api["anonymous"].get(url, headers=as_printer(api, tokens[holder]))
    assert got.status_code == 200 and got.data == PART.encode()
    assert got.headers["X-Content-SHA256"] == hashlib.sha256(got.data).hexdigest()
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert int(got.headers["Content-Length"]) == len(PART)
    assert api["anonymous"].get(url, headers=as_printer(api, tokens[other])).status_code == 403
    assert (
        api["anonymous"]
        .get(f"/api/v1/printers/{other}/jobs/{job_id}/file", headers=as_printer(api, tokens[other]))
        .status_code
        == 403
    )
    assert api["alice"].get(url).status_code == 401  # a member token, even the job's owner
    assert api["manager"].get(url).status_code == 401
    assert api["anonymous"].get("/api/v1/me", headers=as_printer(api, tokens[holder])).status_code == 401
    assert (
        api["anonymous"].get("/api/v1/printers", headers=as_printer(api, tokens[holder])).status_code == 401
    )

    revoked = api["manager"].post(f"/api/v1/printers/{holder}/revoke")
    assert revoked.status_code == 200 and revoked.get_json()["state"] == "maintenance"
    assert fleet.store.get_job(job_id).state is JobState.UNKNOWN
    assert api["anonymous"].get(url, headers=as_printer(api, tokens[holder])).status_code == 401
    assert [u.username for u in fleet.app.enrollment.broker_users()] == [other]
    assert api["manager"].post(f"/api/v1/printers/{holder}/revoke").status_code == 409
    assert api["alice"].post(f"/api/v1/printers/{other}/revoke").status_code == 403


def test_pause_without_a_link_is_503_and_live_status_is_shown(api, fleet):
    from fleet.models import LiveStatus

    enroll(api, "mk4")
    fleet.store.update_printer("mk4", state="idle")
    job_id = submit(api["alice"])
    fleet.app.dispatcher.dispatch_pass()
    fleet.store.transition_job(job_id, JobState.PRINTING, actor="printer:mk4", reason="started", now=1.0)
    assert api["alice"].post(f"/api/v1/jobs/{job_id}/pause").status_code == 503
    assert api["bob"].post(f"/api/v1/jobs/{job_id}/pause").status_code == 403
    assert api["alice"].post(f"/api/v1/jobs/{job_id}/resume").status_code == 409
    fleet.app.reports.set_live(
        "mk4", LiveStatus("printing", {"tool0": (210.0, 215.0)}, 42.0, 2e9, job_id, 1.7e9)
    )
    live = api["alice"].get("/api/v1/printers/mk4").get_json()["live"]
    assert live["progress"] == 42.0 and live["temperatures"]["tool0"] == {"actual": 210.0, "target": 215.0}


def test_enroll_code_on_the_command_line(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    fleet_bin = str(Path(sys.executable).parent / "crowdfab-fleet")
    out = subprocess.run(
        [fleet_bin, "enroll-code", "--ttl", "2", "--json", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    code = json.loads(out.stdout)["code"]
    assert len(code) == 14 and code.count("-") == 2
