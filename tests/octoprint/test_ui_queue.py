"""Sending a file to a real fleet's queue from OctoPrint, through chromium: from the Fablab tab's form and
from the "Send to fablab queue" action on a file in OctoPrint's own file list."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Error as PlaywrightError

from fleet.gcode.generate import generate_box
from tests.e2e.test_fleet_octoprint import RunningFleet
from tests.octoprint.test_ui import log_in, octoprint_page
from tests.octoprint_server import OctoPrintServer
from tests.web.browser import ARTIFACTS, browser_unavailable
from tests.web.conftest import csrf_of

pytestmark = pytest.mark.skipif(browser_unavailable() is not None, reason=str(browser_unavailable()))

FILENAME = "queue-me.gcode"


def upload_gcode(octoprint: OctoPrintServer, name: str, gcode: str) -> requests.Response:
    """Put a file into OctoPrint's local storage; return the answer to dismissing the File Check wizard.

    With a file uploaded, the bundled File Check plugin would open its setup wizard over the page.
    """
    uploaded = octoprint.admin.post(
        f"{octoprint.url}/api/files/local", files={"file": (name, gcode.encode())}, timeout=10
    )
    assert uploaded.status_code == 201, uploaded.text
    return octoprint.admin.post(
        f"{octoprint.url}/api/setup/wizard", json={"handled": ["file_check"]}, timeout=10
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    with RunningFleet(tmp_path_factory.mktemp("queue") / "fleet") as running:
        yield running


@pytest.fixture(scope="module")
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
    seen = upload_gcode(octoprint, FILENAME, generate_box(12, 12, 1.0, origin=(50.0, 50.0)))
    assert seen.status_code == 204, seen.text

    with octoprint_page() as page:
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
        page.wait_for_function("() => !document.querySelector('[data-test-id=crowdfab-queue-send]').disabled")
        send.click()
        result = page.locator("[data-test-id=crowdfab-queue-result]")
        result.wait_for(state="visible")
        assert "The fleet queued it." in result.inner_text()
        assert not page.locator("[data-test-id=crowdfab-queue-error]").is_visible()
        page.screenshot(path=str(ARTIFACTS / "octoprint-send-to-queue.png"), full_page=True)
    assert not page.js_errors, page.js_errors

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


def test_the_file_lists_action_sends_a_file_with_copies_and_material(
    fleet: RunningFleet, octoprint: OctoPrintServer
) -> None:
    token = fleet.cli("member", "add", "bob")["token"]
    name = "from-the-list.gcode"
    upload_gcode(octoprint, name, generate_box(10, 10, 0.6, origin=(60.0, 60.0)))

    with octoprint_page() as page:
        log_in(page, octoprint.url)
        # The action sits with OctoPrint's own buttons on the file's entry in the Files sidebar.
        entry = page.locator("#files .gcode_files .entry.machinecode", has_text=name)
        entry.wait_for(state="visible")
        action = entry.locator("[data-test-id=crowdfab-file-send]")
        assert action.is_visible(), "the action shows for a user who may queue files"
        assert action.get_attribute("aria-label") == "Send to fablab queue"
        assert entry.locator(".action-buttons .btn-files-print").count() == 1, "OctoPrint's own stay"
        page.screenshot(path=str(ARTIFACTS / "octoprint-file-list-action.png"))
        entry.screenshot(path=str(ARTIFACTS / "octoprint-file-list-entry.png"))
        action.click()

        dialog = page.locator("[data-test-id=crowdfab-send-dialog]")
        dialog.wait_for(state="visible")
        assert dialog.locator("[data-test-id=crowdfab-send-path]").inner_text() == name
        confirm = dialog.locator("[data-test-id=crowdfab-send-confirm]")
        assert confirm.is_disabled(), "no token yet"
        page.fill("#crowdfab-send-copies", "3")
        page.fill("#crowdfab-send-material", "PETG")
        page.fill("#crowdfab-send-token", "cfm_not-a-real-token")
        confirm.click()
        # A refusal stays in the dialog, with the fleet's words.
        refusal = dialog.locator("[data-test-id=crowdfab-send-error]")
        refusal.wait_for(state="visible")
        assert "The fleet refused it:" in refusal.inner_text() and "token" in refusal.inner_text()
        page.fill("#crowdfab-send-token", token)
        page.screenshot(path=str(ARTIFACTS / "octoprint-file-list-dialog.png"))
        confirm.click()
        dialog.wait_for(state="hidden")
        page.locator(".ui-pnotify", has_text="Sent to the fablab queue").wait_for(state="visible")
    assert not page.js_errors, page.js_errors

    mine = fleet.api(token, "GET", "/jobs/mine")
    assert mine.status_code == 200, mine.text
    jobs = [job for job in mine.json()["jobs"] if job["filename"] == name]
    assert len(jobs) == 3, mine.json()
    assert {(job["state"], job["material"]) for job in jobs} == {("queued", "PETG")}


def dashboard_revoke(fleet: RunningFleet, name: str, password: str, label: str) -> str:
    """The member on the fleet's dashboard: sign in, revoke the token, make a link code (returned)."""
    web = requests.Session()
    signin = web.get(f"{fleet.url}/signin", timeout=10)
    answer = web.post(
        f"{fleet.url}/signin",
        data={"name": name, "password": password, "csrf": csrf_of(signin.text)},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.url.rstrip("/") == fleet.url, answer.status_code
    account = web.get(f"{fleet.url}/account", timeout=10).text
    row = re.search(
        r"<td>" + re.escape(label) + r'</td>.*?name="token" value="([0-9a-f]{64})"', account, re.DOTALL
    )
    assert row, f"the account page lists no token named {label!r}"
    revoked = web.post(
        f"{fleet.url}/account/tokens/revoke",
        data={"token": row.group(1), "csrf": csrf_of(account)},
        timeout=10,
    )
    assert "The token is revoked" in revoked.text
    made = web.post(f"{fleet.url}/account/link-code", data={"csrf": csrf_of(revoked.text)}, timeout=10)
    code = re.search(r'<code id="link-code">([A-Z0-9-]+)</code>', made.text)
    assert code, "the account page shows no link code"
    return code.group(1)


def test_a_member_signs_in_from_the_tab_sends_as_themselves_and_a_revoked_token_signs_them_out(
    fleet: RunningFleet, octoprint: OctoPrintServer
) -> None:
    added = fleet.cli("member", "add", "carol")
    password = "carol's fleet password"
    set_password = fleet.api(
        added["token"], "PUT", f"/members/{added['id']}/password", json={"password": password}
    )
    assert set_password.status_code == 204, set_password.text
    name = "as-carol.gcode"
    upload_gcode(octoprint, name, generate_box(8, 8, 0.6, origin=(70.0, 70.0)))
    kept = octoprint.basedir / "data" / "crowdfab" / "member_tokens.json"

    with octoprint_page() as page:
        answers: list = []
        page.on("response", lambda answer: answers.append(answer))
        log_in(page, octoprint.url)
        page.click("#tab_plugin_crowdfab_link a")
        form = page.locator("[data-test-id=crowdfab-sign-in-form]")
        form.wait_for(state="visible")
        page.fill("#crowdfab-sign-in-name", "carol")
        page.fill("#crowdfab-sign-in-password", "not the password")
        page.click("[data-test-id=crowdfab-sign-in]")
        wrong = page.locator("[data-test-id=crowdfab-sign-in-error]")
        wrong.wait_for(state="visible")
        assert "wrong name or password" in wrong.inner_text()
        page.fill("#crowdfab-sign-in-password", password)
        page.click("[data-test-id=crowdfab-sign-in]")
        page.locator("[data-test-id=crowdfab-signed-in]").wait_for(state="visible")
        assert not page.locator("#crowdfab-queue-token").is_visible(), "signed in: no token to paste"
        page.screenshot(path=str(ARTIFACTS / "octoprint-signed-in.png"), full_page=True)

        page.wait_for_selector(f'#crowdfab-queue-file option[value="{name}"]', state="attached")
        page.select_option("#crowdfab-queue-file", name)
        page.wait_for_function("() => !document.querySelector('[data-test-id=crowdfab-queue-send]').disabled")
        page.click("[data-test-id=crowdfab-queue-send]")
        result = page.locator("[data-test-id=crowdfab-queue-result]")
        result.wait_for(state="visible")
        assert "The fleet queued it." in result.inner_text()

        # The token is on the server only: in the plugin's own file, in nothing the browser got.
        token = json.loads(kept.read_text())["admin"]
        assert token.startswith("cfm_") and kept.stat().st_mode & 0o077 == 0
        assert token not in page.evaluate("() => JSON.stringify(window.localStorage)")
        for seen in (
            page.content(),
            octoprint.admin.get(f"{octoprint.url}/api/plugin/crowdfab", timeout=10).text,
        ):
            assert token not in seen
        for login in (
            octoprint.admin.post(f"{octoprint.url}/api/login", json={"passive": True}, timeout=10),
        ):
            assert login.status_code == 200 and token not in login.text
        read = 0
        for answer in answers:
            try:
                body = answer.body()
            except PlaywrightError:  # a redirect or a stream has no body to read back
                body = b""
            read += bool(body)
            assert token.encode() not in body, answer.url
        assert read > 10, "the pages and API answers the browser got were read"

        label = f"OctoPrint user admin on printer 127.0.0.1:{octoprint.port}"
        code = dashboard_revoke(fleet, "carol", password, label)

        result_before = result.inner_text()
        page.click("[data-test-id=crowdfab-queue-send]")
        refused = page.locator("[data-test-id=crowdfab-queue-error]")
        refused.wait_for(state="visible")
        assert "signed out of the fleet" in refused.inner_text() and "sign in again" in refused.inner_text()
        form.wait_for(state="visible")
        assert result_before
        page.screenshot(path=str(ARTIFACTS / "octoprint-signed-out.png"), full_page=True)
        assert "admin" not in json.loads(kept.read_text())

        # Signing in again with a link code from the dashboard instead of the password; then out.
        page.fill("#crowdfab-sign-in-code", code)
        page.click("[data-test-id=crowdfab-sign-in]")
        page.locator("[data-test-id=crowdfab-signed-in]").wait_for(state="visible")
        device = json.loads(kept.read_text())["admin"]
        assert fleet.api(device, "GET", "/jobs/mine").status_code == 200
        # Carol replaces her own API token: this OctoPrint's sign-in is not hers to lose with it.
        rotated = fleet.api(added["token"], "POST", f"/members/{added['id']}/token")
        assert rotated.status_code == 200, rotated.text
        added["token"] = rotated.json()["token"]
        assert fleet.api(device, "GET", "/jobs/mine").status_code == 200
        page.click("[data-test-id=crowdfab-sign-out]")
        form.wait_for(state="visible")
        # The same code again: already used, and the tab says so in those words.
        page.fill("#crowdfab-sign-in-code", code)
        page.click("[data-test-id=crowdfab-sign-in]")
        wrong.wait_for(state="visible")
        page.wait_for_function(
            "() => document.querySelector('[data-test-id=crowdfab-sign-in-error]')"
            ".textContent.includes('link code')"
        )
        assert "this link code was already used: a code works once" in wrong.inner_text()
        page.screenshot(path=str(ARTIFACTS / "octoprint-sign-in-used-code.png"), full_page=True)
    assert not page.js_errors, page.js_errors
    assert "admin" not in json.loads(kept.read_text())

    mine = fleet.api(added["token"], "GET", "/jobs/mine")
    jobs = [job for job in mine.json()["jobs"] if job["filename"] == name]
    assert len(jobs) == 1 and jobs[0]["member_id"] == added["id"], mine.json()
