"""Binary G-code and sliced 3MF uploads through /api/v1: analysed like their text, stored as text,
and refused without a trace when damaged."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from tests.api.test_jobs import stored_files, upload

TWIN = "mini_cube_prusaslicer26"


def analyze(client, content: bytes, name: str):
    form = {"file": (io.BytesIO(content), name)}
    return client.post("/api/v1/analyze", data=form, content_type="multipart/form-data")


def three_mf(plates: dict[int, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("3D/3dmodel.model", "<model/>")
        for n, gcode in plates.items():
            z.writestr(f"Metadata/plate_{n}.gcode", gcode)
            z.writestr(f"Metadata/plate_{n}.gcode.md5", hashlib.md5(gcode, usedforsecurity=False).hexdigest())
    return buffer.getvalue()


def test_a_bgcode_is_queued_with_the_slicers_figures_and_stored_as_its_text(api, fleet, sample_gcode):
    binary = (sample_gcode / f"{TWIN}.bgcode").read_bytes()
    text = (sample_gcode / f"{TWIN}.gcode").read_bytes()
    response = upload(api["alice"], binary, "cube.bgcode")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    analysis = body["analysis"]
    assert analysis["estimated_time_s"] == 32 * 60 + 6
    assert analysis["filament_length_mm"] == pytest.approx(986.61)
    assert analysis["filament_weight_g"] == pytest.approx(3.01)
    assert analysis["material"] == "PETG"
    assert body["jobs"][0]["filename"] == "cube.bgcode" and body["jobs"][0]["material"] == "PETG"
    twin = upload(api["bob"], text, "cube.gcode").get_json()["analysis"]
    assert analysis["bounds"] == twin["bounds"] and analysis["model_bounds"] == twin["model_bounds"]
    assert analysis == twin
    # One stored file: the text both uploads decode to, which is what printers are sent.
    [stored] = stored_files(fleet)
    assert stored.read_bytes() == text
    assert fleet.store.get_job(body["jobs"][0]["id"]).file_sha256 == hashlib.sha256(text).hexdigest()


def test_analyze_reads_a_bgcode_and_keeps_nothing(api, fleet, sample_gcode):
    response = analyze(api["alice"], (sample_gcode / f"{TWIN}.bgcode").read_bytes(), "cube.bgcode")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["estimated_time_s"] == 1926
    assert len(response.get_json()["thumbnails"]) == 2
    assert stored_files(fleet) == []


def test_a_one_plate_3mf_is_queued_and_several_plates_ask_which(api, fleet, sample_gcode):
    text = (sample_gcode / f"{TWIN}.gcode").read_bytes()
    response = upload(api["alice"], three_mf({1: text}), "cube.gcode.3mf")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["analysis"]["filament_length_mm"] == pytest.approx(986.61)
    before = stored_files(fleet)
    for url in ("/api/v1/jobs", "/api/v1/analyze"):
        form = {"file": (io.BytesIO(three_mf({1: text, 4: text})), "two.gcode.3mf")}
        refused = api["alice"].post(url, data=form, content_type="multipart/form-data")
        assert refused.status_code == 422
        assert "2 plates (1 and 4)" in refused.get_json()["message"]
        assert "plate" in refused.get_json()["message"]
    assert stored_files(fleet) == before and len(fleet.store.list_jobs()) == 1


@pytest.mark.parametrize("cut", [20, 5000, -40], ids=["header", "middle", "tail"])
def test_a_truncated_bgcode_or_3mf_is_a_clear_422_that_keeps_nothing(api, fleet, sample_gcode, cut):
    binary = (sample_gcode / f"{TWIN}.bgcode").read_bytes()
    archive = three_mf({1: (sample_gcode / f"{TWIN}.gcode").read_bytes()})
    for content, name, says in ((binary, "cube.bgcode", "binary G-code"), (archive, "cube.gcode.3mf", "ZIP")):
        response = upload(api["alice"], content[:cut], name)
        assert response.status_code == 422, response.get_json()
        assert says in response.get_json()["message"] and "truncated" in response.get_json()["message"]
        assert response.get_json()["field"] == "file"
    assert stored_files(fleet) == [] and fleet.store.list_jobs() == []
    assert list(fleet.blobs.staging_dir.iterdir()) == []


def test_the_lab_limit_applies_to_the_decoded_gcode(api, fleet, sample_gcode):
    api["manager"].patch("/api/v1/settings", json={"max_upload_bytes": 300_000})
    binary = (sample_gcode / f"{TWIN}.bgcode").read_bytes()  # 149 KB on disk, 641 KB of G-code
    response = upload(api["alice"], binary, "cube.bgcode")
    assert response.status_code == 413
    assert "once unpacked" in response.get_json()["message"]
    assert stored_files(fleet) == [] and fleet.store.list_jobs() == []


def two_plates(sample_gcode) -> tuple[bytes, bytes, bytes]:
    """A 3MF archive with plates 1 (the cube) and 4 (the vase), and the G-code of each."""
    cube = (sample_gcode / f"{TWIN}.gcode").read_bytes()
    vase = (sample_gcode / "vase_prusaslicer.gcode").read_bytes()
    return three_mf({1: cube, 4: vase}), cube, vase


def test_the_plate_field_picks_one_plate_of_several(api, fleet, sample_gcode):
    archive, cube, vase = two_plates(sample_gcode)
    refused = upload(api["alice"], archive, "two.gcode.3mf")
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["details"] == {"plates": [1, 4]} and body["field"] == "file"
    assert "2 plates (1 and 4)" in body["message"] and "form field plate" in body["message"]
    assert "plate=1" in body["message"]

    analysed = api["alice"].post(
        "/api/v1/analyze",
        data={"file": (io.BytesIO(archive), "two.gcode.3mf"), "plate": "4"},
        content_type="multipart/form-data",
    )
    assert analysed.status_code == 200, analysed.get_json()
    vase_alone = analyze(api["alice"], vase, "vase.gcode").get_json()
    assert analysed.get_json() == vase_alone
    assert stored_files(fleet) == []

    queued = upload(api["alice"], archive, "two.gcode.3mf", plate=4)
    assert queued.status_code == 201, queued.get_json()
    assert queued.get_json()["analysis"] == vase_alone
    [job] = fleet.store.list_jobs()
    assert fleet.blobs.open(job.file_sha256).read() == vase  # the printer is sent that plate's G-code
    first = upload(api["bob"], archive, "two.gcode.3mf", plate=1)
    assert first.status_code == 201
    assert first.get_json()["analysis"]["filament_length_mm"] == pytest.approx(986.61)
    assert fleet.blobs.open(fleet.store.get_job(first.get_json()["jobs"][0]["id"]).file_sha256).read() == cube


@pytest.mark.parametrize(
    ("plate", "says"),
    [
        ("9", "has no plate 9; it holds plates 1 and 4"),
        ("0", "plate must be a plate's number"),
        ("two", "plate must be a whole number"),
        ("-1", "plate must be a whole number"),
    ],
)
def test_a_bad_plate_number_is_a_clear_422_that_keeps_nothing(api, fleet, sample_gcode, plate, says):
    archive, _, _ = two_plates(sample_gcode)
    for url in ("/api/v1/jobs", "/api/v1/analyze"):
        form = {"file": (io.BytesIO(archive), "two.gcode.3mf"), "plate": plate}
        refused = api["alice"].post(url, data=form, content_type="multipart/form-data")
        assert refused.status_code == 422, refused.get_json()
        assert says in refused.get_json()["message"] and refused.get_json()["field"] == "plate"
    assert stored_files(fleet) == [] and fleet.store.list_jobs() == []
    staging = fleet.blobs.staging_dir
    assert not staging.exists() or list(staging.iterdir()) == []


def test_a_plate_for_a_file_without_plates_is_refused(api, fleet, sample_gcode):
    for name in (f"{TWIN}.gcode", f"{TWIN}.bgcode"):
        refused = upload(api["alice"], (sample_gcode / name).read_bytes(), name, plate=1)
        assert refused.status_code == 422
        assert "not a sliced 3MF" in refused.get_json()["message"] and refused.get_json()["field"] == "plate"
    assert stored_files(fleet) == [] and fleet.store.list_jobs() == []


def test_the_document_describes_the_plate_field():
    from fleet.api.openapi import openapi_document

    document = openapi_document()
    for path in ("/jobs", "/analyze"):
        form = document["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        plate = form["properties"]["plate"]
        assert (
            plate["type"] == "integer" and plate["minimum"] == 1 and "details.plates" in plate["description"]
        )
        assert "plate" not in form["required"]
