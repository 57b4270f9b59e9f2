"""Submitting, reading, cancelling and moderating jobs through /api/v1."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SMALL = (
    "; a tiny test part\n"
    "M82\nG28\nG92 E0\nG1 Z0.2 F600\nG1 X10 Y10 F3000\n"
    "G1 X50 Y10 E2 F1200\nG1 X50 Y50 E4\nG1 X10 Y50 E6\nG1 X10 Y10 E8\n"
)


def upload(client, content: bytes | str, name: str = "part.gcode", **fields):
    data = content.encode() if isinstance(content, str) else content
    form = {"file": (io.BytesIO(data), name), **{k: str(v) for k, v in fields.items()}}
    return client.post("/api/v1/jobs", data=form, content_type="multipart/form-data")


def stored_files(fleet) -> list[Path]:
    root = fleet.config.blob_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_benchy_submission_reports_the_slicers_figures_and_both_bounds(api, sample_gcode):
    response = upload(api["alice"], (sample_gcode / "benchy_prusaslicer.gcode").read_bytes(), "benchy.gcode")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    analysis = body["analysis"]
    assert analysis["estimated_time_s"] == 2323
    assert analysis["filament_length_mm"] == pytest.approx(4282.06)
    assert analysis["filament_weight_g"] == pytest.approx(12.77)
    assert analysis["material"] == "PLA"
    assert analysis["nozzle_diameter"] == pytest.approx(0.4)
    assert base64.b64decode(analysis["thumbnails"][0]["data"]).startswith(PNG_MAGIC)
    # Everything extruded includes the purge line at Y -2; the model alone does not.
    assert analysis["bounds"]["min_y"] == pytest.approx(-2.0)
    assert analysis["model_bounds"]["min_y"] > 0
    assert body["jobs"][0]["state"] == "queued"
    assert body["jobs"][0]["material"] == "PLA"
    assert response.headers["Location"] == f"/api/v1/jobs/{body['jobs'][0]['id']}"


def test_cura_file_takes_its_time_from_the_header(api, sample_gcode):
    response = upload(api["alice"], (sample_gcode / "puzzle_cura.gcode").read_bytes(), "puzzle.gcode")
    assert response.status_code == 201
    assert response.get_json()["analysis"]["estimated_time_s"] == 3485


def test_a_refused_command_names_its_line_and_keeps_nothing(api, fleet):
    lines = ["G28", "G90", "M82", "G92 E0", "G1 Z0.3 F600", "G1 X10 Y10 E1 F1200", "M502", "G1 X20 Y10 E2"]
    response = upload(api["alice"], "\n".join(lines) + "\n")
    assert response.status_code == 422
    body = response.get_json()
    assert "line 7" in body["message"] and "M502" in body["message"]
    assert any(f["line"] == 7 and f["command"] == "M502" for f in body["details"]["findings"])
    assert stored_files(fleet) == []
    assert fleet.store.list_jobs() == []


def test_a_png_renamed_to_gcode_is_refused(api, fleet):
    png = PNG_MAGIC + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    response = upload(api["alice"], png, "photo.gcode")
    assert response.status_code == 422
    assert (
        "image" in response.get_json()["message"].lower() or "png" in response.get_json()["message"].lower()
    )
    assert stored_files(fleet) == []
    assert fleet.store.list_jobs() == []


def test_an_upload_over_the_labs_limit_is_413_and_keeps_nothing(api, fleet):
    api["manager"].patch("/api/v1/settings", json={"max_upload_bytes": 1000})
    response = upload(api["alice"], SMALL * 100)
    assert response.status_code == 413
    assert "limit" in response.get_json()["message"]
    assert stored_files(fleet) == [] and fleet.store.list_jobs() == []


def test_a_missing_file_field_is_a_clear_422(api):
    response = api["alice"].post("/api/v1/jobs", data={"copies": "1"}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "'file'" in response.get_json()["message"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"copies": "0"}, "copies"), ({"copies": "many"}, "copies"), ({"material": "PLA;DROP"}, "material")],
)
def test_bad_form_fields_name_the_field(api, fields, field):
    response = upload(api["alice"], SMALL, **fields)
    assert response.status_code == 422
    assert response.get_json()["field"] == field


def test_copies_make_one_job_each_sharing_one_stored_file(api, fleet):
    response = upload(api["alice"], SMALL, copies=3, material="petg", note="for the workshop")
    assert response.status_code == 201
    jobs = response.get_json()["jobs"]
    assert len(jobs) == 3
    assert {j["material"] for j in jobs} == {"PETG"}
    assert len({j["file_sha256"] for j in jobs}) == 1
    assert len(stored_files(fleet)) == 1


def test_files_are_stored_by_content_hash_never_by_the_uploaded_name(api, fleet):
    response = upload(api["alice"], SMALL, name="../../etc/passwd.gcode")
    assert response.status_code == 201
    job = response.get_json()["jobs"][0]
    assert job["filename"] == "passwd.gcode"
    (stored,) = stored_files(fleet)
    assert stored.name == job["file_sha256"]
    assert fleet.config.blob_dir in stored.parents


def test_without_a_token_every_job_call_is_401(api):
    anonymous = api["anonymous"]
    assert upload(anonymous, SMALL).status_code == 401
    assert anonymous.get("/api/v1/queue").status_code == 401
    bad = api["anonymous"].get("/api/v1/jobs/mine", headers={"Authorization": "Bearer cfm_not-a-token"})
    assert bad.status_code == 401
    assert "token" in bad.get_json()["message"]


def test_members_cancel_their_own_jobs_but_not_anothers(api):
    job_id = upload(api["alice"], SMALL).get_json()["jobs"][0]["id"]
    forbidden = api["bob"].post(f"/api/v1/jobs/{job_id}/cancel")
    assert forbidden.status_code == 403
    assert api["bob"].get(f"/api/v1/jobs/{job_id}").status_code == 403
    cancelled = api["alice"].post(f"/api/v1/jobs/{job_id}/cancel", json={"reason": "wrong colour"})
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "cancelled"
    again = api["alice"].post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409
    history = api["alice"].get(f"/api/v1/jobs/{job_id}").get_json()["history"]
    assert [(h["from"], h["to"]) for h in history] == [
        (None, "submitted"),
        ("submitted", "queued"),
        ("queued", "cancelled"),
    ]
    assert history[-1]["reason"] == "wrong colour"
    assert history[-1]["actor"] == f"member:{api['alice'].member_id}"


def test_a_manager_cancels_any_job(api):
    job_id = upload(api["alice"], SMALL).get_json()["jobs"][0]["id"]
    response = api["manager"].post(f"/api/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200 and response.get_json()["state"] == "cancelled"


def test_unknown_job_is_404(api):
    assert api["alice"].get("/api/v1/jobs/999").status_code == 404


def test_approval_by_lab_setting_and_by_manager_only(api):
    assert api["alice"].patch("/api/v1/settings", json={"approval_required": True}).status_code == 403
    assert api["manager"].patch("/api/v1/settings", json={"approval_required": True}).status_code == 200
    job = upload(api["alice"], SMALL).get_json()["jobs"][0]
    assert job["state"] == "awaiting_approval"
    assert api["alice"].post(f"/api/v1/jobs/{job['id']}/approve").status_code == 403
    queue = api["alice"].get("/api/v1/queue").get_json()["queue"]
    assert queue[0]["explanation"]["reason"] == "awaiting_approval"
    approved = api["manager"].post(f"/api/v1/jobs/{job['id']}/approve")
    assert approved.status_code == 200 and approved.get_json()["state"] == "queued"
    assert api["manager"].post(f"/api/v1/jobs/{job['id']}/approve").status_code == 409


def test_a_members_own_approval_setting_overrides_the_lab(api, fleet):
    api["manager"].patch(f"/api/v1/members/{api['bob'].member_id}", json={"requires_approval": True})
    assert upload(api["bob"], SMALL).get_json()["jobs"][0]["state"] == "awaiting_approval"
    assert upload(api["alice"], SMALL).get_json()["jobs"][0]["state"] == "queued"


def test_reject_cancels_with_the_managers_reason(api):
    api["manager"].patch("/api/v1/settings", json={"approval_required": True})
    job_id = upload(api["alice"], SMALL).get_json()["jobs"][0]["id"]
    response = api["manager"].post(f"/api/v1/jobs/{job_id}/reject", json={"reason": "too much filament"})
    assert response.status_code == 200 and response.get_json()["state"] == "cancelled"
    history = api["alice"].get(f"/api/v1/jobs/{job_id}").get_json()["history"]
    assert "too much filament" in history[-1]["reason"]


def test_priority_is_a_managers_call_and_is_recorded(api):
    job_id = upload(api["alice"], SMALL).get_json()["jobs"][0]["id"]
    assert api["alice"].put(f"/api/v1/jobs/{job_id}/priority", json={"priority": 5}).status_code == 403
    assert api["manager"].put(f"/api/v1/jobs/{job_id}/priority", json={"priority": 1000}).status_code == 422
    response = api["manager"].put(f"/api/v1/jobs/{job_id}/priority", json={"priority": 5})
    assert response.status_code == 200 and response.get_json()["priority"] == 5
    history = api["manager"].get(f"/api/v1/jobs/{job_id}").get_json()["history"]
    assert "priority" in history[-1]["reason"]


def test_other_members_see_the_queue_but_not_my_file_name(api):
    upload(api["alice"], SMALL, name="secret-project.gcode")
    entry = api["bob"].get("/api/v1/queue").get_json()["queue"][0]
    assert entry["member_name"] == "alice"
    assert "filename" not in entry and "note" not in entry
    assert entry["explanation"]["position"] == 1
    mine = api["alice"].get("/api/v1/jobs/mine").get_json()["jobs"][0]
    assert mine["filename"] == "secret-project.gcode"
    assert mine["explanation"]["position"] == 1


def test_thumbnail_is_served_as_an_image(api, sample_gcode):
    job_id = upload(api["alice"], (sample_gcode / "benchy_prusaslicer.gcode").read_bytes()).get_json()[
        "jobs"
    ][0]["id"]
    response = api["alice"].get(f"/api/v1/jobs/{job_id}/thumbnail")
    assert response.status_code == 200
    assert response.mimetype == "image/png" and response.data.startswith(PNG_MAGIC)
    small = upload(api["alice"], SMALL).get_json()["jobs"][0]["id"]
    assert api["alice"].get(f"/api/v1/jobs/{small}/thumbnail").status_code == 404
