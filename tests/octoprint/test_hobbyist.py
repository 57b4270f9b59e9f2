"""The README's hobbyist recipe against a real fleet (`crowdfab-fleet serve` with its Mosquitto), real
OctoPrints on the virtual printer with their default printer profile, and chromium.

Given only ``fleet_url`` and ``enroll_code`` (config keys, or the first-run wizard), a fresh OctoPrint joins,
says so in its navbar, prints a member's job, and the fleet records it done. A wrong, a used and an expired
code and an unreachable fleet each show their own message in OctoPrint's UI, and a refusal is not asked
again. A printer lent on its owner's terms takes work only inside its windows, and its Fablab tab says so,
in French too.
"""

from __future__ import annotations

import base64
import struct
import time
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from fleet.app.enrollment import new_enrollment_code, normalize_code
from fleet.auth import hash_token
from fleet.gcode.generate import generate_box
from fleet.lending import DAYS
from fleet.node.enroll import enroll
from fleet.store import open_store
from tests.brokers import free_port, wait_until
from tests.e2e.test_fleet_octoprint import RunningFleet, job_state, submit
from tests.http_stub import Reply, Request, serving
from tests.octoprint.test_ui import log_in, octoprint_page
from tests.octoprint_server import OctoPrintServer, wait_for
from tests.web.browser import ARTIFACTS, browser_unavailable

pytestmark = pytest.mark.skipif(browser_unavailable() is not None, reason=str(browser_unavailable()))

