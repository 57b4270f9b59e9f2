"""/api/v1/spools: who may add and load spools, what is refused, and jobs matched by what is loaded."""

from __future__ import annotations

import time

import pytest

from fleet.models import LiveStatus
from fleet.states import JobState

from .test_enrollment import CAPS, as_printer
from .test_jobs import SMALL, upload

BLACK_PETG = {
    "material": "petg",
    "colour_name": "black",
    "colour_hex": "#1A1A1A",
    "vendor": "Prusament",
    "net_grams": 1000,
    "price_per_kg": 2990,
    "shelf": "B2",
}
VOLUME = {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 250, "max_y": 210, "max_z": 220}


def add_printer(api, printer_id: str) -> None:
    answer = api["manager"].post(
        "/api/v1/printers", json={"id": printer_id, "volume": VOLUME, "material": "PETG"}
    )
    assert answer.status_code == 201, answer.get_json()


def add_spool(api, **changes) -> dict:
    answer = api["manager"].post("/api/v1/spools", json={**BLACK_PETG, **changes})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_a_manager_adds_a_spool_and_every_member_sees_it(api):
    spool = add_spool(api)
    assert spool["material"] == "PETG" and spool["colour_hex"] == "#1a1a1a"
    assert spool["remaining_grams"] == 1000 and spool["price_per_kg"] == 2990
    assert spool["printer_id"] is None
    listed = api["alice"].get("/api/v1/spools?where=shelf").get_json()
    assert [s["id"] for s in listed["spools"]] == [spool["id"]] and listed["next_cursor"] is None
    assert api["alice"].post("/api/v1/spools", json=BLACK_PETG).status_code == 403


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"material": "UNOBTAINIUM"}, "material", "unknown material"),
        ({"colour_hex": "black"}, "colour_hex", "#rrggbb"),
        ({"price_per_kg": 29.9}, "price_per_kg", "whole number of minor units"),
        ({"net_grams": -5}, "net_grams", "grams from 0"),
        ({"remaining_grams": 1200}, "remaining_grams", "cannot be more than net_grams"),
        ({"colour_name": "<script>"}, "colour_name", "colour's name"),
    ],
)
def test_bad_spools_are_refused_naming_the_field_and_nothing_is_kept(api, changes, field, words):
    answer = api["manager"].post("/api/v1/spools", json={**BLACK_PETG, **changes})
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["field"] == field and words in answer.get_json()["message"]
    assert api["manager"].get("/api/v1/spools").get_json()["spools"] == []


def test_a_spool_is_never_loaded_on_two_printers_and_only_managers_load(api):
    add_printer(api, "mk4")
    add_printer(api, "mini")
    spool = add_spool(api)
    url = f"/api/v1/spools/{spool['id']}"
    assert api["alice"].post(url + "/load", json={"printer_id": "mk4"}).status_code == 403
    loaded = api["manager"].post(url + "/load", json={"printer_id": "mk4"})
    assert loaded.status_code == 200 and loaded.get_json()["printer_id"] == "mk4"

    twice = api["manager"].post(url + "/load", json={"printer_id": "mini"})
    assert twice.status_code == 409
    assert "spool" in twice.get_json()["message"] and "unload it there first" in twice.get_json()["message"]
    assert api["manager"].get(url).get_json()["printer_id"] == "mk4"

    unloaded = api["manager"].post(url + "/unload", json={"shelf": "A1"})
    assert unloaded.get_json()["printer_id"] is None and unloaded.get_json()["shelf"] == "A1"
    assert api["manager"].get("/api/v1/printers/mk4").get_json()["material"] is None


def test_a_job_asking_for_a_colour_waits_with_its_reason_until_that_colour_is_loaded(api, fleet):
    add_printer(api, "mk4")
    add_printer(api, "mini")
    for printer_id, colour in (("mk4", "white"), ("mini", "red")):
        spool = add_spool(api, colour_name=colour)
        api["manager"].post(f"/api/v1/spools/{spool['id']}/load", json={"printer_id": printer_id})
    submitted = upload(api["alice"], SMALL, material="PETG", colour="Black")
    assert submitted.status_code == 201, submitted.get_json()
    job = submitted.get_json()["jobs"][0]
    assert job["colour"] == "Black" and job["material"] == "PETG"

    assert fleet.app.dispatcher.dispatch_pass() == []
    (queued,) = [j["explanation"] for j in api["alice"].get("/api/v1/queue").get_json()["queue"]]
    assert queued["reason"] == "material_not_loaded"
    assert (
        "no printer has Black PETG loaded; 2 printers have PETG in other colours (red, white)"
        in (queued["message"])
    )

    mini = api["manager"].get("/api/v1/spools?where=loaded").get_json()["spools"][1]
    assert mini["printer_id"] == "mini"
    api["manager"].post(f"/api/v1/spools/{mini['id']}/unload")
    black = add_spool(api)
    api["manager"].post(f"/api/v1/spools/{black['id']}/load", json={"printer_id": "mini"})
    assert fleet.app.dispatcher.dispatch_pass() == [(job["id"], "mini")]


