"""Sending a file from OctoPrint's Fablab tab to a real fleet's queue, through chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.gcode.generate import generate_box
from tests.e2e.test_fleet_octoprint import RunningFleet
from tests.octoprint.test_ui import log_in
from tests.octoprint_server import OctoPrintServer
from tests.web.browser import ARTIFACTS, browser_unavailable, chromium

pytestmark = pytest.mark.skipif(browser_unavailable() is not None, reason=str(browser_unavailable()))

UI_TIMEOUT_MS = 30_000
FILENAME = "queue-me.gcode"


@pytest.fixture()
def fleet(tmp_path: Path) -> Iterator[RunningFleet]:
    running = RunningFleet(tmp_path / "fleet")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture()
def octoprint(fleet: RunningFleet) -> Iterator[OctoPrintServer]:
    # A fleet URL but no enrollment code: the plugin never enrolls, it only forwards files to the queue.
    server = OctoPrintServer({"fleet_url": fleet.url}).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_file_goes_from_the_fablab_tab_to_the_fleet_queue(
    fleet: RunningFleet, octoprint: OctoPrintServer
) -> None:
    token = fleet.cli("member", "add", "alice")["token"]
    part = generate_box(12, 12, 1.0, origin=(50.0, 50.0))
    uploaded = octoprint.admin.post(
        f"{octoprint.url}/api/files/local", files={"file": (FILENAME, part.encode())}, timeout=10
    )
    assert uploaded.status_code == 201, uploaded.text
    # With a file uploaded, the bundled File Check plugin would open its setup wizard over the page.
    seen = octoprint.admin.post(
        f"{octoprint.url}/api/setup/wizard", json={"handled": ["file_check"]}, timeout=10
    )
    assert seen.status_code == 204, seen.text

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            log_in(page, octoprint.url)
            page.click("#tab_plugin_crowdfab_link a")
            page.wait_for_selector("[data-test-id=crowdfab-queue-form]", state="visible")
            page.wait_for_selector(f'#crowdfab-queue-file option[value="{FILENAME}"]', state="attached")
            page.select_option("#crowdfab-queue-file", FILENAME)
            copies = page.locator("#crowdfab-queue-copies")
            assert copies.input_value() == "1", "one copy unless asked"
            copies.fill("2")
            page.fill("#crowdfab-queue-token", token)
            send = page.locator("[data-test-id=crowdfab-queue-send]")
            page.wait_for_function(
                "() => !document.querySelector('[data-test-id=crowdfab-queue-send]').disabled"
            )
            send.click()
            result = page.locator("[data-test-id=crowdfab-queue-result]")
            result.wait_for(state="visible")
            assert "The fleet queued it." in result.inner_text()
            assert not page.locator("[data-test-id=crowdfab-queue-error]").is_visible()
            page.screenshot(path=str(ARTIFACTS / "octoprint-send-to-queue.png"), full_page=True)
        finally:
            context.close()
    assert not errors, errors

    # The plugin itself refuses a copy count out of 1..50 before calling the fleet.
    for bad in (0, 51, "2", True):
        refused = octoprint.admin.post(
            f"{octoprint.url}/api/plugin/crowdfab",
            json={"command": "queue_file", "path": FILENAME, "token": token, "copies": bad},
            timeout=10,
        )
        assert refused.status_code == 400, (bad, refused.text)
        assert "copies" in refused.json()["error"]

    mine = fleet.api(token, "GET", "/jobs/mine")
    assert mine.status_code == 200, mine.text
    jobs = [job for job in mine.json()["jobs"] if job["filename"] == FILENAME]
    assert len(jobs) == 2, mine.json()
    assert {job["state"] for job in jobs} == {"queued"}
