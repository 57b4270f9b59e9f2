"""The dashboard in a real browser (Debian's chromium) against a fleet served by waitress."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest

from fleet.config import FleetConfig
from fleet.gcode.generate import generate_box
from fleet.models import LiveStatus, Role
from fleet.server import Fleet
from fleet.states import JobState

from .browser import ARTIFACTS, axe_script, browser_unavailable, chromium, served
from .conftest import PASSWORD, VOLUME

pytestmark = pytest.mark.skipif(browser_unavailable() is not None, reason=str(browser_unavailable()))

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[Fleet, str]]:
    fleet = Fleet.open(FleetConfig(data_dir=tmp_path_factory.mktemp("web") / "data", port=0, threads=6))
    svc = fleet.service
    manager, _ = svc.add_member("manager", Role.MANAGER)
    svc.set_password(manager, manager.id, PASSWORD)
    alice, _ = svc.add_member("alice", Role.MEMBER)
    svc.set_password(alice, alice.id, PASSWORD)
    svc.add_printer(manager, {"id": "mk4", "name": "Prusa MK4", "volume": VOLUME, "material": "PLA"})
    with served(fleet) as url:
        yield fleet, url
    fleet.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


def sign_in(page, url: str, name: str) -> None:
    page.goto(f"{url}/signin")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")


def shoot(page, name: str) -> None:
    """Screenshots at desktop size and at a phone's 390 px, into tests/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}-390.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the {name} page scrolls sideways at 390 px ({width} px wide)"
    page.set_viewport_size(size)


def test_a_member_submits_watches_the_printer_finish_live_and_clears_the_bed(site, browser, tmp_path):
    fleet, url = site
    svc = fleet.service
    alice = svc.store.get_member_by_name("alice")
    first = svc.submit_job(alice, io.BytesIO(generate_box().encode()), filename="first.gcode").jobs[0].id
    assert svc.dispatch_pass() == [(first, "mk4")]
    svc.printer_job_event("mk4", first, JobState.PRINTING, "started")
    svc.set_live(
        "mk4", LiveStatus("printing", {"hotend": (215.0, 215.0)}, 37.0, svc.clock() + 900, first, svc.clock())
    )

    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(f"{url}/signin")
    shoot(page, "signin")
    sign_in(page, url, "alice")

    # Submit: the analysis shows first, the confirm sends the same file.
    gcode = tmp_path / "second.gcode"
    gcode.write_text(generate_box(25, 25, 4))
    page.goto(f"{url}/submit")
    page.get_by_label("G-code file").set_input_files(str(gcode))
    page.get_by_role("button", name="Check the file").click()
    page.get_by_role("button", name="Submit to the queue").wait_for()
    assert "25.0 \u00d7 25.0 \u00d7 4.0 mm" in page.locator("#analysis").inner_text()
    shoot(page, "submit")
    page.get_by_role("button", name="Submit to the queue").click()
    page.wait_for_url(re.compile(r"/queue(#job-\d+)?$"))
    mine = page.locator("li.entry.mine")
    assert mine.count() == 1
    assert "Every suitable printer is busy" in mine.inner_text()
    shoot(page, "queue")

    # The printer card goes from printing to waiting for a bed clear without a reload.
    page.goto(f"{url}/")
    card = page.locator("#printer-mk4")
    assert card.get_attribute("data-state") == "printing"
    page.wait_for_function("document.querySelector('[data-live-status]').textContent.startsWith('Live')")
    page.evaluate("window.notReloaded = true")
    svc.finish_job(first, JobState.DONE, actor="printer:mk4", reason="finished")
    page.wait_for_selector('#printer-mk4[data-state="awaiting_bed_clear"]', timeout=10_000)
    assert card.locator('[data-field="state"]').inner_text() == "waiting for bed clear"
    assert page.evaluate("window.notReloaded") is True
    shoot(page, "printers")

    # Confirm the plate is clear; the next job is dispatched (as the fleet link would) and shows up live.
    page.get_by_role("button", name="The bed is clear").click()
    page.wait_for_url(f"{url}/")
    assert "Prusa MK4 is free for the next print." in page.locator(".flash").inner_text()
    page.wait_for_function("document.querySelector('[data-live-status]').textContent.startsWith('Live')")
    page.evaluate("window.notReloaded = true")
    [(second, _)] = svc.dispatch_pass()
    page.wait_for_selector('#printer-mk4[data-state="assigned"]', timeout=10_000)
    assert f"#{second}" in card.locator('[data-field="job"]').inner_text()
    assert page.evaluate("window.notReloaded") is True

    page.goto(f"{url}/jobs/{second}")
    shoot(page, "job")
    context.close()


def test_the_pages_have_no_critical_accessibility_findings(site, browser):
    script = axe_script()
    if script is None:
        pytest.skip("npm is not installed, so axe-core cannot be fetched for the accessibility check")
    _, url = site
    # axe is injected as an inline script, which the dashboard's CSP rightly forbids; the test bypasses it.
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{url}/signin")
    critical = {}
    page.add_script_tag(path=str(script))
    critical["signin"] = page.evaluate(AXE_CRITICAL)
    sign_in(page, url, "manager")
    for path in ("/", "/queue", "/submit", "/printers/mk4", "/account"):
        page.goto(url + path)
        page.add_script_tag(path=str(script))
        critical[path] = page.evaluate(AXE_CRITICAL)
    context.close()
    assert len(critical) == 6 and all(found == [] for found in critical.values()), critical


AXE_CRITICAL = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => v.impact === "critical").map(v => v.id + ": " + v.help);
}"""
