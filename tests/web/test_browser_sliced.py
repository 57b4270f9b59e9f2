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