DEFAULT_VOLUME = {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 200, "max_y": 200, "max_z": 200}
#: The member's dashboard password.
PASSWORD = "correct horse battery"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour, as a webcam could send (the browser must be able to draw it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PLATE = png(64, 48, (40, 160, 90))


class Lab:
    """One fleet for the module, with a manager and a member."""

    def __init__(self, data_dir: Path) -> None:
        self.fleet = RunningFleet(data_dir)
        self.manager = self.fleet.cli("member", "add", "ada", "--role", "manager")["token"]
        self.member = self.fleet.cli("member", "add", "alice")["token"]
        alice = self.fleet.api(self.member, "GET", "/me").json()["id"]
        set_password = self.fleet.api(
            self.manager, "PUT", f"/members/{alice}/password", json={"password": PASSWORD}
        )
        assert set_password.status_code == 204, set_password.text

    def code(self) -> str:
        code: str = self.fleet.cli("enroll-code")["code"]
        return code

    def expired_code(self) -> str:
        """A code whose day ran out an hour ago (written to the fleet's database as the fleet would)."""
        code = new_enrollment_code()
        normalized = normalize_code(code)
        assert normalized is not None
        store = open_store(None, self.fleet.data_dir)
        try:
            now = time.time()
            store.add_enrollment_code(
                hash_token(normalized), created_by=None, now=now - 86400, expires_at=now - 3600
            )
        finally:
            store.close()
        return code

    def printer(self, printer_id: str) -> dict[str, Any]:
        answer = self.fleet.api(self.manager, "GET", f"/printers/{printer_id}")
        assert answer.status_code == 200, answer.text
        printer: dict[str, Any] = answer.json()
        return printer

    def print_a_job(self, printer_id: str, name: str) -> int:
        """A member's job reaches the printer and the fleet records it done; its id."""
        wait_until(lambda: self.printer(printer_id)["state"] == "idle", 60, f"{printer_id} to be idle")
        job_id = submit(self.fleet, self.member, generate_box(10, 10, 0.6, origin=(50.0, 50.0)), name)
        wait_until(lambda: job_state(self.fleet, self.member, job_id) == "done", 120, f"{name} to be done")
        assert self.fleet.api(self.member, "GET", f"/jobs/{job_id}").json()["printer_id"] == printer_id
        return job_id

    def job_page_images(self, job_id: int, shot: str) -> dict[str, Any]:
        """The member's page of the job in chromium: its plate photo's size (or None), and broken images."""
        with octoprint_page() as page:
            page.goto(f"{self.fleet.url}/signin")
            page.get_by_label("Name").fill("alice")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{self.fleet.url}/")
            page.goto(f"{self.fleet.url}/jobs/{job_id}")
            page.wait_for_load_state("load")
            found: dict[str, Any] = page.evaluate(
                """() => {
                    const photo = document.querySelector('.plate-photo img');
                    const broken = [...document.images]
                        .filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src);
                    return {photo: photo && [photo.naturalWidth, photo.naturalHeight], broken};
                }"""
            )
            page.screenshot(path=str(ARTIFACTS / f"dashboard-job-{shot}.png"), full_page=True)
            assert not page.js_errors, page.js_errors
        return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    running = Lab(tmp_path_factory.mktemp("hobbyist") / "fleet")
    with running.fleet:
        yield running


def plugin_status(octoprint: OctoPrintServer) -> dict[str, Any]:
    answer = octoprint.admin.get(f"{octoprint.url}/api/plugin/crowdfab", timeout=5)
    assert answer.status_code == 200, answer.text
    status: dict[str, Any] = answer.json()
    return status


def navbar_shows(page: Any, text: str, timeout_ms: int = 45_000) -> None:
    page.wait_for_function(
        "t => { const e = document.querySelector('[data-test-id=crowdfab-navbar-state]');"
        " return e && e.offsetParent !== null && e.textContent.trim() === t; }",
        arg=text,
        timeout=timeout_ms,
    )


def test_two_config_keys_join_the_fleet_and_a_job_prints(lab: Lab) -> None:
    """The README's recipe as written: a default profile and only fleet_url and enroll_code; and the
    webcam OctoPrint knows sends the photo of the plate after the job, shown on the job's page. The
    webcam wants the login its OctoPrint settings give (basic authentication, OctoPrint 1.11)."""
    code = lab.code()
    asked: list[str] = []
    login = "Basic " + base64.b64encode(b"owner:plate-cam").decode()

    def webcam(request: Request) -> Reply:
        if request.headers.get("Authorization") != login:
            return Reply(401, b"", None, (("WWW-Authenticate", 'Basic realm="cam"'),))
        asked.append(request.path)
        return Reply(200, PLATE, "image/png")

    with serving(webcam) as webcam_url:
        octoprint = OctoPrintServer(
            {"fleet_url": lab.fleet.url, "enroll_code": code},
            # As OctoPrint saves it once its webcam settings are set (the version stops a migration).
            other_plugins={
                "classicwebcam": {
                    "_config_version": 1,
                    "snapshot": f"{webcam_url}/?action=snapshot",
                    "snapshotAuth": "basic",
                    "snapshotUsername": "owner",
                    "snapshotPassword": "plate-cam",
                }
            },
        ).start()
        try:
            joined_and_printed(lab, octoprint, asked)
        finally:
            octoprint.stop()


def joined_and_printed(lab: Lab, octoprint: OctoPrintServer, asked: list[str]) -> None:
    """Joins with the two settings, prints a job with the photo of its plate, hears profile changes."""
    joined = wait_for(
        lambda: (s := plugin_status(octoprint))["link"] == "online" and s, 60, "the plugin to join"
    )
    printer_id = joined["printer_id"]
    printer = lab.printer(printer_id)
    assert printer["volume"] == DEFAULT_VOLUME, "the volume comes from OctoPrint's default profile"
    assert printer["nozzle_diameter"] == 0.4

    with octoprint_page() as page:
        log_in(page, octoprint.url)
        navbar_shows(page, "joined")
        title = page.locator("[data-test-id=crowdfab-navbar]").get_attribute("title")
        assert title is not None and "online" in title
        page.screenshot(path=str(ARTIFACTS / "octoprint-navbar-joined.png"))
        assert not page.js_errors, page.js_errors

    job_id = lab.print_a_job(printer_id, "hobbyist-config.gcode")
    wait_until(
        lambda: lab.fleet.api(lab.member, "GET", f"/jobs/{job_id}/snapshot").status_code == 200,
        30,
        "the photo of the plate to reach the fleet",
    )
    assert asked == ["/?action=snapshot"], "one photo, from the webcam's snapshot URL, with its login"
    assert "plate-cam" not in octoprint.log_text()
    assert lab.fleet.api(lab.member, "GET", f"/jobs/{job_id}/snapshot").content == PLATE
    shown = lab.job_page_images(job_id, "plate-photo")
    assert shown == {"photo": [64, 48], "broken": []}

    # The owner makes the printer smaller in OctoPrint's profile: the fleet hears it.
    changed = octoprint.admin.patch(
        f"{octoprint.url}/api/printerprofiles/_default",
        json={"profile": {"volume": {"width": 120, "depth": 130, "height": 90, "origin": "center"}}},
        timeout=10,
    )
    assert changed.status_code == 200, changed.text
    smaller = {"min_x": -60, "min_y": -65, "min_z": 0, "max_x": 60, "max_y": 65, "max_z": 90}
    wait_until(lambda: lab.printer(printer_id)["volume"] == smaller, 30, "the fleet to hear the new volume")

    # ... and switches to another profile (a round delta): the fleet hears that one.
    delta = {"id": "delta", "name": "Delta", "model": "Round", "volume": {"width": 180, "depth": 180}}
    delta["volume"].update(height=300, formFactor="circular", origin="center")
    added = octoprint.admin.post(f"{octoprint.url}/api/printerprofiles", json={"profile": delta}, timeout=10)
    assert added.status_code == 200, added.text
    connection = f"{octoprint.url}/api/connection"
    closed = octoprint.admin.post(connection, json={"command": "disconnect"}, timeout=10)
    assert closed.status_code == 204, closed.text
    wait_until(
        lambda: (
            octoprint.admin.get(connection, timeout=5).json()["current"]["state"] in ("Closed", "Offline")
        ),
        20,
        "OctoPrint to disconnect",
    )
    command = {"command": "connect", "port": "VIRTUAL", "printerProfile": "delta"}
    switched = octoprint.admin.post(connection, json=command, timeout=10)
    assert switched.status_code == 204, switched.text
    round_bed = {"min_x": -90, "min_y": -90, "min_z": 0, "max_x": 90, "max_y": 90, "max_z": 300}
    wait_until(lambda: lab.printer(printer_id)["volume"] == round_bed, 30, "the fleet to hear the profile")
    assert "autoescaped" not in octoprint.log_text(), "OctoPrint warns about the plugin's templates"


def wizard_try(page: Any, url: str, code: str) -> str:
    """Fill the wizard's two fields, press "Join the fleet" and wait for its verdict."""
    page.fill("#crowdfab-wizard-url", url)
    page.fill("#crowdfab-wizard-code", code)
    page.click("[data-test-id=crowdfab-wizard-join]")
    result = page.locator("[data-test-id=crowdfab-wizard-result]")
    page.wait_for_function(
        "() => { const e = document.querySelector('[data-test-id=crowdfab-wizard-result]');"
        " return e && !e.classList.contains('alert-info') && e.offsetParent !== null; }",
        timeout=45_000,
    )
    text: str = result.inner_text()
    return text


def test_the_wizard_says_what_went_wrong_then_joins(lab: Lab) -> None:
    used = lab.code()
    enroll(lab.fleet.url, used, "first", {"volume": DEFAULT_VOLUME})  # another printer spent it
    octoprint = OctoPrintServer({}, wizard_seen=False).start()  # nothing set: the wizard greets the admin
    try:
        with octoprint_page() as page:
            log_in(page, octoprint.url)
            page.wait_for_selector("#wizard_dialog", state="visible")
            page.click("#wizard_plugin_crowdfab_link a")
            page.locator("#crowdfab-wizard-url").wait_for(state="visible")
            navbar_shows(page, "not set up")

            nowhere = f"http://127.0.0.1:{free_port()}"
            text = wizard_try(page, nowhere, "ABCD-EFGH-IJKL")
            assert f"The fleet cannot be reached at {nowhere}" in text
            assert "could not reach the fleet" in text, "the details are shown too"
            page.screenshot(path=str(ARTIFACTS / "octoprint-wizard-unreachable.png"))
            navbar_shows(page, "offline")  # the navbar polls every 15 s while the tab is hidden

            text = wizard_try(page, lab.fleet.url, "WRONG-CODE-0000")
            assert "The fleet does not know this enrollment code: check it for typing mistakes" in text
            page.screenshot(path=str(ARTIFACTS / "octoprint-wizard-wrong-code.png"))

            text = wizard_try(page, lab.fleet.url, used)
            assert "This enrollment code was already used to enroll a printer: a code works once." in text
            assert "expired" not in text and "does not know" not in text
            page.screenshot(path=str(ARTIFACTS / "octoprint-wizard-used-code.png"))

            text = wizard_try(page, lab.fleet.url, lab.expired_code())
            assert "This enrollment code has expired. Ask a fleet manager for a new code." in text
            assert "already used" not in text
            page.screenshot(path=str(ARTIFACTS / "octoprint-wizard-expired-code.png"))
            # The navbar says so too, and the fleet's words are one click away.
            navbar_shows(page, "refused")

            text = wizard_try(page, lab.fleet.url, lab.code())
            assert "Joined the fleet as" in text, text
            page.screenshot(path=str(ARTIFACTS / "octoprint-wizard-joined.png"))
            page.click("#wizard_dialog .button-finish:visible")
            page.wait_for_selector("#wizard_dialog", state="hidden")
            navbar_shows(page, "joined")
            page.screenshot(path=str(ARTIFACTS / "octoprint-wizard-navbar-joined.png"))
            assert not page.js_errors, page.js_errors

        status = plugin_status(octoprint)
        assert status["link"] == "online"
        # Each refusal was asked once: one line each in the log, nothing retried.
        assert octoprint.log_text().count("the fleet refused to enroll this printer") == 3
        job_id = lab.print_a_job(status["printer_id"], "hobbyist-wizard.gcode")
        # No webcam: no photo, and the job's page shows no broken image in its place.
        assert lab.fleet.api(lab.member, "GET", f"/jobs/{job_id}/snapshot").status_code == 404
        assert lab.job_page_images(job_id, "no-webcam") == {"photo": None, "broken": []}
        assert "photo of the plate" not in octoprint.log_text()
    finally:
        octoprint.stop()


def test_the_fablab_tab_and_navbar_explain_a_refused_code(lab: Lab) -> None:
    octoprint = OctoPrintServer({"fleet_url": lab.fleet.url, "enroll_code": "NOPE-NOPE-NOPE"}).start()
    try:
        with octoprint_page() as page:
            log_in(page, octoprint.url)
            navbar_shows(page, "refused")
            page.click("[data-test-id=crowdfab-navbar]")
            notice = page.locator(".ui-pnotify").filter(has_text="enrollment code")
            notice.first.wait_for(state="visible")
            assert "this enrollment code is not known" in notice.first.inner_text(), "the fleet's own words"
            problem = page.locator("[data-test-id=crowdfab-problem]")
            problem.wait_for(state="visible")
            assert "The fleet does not know this enrollment code" in problem.inner_text()
            page.screenshot(path=str(ARTIFACTS / "octoprint-tab-refused-code.png"), full_page=True)
            assert not page.js_errors, page.js_errors
        assert octoprint.log_text().count("the fleet refused to enroll this printer") == 1
    finally:
        octoprint.stop()


def explanation(lab: Lab, job_id: int) -> str:
    """The member's explanation of a waiting job, as the queue gives it ("" once it is not waiting)."""
    mine = lab.fleet.api(lab.member, "GET", "/jobs/mine", params={"limit": 200}).json()["jobs"]
    found = [j for j in mine if j["id"] == job_id and j.get("explanation")]
    return str(found[0]["explanation"]["message"]) if found else ""


def set_language(octoprint: OctoPrintServer, code: str) -> None:
    """OctoPrint's default language (Settings > Appearance), as its admin sets it."""
    chosen = octoprint.admin.post(
        f"{octoprint.url}/api/settings", json={"appearance": {"defaultLanguage": code}}, timeout=10
    )
    assert chosen.status_code == 200, chosen.text


def lend(octoprint: OctoPrintServer, windows: str) -> None:
    """The owner changes the lending hours in the plugin's settings (UTC, any material)."""
    terms = {"lending_windows": windows, "lending_time_zone": "UTC", "lending_materials": ""}
    saved = octoprint.admin.post(
        f"{octoprint.url}/api/settings", json={"plugins": {"crowdfab": terms}}, timeout=10
    )
    assert saved.status_code == 200, saved.text


def utc_window(start: datetime, minutes: int) -> str:
    """A one-day window from ``start`` (UTC) lasting ``minutes``: 'wed 07:59-08:20'."""
    end = start + timedelta(minutes=minutes)
    return f"{DAYS[start.weekday()]} {start:%H:%M}-{end:%H:%M}"


def test_a_lent_printer_takes_work_only_inside_its_window_and_the_tab_says_so_in_french(lab: Lab) -> None:
    """A real OctoPrint lent on its owner's terms: outside the window the job waits and the queue says
    when the window opens; inside a window the job prints; a job whose estimate would run past the
    window's end waits, and the queue says so. The Fablab tab shows the terms in force, a queued job too
    big for the printer, and why the plate's photo failed (a webcam that refuses the login): in English,
    then all of it in French, the fleet's reasons included."""
    now = datetime.now(timezone.utc)
    closed = utc_window(now + timedelta(days=3), 60)  # three days from now: certainly not now
    with serving(lambda request: Reply(401, b"", None, (("WWW-Authenticate", 'Basic realm="cam"'),))) as cam:
        octoprint = OctoPrintServer(
            {
                "fleet_url": lab.fleet.url,
                "enroll_code": lab.code(),
                "unfit_check_s": 5,
                "lending_windows": closed,
                "lending_time_zone": "UTC",
            },
            other_plugins={
                "classicwebcam": {"_config_version": 1, "snapshot": f"{cam}/snapshot"},
                # Its wizard would greet the admin once a file was printed, over the tab.
                "_disabled": ["file_check"],
            },
        ).start()
        try:
            lent_on_terms(lab, octoprint, closed)
        finally:
            octoprint.stop()


def lent_on_terms(lab: Lab, octoprint: OctoPrintServer, closed: str) -> None:
    waiting: list[int] = []
    try:
        printer_id = wait_for(
            lambda: (s := plugin_status(octoprint))["link"] == "online" and s["printer_id"],
            60,
            "the plugin to join",
        )
        wait_until(lambda: lab.printer(printer_id)["lending"] is not None, 30, "the fleet to hear the terms")
        wait_until(lambda: lab.printer(printer_id)["state"] == "idle", 30, f"{printer_id} to be idle")
        terms = plugin_status(octoprint)["lending"]
        assert terms["lent_now"] is False and terms["next"]["time"] == closed.split()[1].split("-")[0]
        short = submit(
            lab.fleet, lab.member, generate_box(10, 10, 0.6, origin=(60.0, 60.0)), "lent-short.gcode"
        )
        waiting.append(short)
        # The pass that explains the job is the one that would have sent it: it was not sent.
        said = wait_for(
            lambda: "lending hours" in (e := explanation(lab, short)) and e, 30, "the explanation"
        )
        assert f"home printer {printer_id} is lent" in said and "next window opens" in said, said
        assert job_state(lab.fleet, lab.member, short) == "queued"
        wide = generate_box(240, 150, 1.0, origin=(125.0, 100.0), purge=False, skirt=False)
        waiting.append(submit(lab.fleet, lab.member, wide, "lent-wide.gcode"))

        # The owner opens a window now, 25 minutes long: the short job prints.
        opened = utc_window(datetime.now(timezone.utc) - timedelta(minutes=1), 26)
        lend(octoprint, opened)
        wait_until(lambda: job_state(lab.fleet, lab.member, short) == "done", 120, "the short job to be done")
        waiting.remove(short)
        cleared = lab.fleet.api(lab.member, "POST", f"/printers/{printer_id}/bed-cleared")
        assert cleared.status_code == 200, cleared.text
        # A print of two hours by its slicer's estimate would run past the window's end: it waits.
        long_print = "; estimated printing time (normal mode) = 2h 0m 0s\n" + generate_box(
            10, 10, 0.6, origin=(80.0, 80.0)
        )
        long_id = submit(lab.fleet, lab.member, long_print, "lent-long.gcode")
        waiting.append(long_id)
        said = wait_for(
            lambda: "run past" in (e := explanation(lab, long_id)) and e, 30, "the long job's reason"
        )
        ends = opened.split("-")[-1]
        assert f"would run past the end of the lending window at {ends} (UTC)" in said, said
        # The printer waits, idle, for a job that fits the window (its node may still be settling what
        # the bed clear changed, so idle is waited for; the job must stay queued all along).
        wait_until(lambda: lab.printer(printer_id)["state"] == "idle", 30, f"{printer_id} to wait, idle")
        assert lab.printer(printer_id)["current_job_id"] is None
        assert job_state(lab.fleet, lab.member, long_id) == "queued"
        status = wait_for(
            lambda: (s := plugin_status(octoprint))["unfit"] and s["plate_problem"] and s,
            30,
            "the plugin to hear of the wide job and to keep why the photo failed",
        )
        assert status["lending"]["lent_now"] is True and status["lending"]["until"]["time"] == ends
        tab_in_english_then_french(octoprint, opened)
    finally:
        for job_id in waiting:  # the module's other tests share the fleet: leave its queue as it was
            lab.fleet.api(lab.member, "POST", f"/jobs/{job_id}/cancel")


@pytest.fixture
def joined(lab: Lab) -> Iterator[OctoPrintServer]:
    """An OctoPrint on the default profile that has joined the module's fleet, for the spool test only
    while it runs (an idle printer beside the lent one would take the lending test's jobs)."""
    octoprint = OctoPrintServer({"fleet_url": lab.fleet.url, "enroll_code": lab.code()})
    octoprint.start()
    try:
        wait_for(lambda: plugin_status(octoprint)["link"] == "online", 60, "the plugin to join")
        yield octoprint
    finally:
        octoprint.stop()


def tab_in_english_then_french(octoprint: OctoPrintServer, opened: str) -> None:
    day_index = DAYS.index(opened.split()[0])
    hours, ends = opened.split()[1].replace("-", "\u2013"), opened.split("-")[-1]
    with octoprint_page() as page:
        log_in(page, octoprint.url)
        page.click("#tab_plugin_crowdfab_link a")
        # Which queued job fits no printer, this one included, with its needs and no names.
        unfit = page.locator("[data-test-id=crowdfab-unfit]")
        unfit.wait_for(state="visible")
        text = unfit.inner_text()
        assert "1 job in the fleet's queue does not fit this printer, nor any other:" in text
        assert "mm needed, this profile gives 200\u00d7200\u00d7200 mm" in text and "240\u00d7" in text, text
        assert "alice" not in text and "lent-wide" not in text
        terms = page.locator("[data-test-id=crowdfab-lending]")
        assert "Lent now, until" in terms.inner_text() and f"{ends}." in terms.inner_text()
        plate = page.locator("[data-test-id=crowdfab-plate-problem]")
        plate.wait_for(state="visible")
        assert "the webcam refused the login (HTTP 401)" in plate.inner_text()
        page.screenshot(path=str(ARTIFACTS / "octoprint-tab-unfit-job.png"), full_page=True)

        # In French, as the owner reads OctoPrint: the fleet's reasons too, not only the headings.
        set_language(octoprint, "fr")
        try:
            page.reload()
            page.wait_for_selector("#tab_plugin_crowdfab_link", state="visible")
            page.click("#tab_plugin_crowdfab_link a")
            terms.wait_for(state="visible")
            text = terms.inner_text()
            assert "Prêtée à la flotte selon vos conditions" in text
            day = ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."][day_index]
            assert f"{day} {hours} (UTC), toute matière" in text, text
            assert "Prêtée maintenant, jusqu'à" in text and f"{ends}." in text, text
            assert "Une impression que vous lancez ici passe toujours en premier" in text
            unfit.wait_for(state="visible")
            text = unfit.inner_text()
            assert "mm nécessaires, ce profil offre 200\u00d7200\u00d7200 mm" in text and "240\u00d7" in text
            assert "needed" not in text and "profile gives" not in text
            plate.wait_for(state="visible")
            assert "la webcam a refusé l'identification (HTTP 401)" in plate.inner_text()
            page.screenshot(path=str(ARTIFACTS / "octoprint-tab-lending-fr.png"), full_page=True)
        finally:
            set_language(octoprint, "_default")
        assert not page.js_errors, page.js_errors


def test_the_owner_loads_and_unloads_a_spool_from_the_fablab_tab(lab: Lab, joined: OctoPrintServer) -> None:
    """The printer's owner (OctoPrint's admin) loads a shelf spool on their printer and unloads it, through
    the fleet's API with the printer's own credentials; the fleet's record follows."""
    added = lab.fleet.api(
        lab.manager,
        "POST",
        "/spools",
        json={
            "material": "PETG",
            "colour_name": "galaxy blue",
            "colour_hex": "#20306a",
            "net_grams": 1000,
            "remaining_grams": 640,
            "price_per_kg": 2990,
            "shelf": "B2",
        },
    )
    assert added.status_code == 201, added.text
    spool_id = added.json()["id"]
    octoprint = joined
    printer_id = plugin_status(octoprint)["printer_id"]
    try:
        with octoprint_page() as page:
            log_in(page, octoprint.url)
            page.click("#tab_plugin_crowdfab_link a")
            form = page.locator("[data-test-id=crowdfab-spool-form]")
            form.wait_for(state="visible", timeout=30_000)
            page.select_option("[data-test-id=crowdfab-spool-choice]", str(spool_id))
            page.click("[data-test-id=crowdfab-spool-load]")
            loaded = page.locator("[data-test-id=crowdfab-spool]")
            loaded.wait_for(state="visible", timeout=30_000)
            assert "galaxy blue PETG, 640 g left of 1000 g" in loaded.inner_text()
            spool = lab.fleet.api(lab.manager, "GET", f"/spools/{spool_id}").json()
            assert spool["printer_id"] == printer_id
            assert lab.printer(printer_id)["material"] == "PETG"
            page.screenshot(path=str(ARTIFACTS / "octoprint-tab-spool.png"), full_page=True)

            page.click("[data-test-id=crowdfab-spool-unload]")
            form.wait_for(state="visible", timeout=30_000)
            assert lab.fleet.api(lab.manager, "GET", f"/spools/{spool_id}").json()["printer_id"] is None
            assert not page.js_errors, page.js_errors
    finally:  # the module's other tests share the fleet: no spool stays loaded
        lab.fleet.api(lab.manager, "POST", f"/spools/{spool_id}/unload")
