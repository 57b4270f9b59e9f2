"""The dashboard in a real browser (Debian's chromium) against a fleet served by waitress."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest

from fleet.config import FleetConfig
from fleet.gcode.generate import generate_box
from fleet.geometry import Box
from fleet.http_protocol import BrokerAddress, EnrollRequest
from fleet.models import LiveStatus, NewPrinter, PrinterSpec, Role
from fleet.server import Fleet
from fleet.states import JobState
from tests.octoprint.test_hobbyist import png

from .browser import ARTIFACTS, axe_script, browser_unavailable, chromium, served
from .conftest import PASSWORD, VOLUME

pytestmark = pytest.mark.skipif(browser_unavailable() is not None, reason=str(browser_unavailable()))

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[Fleet, str]]:
    fleet = Fleet.open(FleetConfig(data_dir=tmp_path_factory.mktemp("web") / "data", port=0, threads=6))
    svc = fleet.app
    manager, _ = svc.members.add_member("manager", Role.MANAGER)
    svc.identity.set_password(manager, manager.id, PASSWORD)
    alice, _ = svc.members.add_member("alice", Role.MEMBER)
    svc.identity.set_password(alice, alice.id, PASSWORD)
    svc.printers.add_printer(
        manager, NewPrinter("mk4", "Prusa MK4", PrinterSpec(Box.from_dict(VOLUME), material="PLA"))
    )
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
    svc = fleet.app
    alice = svc.store.get_member_by_name("alice")
    first = (
        svc.intake.submit_job(alice, io.BytesIO(generate_box().encode()), filename="first.gcode").jobs[0].id
    )
    assert svc.dispatcher.dispatch_pass() == [(first, "mk4")]
    svc.reports.printer_job_event("mk4", first, JobState.PRINTING, "started")
    svc.reports.set_live(
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
    svc.reports.finish_job(first, JobState.DONE, actor="printer:mk4", reason="finished")
    page.wait_for_selector('#printer-mk4[data-state="awaiting_bed_clear"]', timeout=10_000)
    assert card.locator('[data-field="state"]').inner_text() == "waiting for bed clear"
    assert card.locator('[data-field="plate"]').is_hidden(), "no photo yet: no image"
    # The printer sends the photo of its plate: it shows on the card, beside "bed cleared", live.
    svc.snapshots.receive(svc.store.get_printer("mk4"), "mk4", first, png(64, 48, (40, 160, 90)))
    page.wait_for_function(
        "() => { const img = document.querySelector('#printer-mk4 [data-field=plate]:not([hidden]) img');"
        " return img && img.complete && img.naturalWidth === 64; }",
        timeout=10_000,
    )
    assert page.evaluate("window.notReloaded") is True
    shoot(page, "printers")

    # Confirm the plate is clear; the next job is dispatched (as the fleet link would) and shows up live.
    page.get_by_role("button", name="The bed is clear").click()
    page.wait_for_url(f"{url}/")
    assert "Prusa MK4 is free for the next print." in page.locator(".flash").inner_text()
    page.wait_for_function("document.querySelector('[data-live-status]').textContent.startsWith('Live')")
    page.evaluate("window.notReloaded = true")
    [(second, _)] = svc.dispatcher.dispatch_pass()
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
    wide = {}
    for path in (
        "/",
        "/queue",
        "/submit",
        "/printers/mk4",
        "/account",
        "/webhooks",
        "/jobs/99999",
        "/prices",
        "/ledger",
        "/groups",
    ):
        page.goto(url + path)
        page.add_script_tag(path=str(script))
        critical[path] = page.evaluate(AXE_CRITICAL)
        if path in ("/prices", "/ledger", "/groups"):
            wide[path] = page.evaluate("document.documentElement.scrollWidth")
    # In French too: the printers page and an error page.
    page.get_by_role("button", name="Français").click()
    page.wait_for_function("document.documentElement.lang === 'fr'")
    for path in ("/", "/jobs/99999"):
        page.goto(url + path)
        page.add_script_tag(path=str(script))
        critical[f"fr {path}"] = page.evaluate(AXE_CRITICAL)
    context.close()
    assert len(critical) == 13 and all(found == [] for found in critical.values()), critical
    assert all(width <= PHONE["width"] for width in wide.values()), f"pages scroll sideways at 390 px: {wide}"


AXE_CRITICAL = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => v.impact === "critical").map(v => v.id + ": " + v.help);
}"""


def wait_live(page) -> None:
    """Wait until the page's live updates are connected (in either language)."""
    page.wait_for_function(
        "() => { const s = document.querySelector('[data-live-status]').textContent;"
        " return s.startsWith('Live') || s.startsWith('En direct'); }"
    )


def wait_reading(page, printer_id: str, heater: str, value: str) -> None:
    page.wait_for_function(
        "([card, heater, value]) => document.querySelector("
        "`#printer-${card} [data-heater=${heater}] .reading-value`)?.textContent === value",
        arg=[printer_id, heater, value],
        timeout=10_000,
    )


