"""The dashboard's pages through the Flask test client: what each person sees and may do."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from fleet.gcode.generate import generate_box
from fleet.models import LabSettingsChanges, LiveStatus, PrinterChanges
from fleet.states import JobState, PrinterState

TEMPLATES = Path(__file__).resolve().parents[2] / "fleet" / "web" / "templates"
TRANSLATIONS = Path(__file__).resolve().parents[2] / "fleet" / "web" / "translations"


def upload(text: str, name: str = "box.gcode") -> tuple[io.BytesIO, str]:
    return io.BytesIO(text.encode()), name


def submit(browser, text: str | None = None, **form) -> object:
    data = {"file": upload(text or generate_box()), "copies": "1", **form}
    return browser.post("/submit/confirm", data, content_type="multipart/form-data")


def submit_through_the_service(svc, member, filename: str) -> int:
    """A box submitted without a page, to set up what a page then shows: the one job's id."""
    return svc.intake.submit_job(member, io.BytesIO(generate_box().encode()), filename=filename).jobs[0].id


def test_a_cards_heaters_are_named_for_people_nozzles_first(browsers, fleet, printer):
    svc = fleet.app
    heaters = {"probe": (30.0, None), "bed": (60.0, 60.0), "tool2": (20.0, 0.0), "tool0": (215.0, 215.0)}
    svc.reports.set_live("mk4", LiveStatus("idle", heaters, None, None, None, svc.clock()))
    page = browsers["alice"].get("/").get_data(as_text=True)
    labels = re.findall(r'data-heater="([^"]+)"><span class="reading-label">([^<]+)</span>', page)
    assert labels == [("tool0", "nozzle"), ("tool2", "nozzle 3"), ("bed", "bed"), ("probe", "probe")]
    assert '<span class="reading-value">30/?°C</span>' in page, "a heater with no target says so"


def test_printer_cards_show_state_job_progress_and_offline(browsers, fleet, people, printer):
    svc = fleet.app
    job_id = submit_through_the_service(svc, people["alice"], "box.gcode")
    assert svc.dispatcher.dispatch_pass() == [(job_id, "mk4")]
    svc.reports.printer_job_event("mk4", job_id, JobState.PRINTING, "started")
    svc.reports.set_live(
        "mk4",
        LiveStatus(
            "printing", {"hotend": (209.6, 210.0), "bed": (60.0, 60.0)}, 42.0, None, job_id, svc.clock()
        ),
    )
    page = browsers["bob"].get("/").get_data(as_text=True)
    assert 'data-state="printing"' in page
    hotend = '<span class="reading-label">hotend</span> <span class="reading-value">210/210°C</span>'
    assert hotend in page and 'value="42.0"' in page
    assert page.index('data-heater="hotend"') < page.index('data-heater="bed"'), "nozzles come first"
    assert f"#{job_id}</a> · alice" in page
    assert "box.gcode" not in page  # another member's file name stays private

    svc.reports.printer_offline("mk4")
    page = browsers["bob"].get("/").get_data(as_text=True)
    assert 'data-state="offline"' in page and ">offline<" in page


def test_the_bed_clear_button_is_for_the_plate_owner_and_managers(browsers, fleet, people, printer):
    svc = fleet.app
    job_id = submit_through_the_service(svc, people["alice"], "a.gcode")
    svc.dispatcher.dispatch_pass()
    svc.reports.printer_job_event("mk4", job_id, JobState.PRINTING, "started")
    svc.reports.printer_job_event("mk4", job_id, JobState.DONE, "finished")

    bob_page = browsers["bob"].get("/").get_data(as_text=True)
    alice_page = browsers["alice"].get("/").get_data(as_text=True)
    form = re.compile(r'<form method="post" action="/printers/mk4/bed-cleared" data-field="bed"\s+(hidden)?>')
    assert form.search(bob_page).group(1) == "hidden"
    assert form.search(alice_page).group(1) is None
    assert browsers["bob"].post("/printers/mk4/bed-cleared").status_code == 403

    assert browsers["alice"].post("/printers/mk4/bed-cleared", {"next": "/"}).status_code == 303
    assert svc.printers.get_printer("mk4").state is PrinterState.IDLE


