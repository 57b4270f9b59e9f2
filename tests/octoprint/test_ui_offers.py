"""A home printer that asks first: a real fleet offers community jobs to OctoPrint, whose owner declines
one and accepts the next in the Fablab tab, through chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fleet.gcode.generate import generate_box
from tests.brokers import wait_until
from tests.e2e.test_fleet_octoprint import RunningFleet, job_state, octoprint_for, submit, the_printer
from tests.octoprint.test_ui import log_in, octoprint_page, wait_for_link
from tests.octoprint_server import OctoPrintServer
from tests.web.browser import ARTIFACTS, browser_unavailable

pytestmark = pytest.mark.skipif(browser_unavailable() is not None, reason=str(browser_unavailable()))

#: The tab polls the plugin every 3 s while shown; an offer reaches it within a dispatch pass (5 s) more.
OFFER_TIMEOUT_MS = 45_000


@pytest.fixture()
def fleet(tmp_path: Any) -> Iterator[RunningFleet]:
    with RunningFleet(tmp_path / "fleet") as running:
        yield running


def history(fleet: RunningFleet, token: str, job_id: int) -> list[dict[str, Any]]:
    answer = fleet.api(token, "GET", f"/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["history"]
    return events


def test_the_owner_declines_one_community_job_and_accepts_the_next(fleet: RunningFleet) -> None:
    manager = fleet.cli("member", "add", "ada", "--role", "manager")["token"]
    member = fleet.cli("member", "add", "alice")["token"]
    code = fleet.cli("enroll-code")["code"]
    # A home printer: its owner answers every community job (well within the time the fleet waits).
    octoprint: OctoPrintServer = octoprint_for(fleet, code, auto_accept=False, accept_timeout_s=600)
    try:
        wait_until(lambda: the_printer(fleet, manager, "idle"), 60, "the enrolled printer to report idle")
        part = generate_box(10, 10, 0.6, origin=(50.0, 50.0))
        first = submit(fleet, member, part, "first-offer.gcode")

        with octoprint_page() as page:
            log_in(page, octoprint.url)
            page.click("#tab_plugin_crowdfab_link a")
            wait_for_link(page, "online", OFFER_TIMEOUT_MS)
            offer = page.locator("[data-test-id=crowdfab-offer]")
            offer.wait_for(state="visible", timeout=OFFER_TIMEOUT_MS)
            assert "first-offer.gcode" in offer.inner_text()
            assert job_state(fleet, member, first) == "assigned", "the fleet waits for the owner"
            page.screenshot(path=str(ARTIFACTS / "octoprint-offer.png"), full_page=True)

            # Declined: the fleet records it and puts the job back in the queue.
            page.click("[data-test-id=crowdfab-decline]")
            offer.wait_for(state="detached", timeout=OFFER_TIMEOUT_MS)
            wait_until(lambda: job_state(fleet, member, first) == "queued", 30, "the job to be queued again")
            back = history(fleet, member, first)[-1]
            assert (back["from"], back["to"]) == ("assigned", "queued"), back
            assert "declined" in back["reason"], back

            # The next community job: accepted, it prints on this printer.
            second = submit(fleet, member, part, "second-offer.gcode")
            offer.wait_for(state="visible", timeout=OFFER_TIMEOUT_MS)
            assert "second-offer.gcode" in offer.inner_text()
            page.click("[data-test-id=crowdfab-accept]")
            wait_until(
                lambda: job_state(fleet, member, second) in ("printing", "done"), 60, "the print to start"
            )
            job = page.locator("[data-test-id=crowdfab-job]")
            job.wait_for(state="visible", timeout=OFFER_TIMEOUT_MS)
            assert f"#{second}" in job.inner_text()
            assert offer.count() == 0
            page.screenshot(path=str(ARTIFACTS / "octoprint-offer-accepted.png"), full_page=True)
        assert not page.js_errors, page.js_errors

        steps = [event["to"] for event in history(fleet, member, second)]
        assert steps[:4] == ["submitted", "queued", "assigned", "printing"], steps
        # The declined job waits in the queue: this printer is not offered it again for a while.
        assert job_state(fleet, member, first) == "queued"
    finally:
        octoprint.stop()