def test_a_printer_enrolled_while_the_page_is_open_appears_live_with_compact_readings(site, browser):
    fleet, url = site
    svc = fleet.app
    manager = svc.store.get_member_by_name("manager")
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, url, "manager")
    wait_live(page)
    page.evaluate("window.notReloaded = true")

    # A printer spends an enrollment code (as the plugin does through the API) while the page is open.
    code, _ = svc.enrollment.create_enrollment_code(manager, 3600)
    svc.enrollment.node_mqtt = BrokerAddress("127.0.0.1", 1883)  # where enrolled printers are told to connect
    try:
        caps = {"volume": VOLUME, "nozzle_diameter": 0.4, "material": "ABS"}
        enrolled = svc.enrollment.enroll(
            EnrollRequest.from_json({"code": code, "name": "Voron", "capabilities": caps})
        )
    finally:
        svc.enrollment.node_mqtt = None
    assert enrolled.printer.id == "voron"
    svc.reports.set_live(
        "voron",
        LiveStatus("idle", {"tool0": (212.4, 215.0), "bed": (99.6, 100.0)}, None, None, None, svc.clock()),
    )
    card = page.locator("#printer-voron")
    card.wait_for(timeout=10_000)
    assert page.evaluate("window.notReloaded") is True, "the card came without a reload"
    assert "A new printer joined." in page.locator("[data-live-status]").inner_text()
    wait_reading(page, "voron", "bed", "100/100°C")
    readings = card.locator(".reading")
    assert [r.text_content().strip() for r in readings.all()] == [
        "Material ABS",
        "nozzle 212/215°C",
        "bed 100/100°C",
    ]
    # Live numbers change in place, without rebuilding the card.
    svc.reports.set_live(
        "voron",
        LiveStatus("idle", {"tool0": (180.0, 215.0), "bed": (99.6, 100.0)}, None, None, None, svc.clock()),
    )
    wait_reading(page, "voron", "tool0", "180/215°C")
    assert page.evaluate("window.notReloaded") is True

    # A heater more: the readings are rebuilt, still nozzles first.
    heaters = {"tool0": (180.0, 215.0), "tool1": (150.0, 0.0), "bed": (99.6, 100.0)}
    svc.reports.set_live("voron", LiveStatus("idle", heaters, None, None, None, svc.clock()))
    wait_reading(page, "voron", "tool1", "150/0°C")
    labels = [r.text_content().strip() for r in card.locator(".temp .reading-label").all()]
    assert labels == ["nozzle", "nozzle 2", "bed"]
    svc.reports.set_live(
        "voron",
        LiveStatus("idle", {"tool0": (180.0, 215.0), "bed": (99.6, 100.0)}, None, None, None, svc.clock()),
    )
    wait_reading(page, "voron", "tool0", "180/215°C")
    page.wait_for_function(
        "() => !document.querySelector('#printer-voron [data-heater=tool1]')", timeout=10_000
    )

    # A farm view's card: material and temperatures on one line, at a desk and on a phone.
    for size, name in ((DESKTOP, "desktop"), (PHONE, "390")):
        page.set_viewport_size(size)
        boxes = [box for box in (r.bounding_box() for r in readings.all()) if box]
        middles = [box["y"] + box["height"] / 2 for box in boxes]
        line = min(box["height"] for box in boxes)
        assert max(middles) - min(middles) < line / 2, f"the readings wrap at {name}: {boxes}"
        overflow = card.evaluate("node => node.scrollWidth - node.clientWidth")
        assert overflow <= 0, f"the card overflows by {overflow} px at {name}"
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#printer-mk4").screenshot(path=str(ARTIFACTS / f"dashboard-card-{name}.png"))
        card.screenshot(path=str(ARTIFACTS / f"dashboard-card-new-{name}.png"))
    page.set_viewport_size(DESKTOP)
    shoot(page, "printers-live-added")
    context.close()


def test_service_errors_read_in_french_on_french_pages(site, browser, tmp_path):
    fleet, url = site
    svc = fleet.app
    alice = svc.store.get_member_by_name("alice")
    job_id = svc.intake.submit_job(alice, io.BytesIO(generate_box().encode()), filename="fr.gcode").jobs[0].id
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, url, "alice")
    page.get_by_role("button", name="Français").click()
    page.wait_for_function("document.documentElement.lang === 'fr'")

    # A manager's page: refused, in French.
    page.goto(f"{url}/members")
    assert page.locator("main .error").inner_text() == "Seul un responsable de l'atelier peut faire cela."
    assert page.locator("main .error").get_attribute("lang") is None

    # The job is cancelled elsewhere while its page is open: cancelling it again is refused, in French.
    page.goto(f"{url}/jobs/{job_id}")
    svc.jobs.cancel_job(alice, job_id)
    page.get_by_role("button", name="Annuler").click()
    error = page.locator("main .error")
    assert error.inner_text() == f"Le travail n°{job_id} est déjà annulé : il n'y a rien à annuler."
    shoot(page, "error-fr")

    # The submit form checks the file in place: its refusal is French too.
    gcode = tmp_path / "fr.gcode"
    gcode.write_text(generate_box())
    page.goto(f"{url}/submit")
    page.locator("input[type=file]").set_input_files(str(gcode))
    page.locator("input[name=material]").fill("P L A!")
    page.locator("#analyze").click()
    page.locator("main > .error").wait_for()
    text = page.locator("main > .error").inner_text()
    assert text.startswith("La matière doit être un nom comme PLA"), text
    context.close()