def test_submitting_analyses_first_and_keeps_nothing_until_confirmed(browsers, fleet, printer):
    alice = browsers["alice"]
    blobs_before = sorted(p.name for p in fleet.config.blob_dir.rglob("*") if p.is_file())

    shown = alice.post(
        "/submit", {"file": upload(generate_box(30, 20, 5))}, content_type="multipart/form-data"
    )
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200
    assert "What the fleet found in box.gcode" in page
    assert "30.0 \u00d7 20.0 \u00d7 5.0 mm" in page
    assert 'id="confirm"' in page
    assert sorted(p.name for p in fleet.config.blob_dir.rglob("*") if p.is_file()) == blobs_before
    assert fleet.app.jobs.my_jobs(alice.member) == []

    done = submit(alice, generate_box(30, 20, 5), copies="2", material="pla")
    assert done.status_code == 303 and done.headers["Location"].startswith("/queue#job-")
    jobs = fleet.app.jobs.my_jobs(alice.member)
    assert [j.material for j in jobs] == ["PLA", "PLA"]


def submission_key_of(page: str) -> str:
    found = re.search(r'name="submission_key" value="([^"]+)"', page)
    assert found, "the checked file's page has no submission key"
    return found.group(1)


def test_a_confirm_sent_twice_with_its_forms_key_queues_the_file_once(browsers, fleet):
    alice = browsers["alice"]
    part = generate_box(30, 20, 5)
    shown = alice.post("/submit", {"file": upload(part)}, content_type="multipart/form-data")
    key = submission_key_of(shown.get_data(as_text=True))

    first = submit(alice, part, copies="2", submission_key=key)
    again = submit(alice, part, copies="2", submission_key=key)  # a double click, or the form resent

    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert len(fleet.app.jobs.my_jobs(alice.member)) == 2
    # The same form sent with another file is refused, in the member's words, and queues nothing.
    other = submit(alice, generate_box(10, 10, 5), copies="2", submission_key=key)
    assert other.status_code == 422
    assert "reload the submit page" in other.get_data(as_text=True)
    assert len(fleet.app.jobs.my_jobs(alice.member)) == 2
    # Each check of a file renders a new key: a new submission.
    shown_again = alice.post("/submit", {"file": upload(part)}, content_type="multipart/form-data")
    assert submission_key_of(shown_again.get_data(as_text=True)) != key


def test_a_refused_file_shows_its_findings_and_no_confirm_button(browsers):
    unsafe = generate_box(extra_lines={7: "M502"})
    page = browsers["alice"].post("/submit", {"file": upload(unsafe)}, content_type="multipart/form-data")
    text = page.get_data(as_text=True)
    assert "Refused" in text and "line 7" in text
    assert 'id="confirm"' not in text
    assert submit(browsers["alice"], unsafe).status_code == 422


def test_the_queue_explains_each_job_and_marks_mine(browsers, fleet, people, printer):
    fleet.app.printers.update_printer(people["manager"], "mk4", PrinterChanges(maintenance=True))
    submit(browsers["alice"])
    submit(browsers["bob"])
    page = browsers["alice"].get("/queue").get_data(as_text=True)
    entries = re.findall(r'<li id="job-(\d+)" class="entry( mine)?"', page)
    assert entries == [("1", " mine"), ("2", "")]
    assert page.count("Suitable printers are offline or in maintenance") == 2
    assert "your job" in page
    part = browsers["alice"].get("/queue?part=list").get_data(as_text=True)
    assert part.lstrip().startswith("<ol") and "<html" not in part


def test_with_no_printer_the_queue_says_so_in_the_order_the_first_printer_will_serve(
    app, browsers, fleet, people
):
    """alice queued five flat parts, then bob one: bob's is 2nd, on the dashboard and through the API."""
    svc = fleet.app
    flat = generate_box(width=60, depth=50, height=0.2)
    for _ in range(5):
        svc.intake.submit_job(people["alice"], io.BytesIO(flat.encode()), filename="tag.gcode")
    bobs = svc.intake.submit_job(people["bob"], io.BytesIO(flat.encode()), filename="tag.gcode").jobs[0].id
    token = svc.members.issue_named_token(people["bob"], "test")
    queue = app.test_client().get("/api/v1/queue", headers={"Authorization": f"Bearer {token}"}).get_json()
    mine = next(e for e in queue["queue"] if e["id"] == bobs)["explanation"]
    assert (mine["position"], mine["reason"]) == (2, "no_printer_yet")
    assert mine["message"] == "2nd in line; no printer has joined the fleet yet."
    assert {e["explanation"]["reason"] for e in queue["queue"]} == {"no_printer_yet"}
    page = browsers["bob"].get("/queue").get_data(as_text=True)
    entry = page.split(f'id="job-{bobs}"', 1)[1].split("</li>", 1)[0]
    assert re.search(r'class="position"[^>]*>2<', entry)
    assert "No printer has joined the lab yet" in entry and "can print it" not in page


