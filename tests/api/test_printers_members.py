"""Printers, members, grants, lab settings, and the document that describes them."""

from __future__ import annotations

import io

from fleet.api.openapi import openapi_document
from fleet.states import JobState

MINI = {
    "id": "mini-1",
    "name": "Prusa MINI",
    "volume": {"min_x": 0, "min_y": -4, "min_z": 0, "max_x": 180, "max_y": 180, "max_z": 180},
    "nozzle_diameter": 0.4,
    "material": "pla",
}
PART = "M82\nG28\nG92 E0\nG1 Z0.2 F600\nG1 X10 Y10 F3000\nG1 X50 Y10 E2 F1200\nG1 X50 Y50 E4\n"


def submit(client, text: str = PART) -> int:
    form = {"file": (io.BytesIO(text.encode()), "part.gcode")}
    response = client.post("/api/v1/jobs", data=form, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["jobs"][0]["id"]


def test_only_managers_register_and_change_printers(api):
    assert api["alice"].post("/api/v1/printers", json=MINI).status_code == 403
    created = api["manager"].post("/api/v1/printers", json=MINI)
    assert created.status_code == 201
    assert created.get_json()["material"] == "PLA" and created.get_json()["state"] == "idle"
    assert api["manager"].post("/api/v1/printers", json=MINI).status_code == 409
    assert api["alice"].get("/api/v1/printers").get_json()["printers"][0]["id"] == "mini-1"
    assert api["alice"].patch("/api/v1/printers/mini-1", json={"material": "PETG"}).status_code == 403
    changed = api["manager"].patch("/api/v1/printers/mini-1", json={"material": "PETG"})
    assert changed.get_json()["material"] == "PETG"
    assert api["alice"].get("/api/v1/printers/nope").status_code == 404


def test_printer_input_errors_name_the_field(api):
    bad_id = api["manager"].post("/api/v1/printers", json={**MINI, "id": "../etc"})
    assert bad_id.status_code == 422 and bad_id.get_json()["field"] == "id"
    bad_volume = api["manager"].post("/api/v1/printers", json={**MINI, "volume": {"min_x": 0}})
    assert bad_volume.status_code == 422 and bad_volume.get_json()["field"].startswith("volume")
    unknown = api["manager"].patch("/api/v1/printers/mini-1", json={"colour": "red"})
    assert unknown.status_code in (404, 422)


def test_no_dispatch_until_the_bed_is_confirmed_clear(api, fleet):
    api["manager"].post("/api/v1/printers", json=MINI)
    first, second = submit(api["alice"]), submit(api["bob"])
    assigned = fleet.app.dispatcher.dispatch_pass()
    assert len(assigned) == 1 and assigned[0][1] == "mini-1"
    done_id = assigned[0][0]
    fleet.store.transition_job(done_id, JobState.PRINTING, actor="printer:mini-1", reason="started", now=1.0)
    fleet.app.reports.finish_job(done_id, JobState.DONE, actor="printer:mini-1", reason="print finished")
    printer = api["alice"].get("/api/v1/printers/mini-1").get_json()
    assert printer["state"] == "awaiting_bed_clear"
    assert fleet.app.dispatcher.dispatch_pass() == []  # the plate is not clear yet
    waiting = {first, second} - {done_id}
    owner, other = ("alice", "bob") if done_id == first else ("bob", "alice")
    assert api[other].post("/api/v1/printers/mini-1/bed-cleared").status_code == 403
    cleared = api[owner].post("/api/v1/printers/mini-1/bed-cleared")
    assert cleared.status_code == 200 and cleared.get_json()["state"] == "idle"
    assert api[owner].post("/api/v1/printers/mini-1/bed-cleared").status_code == 409
    assert fleet.app.dispatcher.dispatch_pass() == [(waiting.pop(), "mini-1")]


def test_restricted_printers_take_only_granted_members(api, fleet):
    api["manager"].post("/api/v1/printers", json={**MINI, "restricted": True})
    job_id = submit(api["alice"])
    assert fleet.app.dispatcher.dispatch_pass() == []
    entry = api["alice"].get("/api/v1/queue").get_json()["queue"][0]
    assert entry["explanation"]["reason"] == "no_compatible_printer"
    assert api["alice"].put(f"/api/v1/members/{api['alice'].member_id}/printers/mini-1").status_code == 403
    granted = api["manager"].put(f"/api/v1/members/{api['alice'].member_id}/printers/mini-1")
    assert granted.status_code == 200 and granted.get_json()["printers"] == ["mini-1"]
    assert fleet.app.dispatcher.dispatch_pass() == [(job_id, "mini-1")]


def test_members_admin_is_for_managers(api):
    assert api["alice"].get("/api/v1/members").status_code == 403
    assert api["alice"].post("/api/v1/members", json={"name": "carol"}).status_code == 403
    created = api["manager"].post("/api/v1/members", json={"name": "carol", "role": "member"})
    assert created.status_code == 201
    token = created.get_json()["token"]
    me = api["anonymous"].get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.get_json()["name"] == "carol"
    assert api["manager"].post("/api/v1/members", json={"name": "carol"}).status_code == 409
    bad = api["manager"].post("/api/v1/members", json={"name": "x y/z"})
    assert bad.status_code == 422 and bad.get_json()["field"] == "name"
    names = [m["name"] for m in api["manager"].get("/api/v1/members").get_json()["members"]]
    assert "carol" in names and all(
        "token" not in m for m in api["manager"].get("/api/v1/members").get_json()["members"]
    )


def test_deactivated_members_lose_access_and_reissued_tokens_replace_old_ones(api):
    alice = api["alice"]
    assert (
        api["manager"].patch(f"/api/v1/members/{alice.member_id}", json={"active": False}).status_code == 200
    )
    assert alice.get("/api/v1/me").status_code == 401
    api["manager"].patch(f"/api/v1/members/{alice.member_id}", json={"active": True})
    new_token = api["manager"].post(f"/api/v1/members/{alice.member_id}/token").get_json()["token"]
    assert alice.get("/api/v1/me").status_code == 401
    assert (
        api["anonymous"].get("/api/v1/me", headers={"Authorization": f"Bearer {new_token}"}).status_code
        == 200
    )


def test_a_manager_cannot_lock_themselves_out(api):
    response = api["manager"].patch(f"/api/v1/members/{api['manager'].member_id}", json={"role": "member"})
    assert response.status_code == 409


def test_lab_rules_are_adjustable_and_apply_to_the_next_upload(api):
    text = "G28\nM82\nG92 E0\nG1 Z0.3 F600\nG1 X10 Y10 E1 F1200\nM500\n"
    assert (
        api["alice"]
        .post(
            "/api/v1/jobs",
            data={"file": (io.BytesIO(text.encode()), "a.gcode")},
            content_type="multipart/form-data",
        )
        .status_code
        == 422
    )
    rules = api["alice"].get("/api/v1/settings").get_json()["rules"]
    refused = [c for c in rules["refused_commands"] if c != "M500"]
    response = api["manager"].patch("/api/v1/settings", json={"rules": {"refused_commands": refused}})
    assert response.status_code == 200
    assert "M500" not in response.get_json()["rules"]["refused_commands"]
    assert submit(api["alice"], text) > 0


def test_settings_errors_name_the_option(api):
    response = api["manager"].patch("/api/v1/settings", json={"max_upload_bytes": -1})
    assert response.status_code == 422 and response.get_json()["field"] == "max_upload_bytes"
    unknown = api["manager"].patch("/api/v1/settings", json={"colour": "blue"})
    assert unknown.status_code == 422 and "colour" in unknown.get_json()["message"]
    for half_life in (60, 1e300):  # under an hour, or beyond any use (and out of JSON's reach as inf)
        refused = api["manager"].patch("/api/v1/settings", json={"fair_share_half_life_s": half_life})
        assert refused.status_code == 422 and refused.get_json()["field"] == "fair_share_half_life_s"
    kept = api["manager"].patch("/api/v1/settings", json={"fair_share_half_life_s": 30 * 86400})
    assert kept.status_code == 200 and kept.get_json()["fair_share_half_life_s"] == 30 * 86400


def test_every_route_is_documented_and_every_documented_route_exists(app):
    doc = openapi_document()
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = rule.rule[len("/api/v1") :].replace("<int:", "{").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((path, method.lower()))
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented


def test_the_document_is_served_without_a_token(api):
    response = api["anonymous"].get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.get_json()["openapi"].startswith("3.")
