"""The economy through /api/v1: the price list, the estimated cost of an upload, groups, quotas, lifts,
the ledger and its CSV; each answer checked against the OpenAPI document."""

from __future__ import annotations

from decimal import Decimal

from fleet.gcode.generate import generate_box

from .test_jobs import upload

PRICES = {"per_gram": {"PLA": "0.05"}, "default_per_hour": "1.20", "minimum": "0.50", "unfinished": "free"}


def test_the_price_list_is_public_and_only_managers_change_it(api):
    assert api["alice"].get("/api/v1/prices").get_json()["id"] is None
    assert api["alice"].put("/api/v1/prices", json=PRICES).status_code == 403
    assert api["anonymous"].get("/api/v1/prices").status_code == 401
    answer = api["manager"].put("/api/v1/prices", json=PRICES)
    assert answer.status_code == 200
    seen = api["alice"].get("/api/v1/prices").get_json()
    assert seen["per_gram"] == {"PLA": "0.05"} and seen["currency"] == "EUR" and seen["id"] is not None
    for bad, field in [
        ({**PRICES, "per_gram": {"PLA": "-0.01"}}, "per_gram.PLA"),
        ({**PRICES, "per_gram": {"PLA": 0.05}}, "per_gram.PLA"),
        ({**PRICES, "per_gram": {"KRYPTONITE": "1"}}, "per_gram.KRYPTONITE"),
        ({**PRICES, "unfinished": "half"}, "unfinished"),
    ]:
        refused = api["manager"].put("/api/v1/prices", json=bad)
        assert refused.status_code == 422 and refused.get_json()["field"] == field
    assert api["alice"].get("/api/v1/prices").get_json() == seen  # nothing half-written


def test_an_upload_shows_its_estimated_cost_before_and_after_submission(api):
    api["manager"].put("/api/v1/prices", json=PRICES)
    gcode = generate_box(20, 20, 2)
    analysed = api["alice"].post(
        "/api/v1/analyze", data={"file": (__import__("io").BytesIO(gcode.encode()), "box.gcode")},
        content_type="multipart/form-data",
    ).get_json()  # fmt: skip
    cost = analysed["estimated_cost"]
    assert cost["currency"] == "EUR"
    assert sum(line["amount_minor"] for line in cost["lines"]) == cost["total_minor"] >= 50
    assert Decimal(cost["total"]) * 100 == cost["total_minor"]
    submitted = upload(api["alice"], gcode).get_json()
    assert submitted["analysis"]["estimated_cost"] == cost
    job_id = submitted["jobs"][0]["id"]
    assert "estimated_cost" not in api["alice"].get(f"/api/v1/jobs/{job_id}").get_json()["analysis"]
    own = api["alice"].get(f"/api/v1/jobs/{job_id}/cost").get_json()
    assert own["estimate"] == cost and own["charge"] is None
    assert api["bob"].get(f"/api/v1/jobs/{job_id}/cost").status_code == 403


def test_groups_quotas_and_a_lift(api, fleet):
    manager, alice = api["manager"], api["alice"]
    group = manager.post("/api/v1/groups", json={"name": "student", "priority": 1})
    assert group.status_code == 201
    group_id = group.get_json()["id"]
    assert manager.post("/api/v1/groups", json={"name": "student"}).status_code == 409
    assert alice.post("/api/v1/groups", json={"name": "pro"}).status_code == 403
    put = manager.put(f"/api/v1/members/{alice.member_id}/group", json={"group_id": group_id})
    assert put.get_json()["group"]["name"] == "student"
    quota = manager.put(f"/api/v1/groups/{group_id}/quotas", json={"period": "month", "printer_hours": "10"})
    assert quota.status_code == 200 and quota.get_json()["printer_hours"] == "10"
    refused = manager.put(f"/api/v1/groups/{group_id}/quotas", json={"period": "year", "grams": "5"})
    assert refused.status_code == 422 and "use one of day, week, month" in refused.get_json()["message"]
    refused = manager.put(f"/api/v1/groups/{group_id}/quotas", json={"period": "day", "grams": "-5"})
    assert refused.status_code == 422 and refused.get_json()["field"] == "grams"
    assert [q["period"] for q in alice.get("/api/v1/quotas").get_json()["quotas"]] == ["month"]
    mine = alice.get(f"/api/v1/members/{alice.member_id}/quota").get_json()
    assert mine["group"]["name"] == "student"
    assert [(c["measure"], c["limit"], c["used"]) for c in mine["caps"]] == [
        ("printer_hours", "10.00", "0.00")
    ]
    assert api["bob"].get(f"/api/v1/members/{alice.member_id}/quota").status_code == 403
    job_id = upload(alice, generate_box(10, 10, 1)).get_json()["jobs"][0]["id"]
    assert alice.post(f"/api/v1/jobs/{job_id}/lift-quotas").status_code == 403
    lifted = manager.post(f"/api/v1/jobs/{job_id}/lift-quotas")
    assert lifted.status_code == 200 and lifted.get_json()["quota_lifted"] is True
    assert manager.post(f"/api/v1/jobs/{job_id}/lift-quotas").status_code == 409
    history = alice.get(f"/api/v1/jobs/{job_id}/history").get_json()["events"]
    assert history[-1]["actor"] == f"manager:{manager.member_id}"
    assert manager.delete(f"/api/v1/groups/{group_id}/quotas/month").status_code == 204
    assert manager.delete(f"/api/v1/groups/{group_id}/quotas/fortnight").status_code == 422
    assert manager.delete(f"/api/v1/groups/{group_id}").status_code == 204


def test_the_ledger_is_each_members_own_and_the_csv_is_for_managers(api):
    assert api["alice"].get("/api/v1/ledger").get_json() == {"charges": [], "next_cursor": None}
    assert api["alice"].get(f"/api/v1/ledger?member_id={api['bob'].member_id}").status_code == 403
    assert api["manager"].get("/api/v1/ledger?month=2026-13").status_code == 422
    assert api["alice"].get("/api/v1/ledger/export?month=2026-11").status_code == 403
    export = api["manager"].get("/api/v1/ledger/export?month=2026-11")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert export.get_data(as_text=True).startswith("date,charge_id,job_id,member,outcome,line,")
    assert api["manager"].get("/api/v1/ledger/export").status_code == 422
