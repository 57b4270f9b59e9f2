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
