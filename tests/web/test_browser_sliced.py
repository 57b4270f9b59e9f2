"""In a real browser: a member picks a .bgcode in the upload form and sees the slicer's figures."""

from __future__ import annotations

import re

import pytest

from .browser import browser_unavailable
from .test_browser import browser, sign_in, site  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(browser_unavailable() is not None, reason=str(browser_unavailable()))

TWIN = "mini_cube_prusaslicer26"


def test_a_member_uploads_a_bgcode_through_the_form(site, browser, sample_gcode):  # noqa: F811
    fleet, url = site
    page = browser.new_page()
    sign_in(page, url, "alice")
    page.goto(f"{url}/submit")
    picker = page.get_by_label("G-code file")
    assert ".bgcode" in (picker.get_attribute("accept") or "").split(",")
    picker.set_input_files(str(sample_gcode / f"{TWIN}.bgcode"))
    page.get_by_role("button", name="Check the file").click()
    page.get_by_role("button", name="Submit to the queue").wait_for()
    found = page.locator("#analysis").inner_text()
    for figure in (
        "32 min",
        "1.0 m \u00b7 3 g",
        "PETG",
        "17.6 \u00d7 17.6 \u00d7 18.1 mm",
        "X 40\u2013170, Y -2\u2013102, Z 0.2\u201318.1",
    ):
        assert figure in found, found
    page.get_by_role("button", name="Submit to the queue").click()
    page.wait_for_url(re.compile(r"/queue(#job-\d+)?$"))
    alice = fleet.app.store.get_member_by_name("alice")
    [job] = [j for j in fleet.app.jobs.my_jobs(alice) if j.filename == f"{TWIN}.bgcode"]
    assert job.material == "PETG" and job.analysis["filament_length_mm"] == 986.61
    page.close()


def test_a_member_chooses_a_plate_of_a_sliced_3mf(site, browser, sample_gcode, tmp_path):  # noqa: F811
    """The check answers with the plates; the file stays chosen, so picking one and checking again is
    all it takes, and the chosen plate is what is queued."""
    from tests.web.test_sliced_uploads import two_plates

    fleet, url = site
    archive, vase = two_plates(sample_gcode)
    path = tmp_path / "two.gcode.3mf"
    path.write_bytes(archive)
    page = browser.new_page()
    sign_in(page, url, "alice")
    page.goto(f"{url}/submit")
    page.get_by_label("G-code file").set_input_files(str(path))
    page.locator("#analyze").click()
    plate = page.get_by_label("Plate to print")
    plate.wait_for()
    assert "2 plates (1, 4)" in page.locator("main > .error").inner_text()
    assert plate.evaluate("el => document.activeElement === el")
    plate.select_option("4")
    page.locator("#analyze-plate").click()
    page.get_by_role("button", name="Submit to the queue").wait_for()
    assert page.locator("main > .error").count() == 0
    page.get_by_role("button", name="Submit to the queue").click()
    page.wait_for_url(re.compile(r"/queue(#job-\d+)?$"))
    alice = fleet.app.store.get_member_by_name("alice")
    [job] = [j for j in fleet.app.jobs.my_jobs(alice) if j.filename == "two.gcode.3mf"]
    assert fleet.blobs.open(job.file_sha256).read() == vase
    page.close()
