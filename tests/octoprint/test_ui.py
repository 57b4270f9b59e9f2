"""The plugin's face in a real OctoPrint, seen through chromium: the Fablab tab and the settings page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.octoprint_server import OctoPrintServer
from tests.web.browser import ARTIFACTS, browser_unavailable, chromium

pytestmark = pytest.mark.skipif(browser_unavailable() is not None, reason=str(browser_unavailable()))

#: A stored enrollment code but no fleet URL: the plugin stays "not enrolled" and never calls out.
SETTINGS = {"fleet_url": "", "enroll_code": "stored-secret-code", "material": "PETG"}
UI_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def octoprint() -> Iterator[OctoPrintServer]:
    server = OctoPrintServer(SETTINGS).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def page(octoprint: OctoPrintServer) -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        try:
            yield page
        finally:
            context.close()


def log_in(page: Any, url: str) -> None:
    page.goto(f"{url}/")
    page.wait_for_selector("#login-user")
    page.fill("#login-user", "admin")
    page.fill("#login-password", "admin-password")
    page.click("#login-button")
    # The UI is bound once the settings link is there and the plugin's tab is shown.
    page.wait_for_selector("#navbar_show_settings", state="visible")
    page.wait_for_selector("#tab_plugin_crowdfab_link", state="visible")


def test_fablab_tab_and_settings_page(octoprint: OctoPrintServer, page: Any) -> None:
    log_in(page, octoprint.url)

    page.click("#tab_plugin_crowdfab_link a")
    link = page.locator("[data-test-id=crowdfab-link]")
    link.wait_for(state="visible")
    page.wait_for_function(
        "() => document.querySelector('[data-test-id=crowdfab-link]').textContent.trim() === 'not enrolled'"
    )
    assert page.locator("#tab_plugin_crowdfab_link a").inner_text().strip() == "Fablab"
    assert page.locator("[data-test-id=crowdfab-offer]").count() == 0, "no community job is pending"
    assert page.locator("[data-test-id=crowdfab-queue-form]").is_visible(), "admins may queue files"
    page.screenshot(path=str(ARTIFACTS / "octoprint-fablab-tab.png"), full_page=True)

    page.click("#navbar_show_settings")
    page.wait_for_selector("#settings_dialog", state="visible")
    page.click("#settings_plugin_crowdfab_link a")
    fleet_url = page.locator("#crowdfab-fleet-url")
    fleet_url.wait_for(state="visible")
    assert page.locator("#crowdfab-material").input_value() == "PETG"
    code = page.locator("#crowdfab-enroll-code")
    assert code.get_attribute("type") == "password"
    assert code.input_value() == "", "the stored enrollment code is never shown"
    page.screenshot(path=str(ARTIFACTS / "octoprint-crowdfab-settings.png"))

    # Saving keeps what the page edits and sets a new code only when one was typed.
    page.fill("#crowdfab-material", "ABS")
    page.check("input[name=crowdfab-auto-accept][value=ask]")
    page.fill("#crowdfab-enroll-code", "typed-new-code")
    page.click("[data-test-id=settings-save]")
    page.wait_for_selector("#settings_dialog", state="hidden")
    saved = octoprint.admin.get(f"{octoprint.url}/api/settings", timeout=5).json()["plugins"]["crowdfab"]
    assert (saved["material"], saved["auto_accept"], saved["enroll_code"]) == ("ABS", False, "typed-new-code")

    assert not page.js_errors, page.js_errors