def test_members_cannot_approve_and_managers_can(browsers, fleet, people, printer):
    fleet.app.lab.update(people["manager"], LabSettingsChanges(approval_required=True))
    submit(browsers["alice"])
    job = fleet.app.jobs.my_jobs(people["alice"])[0]
    assert job.state is JobState.AWAITING_APPROVAL

    assert browsers["alice"].post(f"/jobs/{job.id}/approve").status_code == 403
    assert browsers["bob"].post(f"/jobs/{job.id}/approve").status_code == 403
    queue_page = browsers["alice"].get("/queue").get_data(as_text=True)
    assert "/approve" not in queue_page
    assert f"/jobs/{job.id}/approve" in browsers["manager"].get("/queue").get_data(as_text=True)

    assert browsers["manager"].post(f"/jobs/{job.id}/approve").status_code == 303
    assert fleet.app.jobs.get_job(people["manager"], job.id).state is JobState.QUEUED


def test_another_members_job_is_not_shown(browsers, fleet, people):
    submit(browsers["alice"])
    job = fleet.app.jobs.my_jobs(people["alice"])[0]
    assert browsers["alice"].get(f"/jobs/{job.id}").status_code == 200
    assert browsers["manager"].get(f"/jobs/{job.id}").status_code == 200
    refused = browsers["bob"].get(f"/jobs/{job.id}")
    assert refused.status_code == 403
    assert "box.gcode" not in refused.get_data(as_text=True)
    assert browsers["bob"].get(f"/jobs/{job.id}/thumbnail").status_code == 403
    assert browsers["bob"].post(f"/jobs/{job.id}/cancel").status_code == 403


def test_managers_set_material_and_create_enrollment_codes(browsers, fleet, printer):
    assert browsers["alice"].post("/printers/mk4/material", {"material": "PETG"}).status_code == 403
    assert browsers["manager"].post("/printers/mk4/material", {"material": "petg"}).status_code == 303
    assert fleet.app.printers.get_printer("mk4").material == "PETG"
    # the form's value is checked where the API's is, and a member is refused before it is read
    bad = browsers["manager"].post("/printers/mk4/material", {"material": "P/L\\A"})
    assert bad.status_code == 422 and "The material must be a name such as PLA" in bad.get_data(as_text=True)
    assert browsers["alice"].post("/printers/mk4/material", {"material": "P/L\\A"}).status_code == 403
    assert browsers["manager"].post("/printers/mk4/material", {"material": ""}).status_code == 303
    assert fleet.app.printers.get_printer("mk4").material is None

    assert browsers["alice"].post("/enroll-code", {"ttl": "1h"}).status_code == 403
    page = browsers["manager"].post("/enroll-code", {"ttl": "1h"}).get_data(as_text=True)
    assert re.search(r'id="enroll-code">[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}<', page)


def test_pages_speak_french_by_header_or_by_choice(browsers):
    alice = browsers["alice"]
    assert "File d&#39;attente" in alice.get(
        "/queue", headers={"Accept-Language": "fr-FR,fr;q=0.9"}
    ).get_data(as_text=True)
    assert alice.post("/language", {"lang": "fr", "next": "/queue"}).headers["Location"] == "/queue"
    page = alice.get("/queue").get_data(as_text=True)
    assert '<html lang="fr">' in page and "Rien n&#39;attend." in page
    alice.post("/language", {"lang": "en"})
    assert "Nothing is waiting." in alice.get("/queue", headers={"Accept-Language": "fr"}).get_data(
        as_text=True
    )


def test_both_catalogues_have_every_key_the_pages_use():
    en = json.loads((TRANSLATIONS / "en.json").read_text())
    fr = json.loads((TRANSLATIONS / "fr.json").read_text())
    assert set(en) == set(fr)
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z0-9_.]+[a-z0-9_])'", template.read_text()))
    assert used - set(en) == set()
    for prefix in ("js.state.", "job.state.", "reason.", "action.", "severity.", "role.", "lang."):
        assert any(k.startswith(prefix) for k in en), prefix


def test_pages_carry_a_strict_content_security_policy(browsers):
    response = browsers["alice"].get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script>" not in response.get_data(as_text=True)  # only external scripts and JSON data


def test_the_assets_ship_in_the_package(browsers):
    anonymous = browsers["anonymous"]
    script = anonymous.get("/assets/dashboard.js")
    style = anonymous.get("/assets/dashboard.css")
    assert script.status_code == style.status_code == 200
    assert script.mimetype in ("text/javascript", "application/javascript")
    assert style.mimetype == "text/css"
    page = browsers["alice"].get("/").get_data(as_text=True)
    assert (
        'src="/assets/dashboard.js"' in page
        and "http" not in re.sub(r'href="http[^"]*"', "", page).split("<body")[0]
    )