def test_a_job_takes_the_printed_share_from_the_spool_when_it_fails(api, fleet):
    add_printer(api, "mk4")
    spool = add_spool(api)
    api["manager"].post(f"/api/v1/spools/{spool['id']}/load", json={"printer_id": "mk4"})
    job = upload(api["alice"], SMALL, material="PETG").get_json()["jobs"][0]
    weight = job and api["alice"].get(f"/api/v1/jobs/{job['id']}").get_json()["analysis"]["filament_weight_g"]
    assert weight > 0
    assert fleet.app.dispatcher.dispatch_pass() == [(job["id"], "mk4")]
    reports = fleet.app.reports
    reports.printer_job_event("mk4", job["id"], JobState.PRINTING, "started")
    reports.set_live("mk4", LiveStatus("printing", {}, 25.0, None, job["id"], time.time()))

    reports.finish_job(job["id"], JobState.FAILED, actor="printer:mk4", reason="thermal runaway")

    left = api["alice"].get(f"/api/v1/spools/{spool['id']}").get_json()["remaining_grams"]
    assert left == pytest.approx(1000 - weight * 0.25, abs=0.01)


def test_a_printers_own_token_loads_and_unloads_only_its_own_spool(api, fleet):
    from fleet.http_protocol import BrokerAddress

    fleet.app.enrollment.node_mqtt = BrokerAddress("fleet.lab", 18830, tls=False)
    tokens = {}
    for name in ("Home", "Other"):
        code = api["manager"].post("/api/v1/enroll-codes", json={}).get_json()["code"]
        answer = api["anonymous"].post(
            "/api/v1/printers/enroll", json={"code": code, "name": name, "capabilities": CAPS}
        )
        assert answer.status_code == 201, answer.get_json()
        tokens[name] = answer.get_json()["token"]
    spool = add_spool(api)
    url = "/api/v1/printers/home/spool"
    home = as_printer(api, tokens["Home"])

    seen = api["anonymous"].get(url, headers=home).get_json()
    assert seen["loaded"] is None and [s["id"] for s in seen["shelf"]] == [spool["id"]]
    put = api["anonymous"].put(url, headers=home, json={"spool_id": spool["id"]})
    assert put.status_code == 200 and put.get_json()["loaded"]["id"] == spool["id"]
    assert put.get_json()["shelf"] == []
    assert api["anonymous"].get("/api/v1/printers/home", headers=home).status_code == 401

    assert (
        api["anonymous"].put(url, headers=as_printer(api, tokens["Other"]), json={"spool_id": 1}).status_code
        == 403
    )
    assert api["anonymous"].delete(url, headers=as_printer(api, tokens["Other"])).status_code == 403
    assert api["alice"].delete(url).status_code == 401
    assert api["manager"].get(f"/api/v1/spools/{spool['id']}").get_json()["printer_id"] == "home"

    gone = api["anonymous"].delete(url, headers=home)
    assert gone.status_code == 200 and gone.get_json()["loaded"] is None


def test_a_loaded_spools_material_wins_over_what_the_node_reports(api, fleet):
    from fleet.protocol import Capabilities

    add_printer(api, "mk4")
    spool = add_spool(api)
    api["manager"].post(f"/api/v1/spools/{spool['id']}/load", json={"printer_id": "mk4"})
    reports = fleet.app.reports
    says_pla = Capabilities(material="PLA")
    assert reports.capability_changes(fleet.store.get_printer("mk4"), says_pla) == {}
    api["manager"].post(f"/api/v1/spools/{spool['id']}/unload")
    assert reports.capability_changes(fleet.store.get_printer("mk4"), says_pla) == {"material": "PLA"}
