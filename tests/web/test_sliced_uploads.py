"""The dashboard's upload form takes binary G-code and sliced 3MF files like text G-code."""

from __future__ import annotations

import io
import re

TWIN = "mini_cube_prusaslicer26"


def test_the_file_input_offers_binary_gcode_and_3mf(browsers):
    page = browsers["alice"].get("/submit").get_data(as_text=True)
    accept = re.search(r'<input id="file"[^>]* accept="([^"]+)"', page)
    assert accept is not None
    assert {".gcode", ".bgcode", ".3mf"} <= set(accept.group(1).split(","))


def test_a_bgcode_is_analysed_then_queued_with_the_slicers_figures(browsers, fleet, sample_gcode):
    alice = browsers["alice"]
    binary = (sample_gcode / f"{TWIN}.bgcode").read_bytes()
    shown = alice.post(
        "/submit", {"file": (io.BytesIO(binary), "cube.bgcode")}, content_type="multipart/form-data"
    )
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200, page
    assert "cube.bgcode" in page and "PETG" in page
    assert "1.0 m · 3 g" in page  # 986.61 mm, 3.01 g
    assert 'src="data:image/png;base64,' in page  # the slicer's thumbnail
    assert 'id="confirm"' in page
    done = alice.post(
        "/submit/confirm",
        {"file": (io.BytesIO(binary), "cube.bgcode"), "copies": "1"},
        content_type="multipart/form-data",
    )
    assert done.status_code == 303
    [job] = fleet.app.jobs.my_jobs(alice.member)
    assert job.material == "PETG" and job.analysis["estimated_time_s"] == 1926
    assert fleet.blobs.open(job.file_sha256).read() == (sample_gcode / f"{TWIN}.gcode").read_bytes()


def test_a_damaged_bgcode_shows_what_is_wrong(browsers, fleet, sample_gcode):
    binary = (sample_gcode / f"{TWIN}.bgcode").read_bytes()[:3000]
    shown = browsers["alice"].post(
        "/submit", {"file": (io.BytesIO(binary), "cube.bgcode")}, content_type="multipart/form-data"
    )
    assert shown.status_code == 422
    assert "truncated" in shown.get_data(as_text=True)
    assert fleet.app.jobs.my_jobs(browsers["alice"].member) == []


def two_plates(sample_gcode) -> tuple[bytes, bytes]:
    """A sliced 3MF archive with plates 1 (the cube) and 4 (the vase), and the vase's G-code."""
    from tests.api.test_jobs_sliced_files import three_mf

    vase = (sample_gcode / "vase_prusaslicer.gcode").read_bytes()
    return three_mf({1: (sample_gcode / f"{TWIN}.gcode").read_bytes(), 4: vase}), vase


def test_several_plates_are_offered_then_the_chosen_one_is_queued(browsers, fleet, sample_gcode):
    alice = browsers["alice"]
    archive, vase = two_plates(sample_gcode)
    asked = alice.post(
        "/submit", {"file": (io.BytesIO(archive), "two.gcode.3mf")}, content_type="multipart/form-data"
    )
    page = asked.get_data(as_text=True)
    assert asked.status_code == 422
    assert "holds G-code for 2 plates (1, 4)" in page and "choose the plate below" in page
    choice = re.search(r'<select id="plate" name="plate"[^>]*>(.*?)</select>', page, re.S)
    assert choice is not None
    assert re.findall(r'<option value="(\d+)"', choice.group(1)) == ["1", "4"]
    assert '<input type="hidden" name="plates" value="1 4">' in page
    assert 'id="confirm"' not in page and list(fleet.blobs.stored()) == []

    shown = alice.post(
        "/submit",
        {"file": (io.BytesIO(archive), "two.gcode.3mf"), "plate": "4", "plates": "1 4"},
        content_type="multipart/form-data",
    )
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200, page
    assert '<option value="4" selected>' in page and 'id="confirm"' in page
    assert "PLA" in page or "PETG" in page  # the vase's own figures are shown
    done = alice.post(
        "/submit/confirm",
        {"file": (io.BytesIO(archive), "two.gcode.3mf"), "copies": "1", "plate": "4", "plates": "1 4"},
        content_type="multipart/form-data",
    )
    assert done.status_code == 303
    [job] = fleet.app.jobs.my_jobs(alice.member)
    assert fleet.blobs.open(job.file_sha256).read() == vase


def test_a_bad_plate_is_shown_and_keeps_nothing(browsers, fleet, sample_gcode):
    alice = browsers["alice"]
    archive, _ = two_plates(sample_gcode)
    for url in ("/submit", "/submit/confirm"):
        for plate, says in (("9", "has no plate 9; it holds plates 1 and 4"), ("x", "The plate must be")):
            shown = alice.post(
                url,
                {"file": (io.BytesIO(archive), "two.gcode.3mf"), "plate": plate, "plates": "1 4"},
                content_type="multipart/form-data",
            )
            assert shown.status_code == 422
            page = shown.get_data(as_text=True)
            assert says in page and '<select id="plate" name="plate"' in page  # still offered
    assert fleet.app.jobs.my_jobs(alice.member) == [] and list(fleet.blobs.stored()) == []


def test_the_plate_refusal_in_french(browsers, fleet, sample_gcode):
    alice = browsers["alice"]
    archive, _ = two_plates(sample_gcode)
    shown = alice.post(
        "/submit",
        {"file": (io.BytesIO(archive), "two.gcode.3mf")},
        content_type="multipart/form-data",
        headers={"Accept-Language": "fr"},
    )
    page = shown.get_data(as_text=True)
    assert shown.status_code == 422 and "2 plateaux (1, 4)" in page and "Plateau à imprimer" in page
