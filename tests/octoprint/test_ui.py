"""The plugin's face in a real OctoPrint, seen through chromium: the Fablab tab and the settings page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.octoprint_server import OctoPrintServer
from tests.web.browser import ARTIFACTS, browser_unavailable, chromium

pytestmark = pytest.mark.skipif(browser_unavailable() is not None, reason=str(browser_unavailable()))

#: A stored enrollment code but no fleet URL: the plugin stays "not enrolled" and never calls out. The
#: lending hours name an hour that does not exist: the tab and the settings page say so.
SETTINGS = {
    "fleet_url": "",
    "enroll_code": "stored-secret-code",
    "material": "PETG",
    "lending_windows": "mon-fri 25:00-08:00",
    "lending_time_zone": "Europe/Paris",
}
LENDING_ERROR = (
    "lending hours 'mon-fri 25:00-08:00': a time must read like 20:00, from 00:00 to 24:00, and a window "
    "starts before 24:00"
)
UI_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def octoprint() -> Iterator[OctoPrintServer]:
    server = OctoPrintServer(SETTINGS).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def octoprint_page() -> Iterator[Any]:
    """A desktop-sized page in Debian's chromium; the page's script errors collect in ``js_errors``."""
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


@pytest.fixture()
def page(octoprint: OctoPrintServer) -> Iterator[Any]:
    with octoprint_page() as opened:
        yield opened


def log_in(page: Any, url: str, user: str = "admin") -> None:
    page.goto(f"{url}/")
    page.wait_for_selector("#login-user")
    page.fill("#login-user", user)
    page.fill("#login-password", f"{user}-password")
    page.click("#login-button")
    # The UI is bound once the plugin's tab is shown (and, for an admin, the settings link).
    if user == "admin":
        page.wait_for_selector("#navbar_show_settings", state="visible")
    page.wait_for_selector("#tab_plugin_crowdfab_link", state="visible")


def wait_for_link(page: Any, text: str, timeout_ms: int = UI_TIMEOUT_MS) -> None:
    """Wait until the Fablab tab shows the link to the fleet as ``text``."""
    page.wait_for_function(
        "text => document.querySelector('[data-test-id=crowdfab-link]').textContent.trim() === text",
        arg=text,
        timeout=timeout_ms,
    )


def test_fablab_tab_and_settings_page(octoprint: OctoPrintServer, page: Any) -> None:
    log_in(page, octoprint.url)

    page.click("#tab_plugin_crowdfab_link a")
    link = page.locator("[data-test-id=crowdfab-link]")
    link.wait_for(state="visible")
    wait_for_link(page, "not enrolled")
    assert page.locator("#tab_plugin_crowdfab_link a").inner_text().strip() == "Fablab"
    assert page.locator("[data-test-id=crowdfab-offer]").count() == 0, "no community job is pending"
    assert page.locator("[data-test-id=crowdfab-queue-form]").is_visible(), "admins may queue files"
    lending = page.locator("#tab_plugin_crowdfab [data-test-id=crowdfab-lending-error]")
    lending.wait_for(state="visible")
    assert "the printer is not lent until they are fixed" in lending.inner_text()
    assert LENDING_ERROR in lending.inner_text()
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
    lending = page.locator("#settings_plugin_crowdfab [data-test-id=crowdfab-lending-error]")
    assert lending.is_visible() and LENDING_ERROR in lending.inner_text()
    lending.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "octoprint-crowdfab-settings-lending-error.png"))
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


def test_the_fablab_tab_speaks_french_when_the_user_does(octoprint: OctoPrintServer, page: Any) -> None:
    # The instance's default language (Settings > Appearance), as an admin sets it. With only a user's own
    # language setting, OctoPrint 1.11 rendered the templates in French but left the page's LOCALE (and so
    # its JavaScript catalogue) English on the first load after signing in.
    def language(code: str) -> None:
        chosen = octoprint.admin.post(
            f"{octoprint.url}/api/settings", json={"appearance": {"defaultLanguage": code}}, timeout=10
        )
        assert chosen.status_code == 200, chosen.text

    language("fr")
    try:
        log_in(page, octoprint.url)
        tab_link = page.locator("#tab_plugin_crowdfab_link a")
        assert tab_link.inner_text().strip() == "Fablab"
        tab_link.click()
        tab = page.locator("[data-test-id=crowdfab-tab]")
        tab.wait_for(state="visible")
        # Server-rendered texts (from the compiled messages.mo) ...
        assert tab.locator("h4").first.inner_text().strip() == "Lien avec la flotte"
        assert page.locator("label[for=crowdfab-queue-copies]").inner_text().strip() == "Exemplaires"
        send = page.locator("[data-test-id=crowdfab-queue-send]")
        assert send.inner_text().strip() == "Envoyer à la file du fablab"
        # ... and the script's (OctoPrint's JavaScript catalogue, which it builds from messages.po).
        wait_for_link(page, "non inscrite")
        caption = page.locator("#crowdfab-queue-file option").first.inner_text().strip()
        assert caption == "Choisissez un fichier"
        assert "Link to the fleet" not in tab.inner_text()
        lending = tab.locator("[data-test-id=crowdfab-lending-error]")
        assert "Les conditions de prêt ne sont pas comprises" in lending.inner_text()
        # What is wrong with them is said in French too, not in the English of the log.
        assert (
            "heures de prêt 'mon-fri 25:00-08:00' : une heure s'écrit comme 20:00, de 00:00 à 24:00"
            in lending.inner_text()
        )
        assert "must read like" not in lending.inner_text()
        page.screenshot(path=str(ARTIFACTS / "octoprint-fablab-tab-fr.png"), full_page=True)

        page.click("#navbar_show_settings")
        page.wait_for_selector("#settings_dialog", state="visible")
        page.click("#settings_plugin_crowdfab_link a")
        page.locator("#crowdfab-fleet-url").wait_for(state="visible")
        assert page.locator("label[for=crowdfab-fleet-url]").inner_text().strip() == "Adresse de la flotte"
        page.screenshot(path=str(ARTIFACTS / "octoprint-crowdfab-settings-fr.png"))

        # The plugin's own refusals, which the tab shows, follow the language too.
        refused = octoprint.admin.post(
            f"{octoprint.url}/api/plugin/crowdfab",
            json={"command": "queue_file", "path": "none.gcode", "token": "t"},
            timeout=10,
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"].startswith("indiquez d'abord l'adresse de la flotte")
    finally:
        language("_default")
    assert not page.js_errors, page.js_errors
