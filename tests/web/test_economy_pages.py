"""The economy on the dashboard: prices for everyone, the estimated cost before confirming, the ledger and
its CSV, groups and quotas for managers, and a held job's reason and lift button in English and French."""

from __future__ import annotations

import io
import json

from fleet.gcode.generate import generate_box
from fleet.states import JobState

from .conftest import csrf_of
from .test_admin import settings_form

PRICES = {"per_gram": {"PLA": "0.05"}, "default_per_hour": "2", "minimum": "0.50", "unfinished": "full"}


def test_prices_are_public_changed_by_managers_and_shown_before_confirming(fleet, browsers, people):
    manager, alice = browsers["manager"], browsers["alice"]
    assert "No material is priced yet." in alice.get("/prices").get_data(as_text=True)
    assert alice.post("/prices", {"body": json.dumps(PRICES)}).status_code == 403
    refused = manager.post("/prices", {"body": json.dumps({**PRICES, "minimum": "-1"})})
    assert refused.status_code == 422 and "must not be negative" in refused.get_data(as_text=True)
    assert manager.post("/prices", {"body": "{not json"}).status_code == 422
    assert manager.post("/prices", {"body": json.dumps(PRICES)}).status_code == 303
    page = alice.get("/prices").get_data(as_text=True)
    assert "0.05" in page and "costs the full price" in page and 'id="price-body"' not in page

    # The analysis step shows what the print should cost, line by line, before the member confirms.
    form = {
        "csrf": alice.csrf("/submit"),
        "file": (io.BytesIO(generate_box(20, 20, 2).encode()), "box.gcode"),
    }
    page = alice.http.post("/submit", data=form, content_type="multipart/form-data").get_data(as_text=True)
    expected = fleet.app.pricing.estimate(
        fleet.app.intake.analyze_upload(io.BytesIO(generate_box(20, 20, 2).encode())).to_dict(), None
    )
    assert (
        f'<dd id="estimated-cost">{expected.total_minor // 100}.{expected.total_minor % 100:02d} EUR</dd>'
        in page
    )
    assert 'data-kind="material"' in page


def test_a_held_job_says_why_in_french_and_a_manager_lifts_it(fleet, browsers, people, printer):
    svc = fleet.app
    manager = people["manager"]
    svc.quotas.set_quota(manager, {"period": "week", "jobs_at_once": 0}, member_id=people["alice"].id)
    job = svc.intake.submit_job(
        people["alice"], io.BytesIO(generate_box(10, 10, 1).encode()), filename="box.gcode"
    ).jobs[0]
    assert svc.dispatcher.dispatch_pass() == []
    alice = browsers["alice"]
    alice.http.post("/language", data={"lang": "fr", "csrf": alice.csrf("/account")})
    page = alice.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "Attend le quota de son membre" in page
    assert (
        "En attente : vous avez déjà 0 impression(s) en cours, et votre quota en permet 0 à la fois" in page
    )
    assert 'id="lift-quotas"' not in page
    boss = browsers["manager"]
    assert 'id="lift-quotas"' in boss.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert alice.post(f"/jobs/{job.id}/lift-quotas").status_code == 403
    assert boss.post(f"/jobs/{job.id}/lift-quotas").status_code == 303
    assert 'id="quota-lifted"' in boss.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert svc.dispatcher.dispatch_pass() == [(job.id, "mk4")]
    assert svc.jobs.get_job(manager, job.id).state is JobState.ASSIGNED


def test_groups_quotas_ledger_and_settings_pages(fleet, browsers, people):
    boss = browsers["manager"]
    assert browsers["alice"].get("/groups").status_code == 403
    assert boss.post("/groups", {"name": "student", "priority": "2"}).status_code == 303
    [group] = fleet.app.quotas.groups(people["manager"])
    assert (
        boss.post("/groups/member", {"member": str(people["alice"].id), "group": str(group.id)}).status_code
        == 303
    )
    refused = boss.post("/groups/quota", {"holder": f"group:{group.id}", "period": "year", "grams": "5"})
    assert refused.status_code == 422 and "no quota period" in refused.get_data(as_text=True)
    done = boss.post(
        "/groups/quota", {"holder": f"group:{group.id}", "period": "month", "printer_hours": "10"}
    )
    assert done.status_code == 303
    page = boss.get("/groups").get_data(as_text=True)
    assert "group student" in page and "alice" in page and ">10<" in page
    mine = browsers["alice"].get("/ledger").get_data(as_text=True)
    assert "Printer-hours (a month): 0.0 used of 10.0" in mine

    # The ledger: each member's own; the month's CSV for managers.
    assert "No charges yet." in browsers["alice"].get("/ledger").get_data(as_text=True)
    assert browsers["alice"].get("/ledger/export?month=2026-11").status_code == 403
    export = browsers["manager"].get("/ledger/export?month=2026-11")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert browsers["manager"].get("/ledger?month=nope").status_code == 422
    assert csrf_of(browsers["manager"].get("/ledger").get_data(as_text=True))

    # The lab's currency and time zone on the settings page.
    manager = browsers["manager"]
    data = settings_form(manager.get("/settings").get_data(as_text=True))
    assert (data["currency"], data["time_zone"]) == ("EUR", "UTC")
    refused = manager.post("/settings", {**data, "time_zone": "Mars/Olympus"})
    assert refused.status_code == 422 and "no time zone" in refused.get_data(as_text=True)
    assert (
        manager.post("/settings", {**data, "currency": "chf", "time_zone": "Europe/Zurich"}).status_code
        == 303
    )
    lab = fleet.app.lab.settings()
    assert (lab.currency, lab.time_zone) == ("CHF", "Europe/Zurich")
