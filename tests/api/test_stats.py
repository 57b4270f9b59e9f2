"""/api/v1/stats and its CSV: a period's breakdown, who sees which rows, and bad input named."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from fleet.geometry import Box
from fleet.models import LabSettingsChanges, NewPrinter, PastJob, PrinterSpec
from fleet.states import JobState

PARIS = ZoneInfo("Europe/Paris")
HOUR = 3600.0


def at(day: int, hour: float) -> float:
    """Epoch seconds of 2026-11-<day> at <hour> o'clock in Paris."""
    return datetime(2026, 11, day, tzinfo=PARIS).timestamp() + hour * HOUR


@pytest.fixture
def history(fleet, clients):
    """On mk4 in Paris: alice done (waited 1 h) and failed (3 h) on the 2nd, bob done at 00:30 on the 3rd."""
    svc = fleet.app
    manager = svc.store.get_member(clients["manager"].member_id)
    svc.lab.update(manager, LabSettingsChanges(time_zone="Europe/Paris"))
    svc.printers.add_printer(manager, NewPrinter("mk4", "Prusa MK4", PrinterSpec(Box.of_size(250, 210, 220))))
    svc.clock = lambda: at(20, 12)

    def past(who: str, outcome: JobState, submitted: float, waited_h: float, printed_h: float, grams: float):
        start = submitted + waited_h * HOUR
        return svc.store.record_past_jobs(
            [
                PastJob(
                    clients[who].member_id,
                    "mk4",
                    outcome=outcome,
                    file_sha256="ab" * 32,
                    filename="part.gcode",
                    size_bytes=100,
                    material="PLA",
                    analysis={"filament_weight_g": grams},
                    submitted_at=submitted,
                    started_at=start,
                    finished_at=start + printed_h * HOUR,
                )
            ],
            actor="test",
        )

    past("alice", JobState.DONE, at(2, 9), 1, 2, 10.0)
    past("alice", JobState.FAILED, at(2, 12), 3, 1, 5.0)
    past("bob", JobState.DONE, at(2, 20.5), 4, 3, 40.0)  # starts 00:30 on the 3rd, Paris time


def test_a_manager_sees_every_member_and_the_totals_add_up(api, history):
    body = api["manager"].get("/api/v1/stats?by=member&from=2026-11-01&to=2026-11-30").get_json()
    assert body["period"] == {"from": "2026-11-01", "to": "2026-11-30", "time_zone": "Europe/Paris"}
    rows = {r["label"]: r for r in body["rows"]}
    assert set(rows) == {"alice", "bob"}
    alice = rows["alice"]
    assert (alice["prints"], alice["done"], alice["failed"], alice["failure_rate"]) == (2, 1, 1, 0.5)
    assert (alice["hours"], alice["grams"], alice["wait_median_s"]) == (3.0, 15.0, 2 * HOUR)
    assert (
        body["totals"]["prints"] == 3 and body["totals"]["grams"] == 55.0 and body["totals"]["cost"] is None
    )


def test_days_are_the_labs_days(api, history):
    second = api["manager"].get("/api/v1/stats?from=2026-11-02&to=2026-11-02").get_json()
    third = api["manager"].get("/api/v1/stats?from=2026-11-03&to=2026-11-03").get_json()
    assert [r["label"] for r in second["rows"]] == ["alice"]
    assert [r["label"] for r in third["rows"]] == ["bob"]


def test_a_member_sees_only_their_own_row_but_the_labs_printers_and_totals(api, history):
    mine = api["bob"].get("/api/v1/stats?from=2026-11-01&to=2026-11-30").get_json()
    assert [r["label"] for r in mine["rows"]] == ["bob"] and mine["totals"]["prints"] == 3
    printers = api["bob"].get("/api/v1/stats?by=printer&from=2026-11-01&to=2026-11-30").get_json()
    assert [(r["key"], r["prints"]) for r in printers["rows"]] == [("mk4", 3)]
    text = api["bob"].get("/api/v1/stats.csv?by=member&from=2026-11-01&to=2026-11-30").get_data(as_text=True)
    assert "alice" not in text
    lines = list(csv.reader(io.StringIO(text)))
    assert [line[1] for line in lines[1:]] == ["bob", "total"]


def test_the_csv_downloads_as_a_file(api, history):
    response = api["manager"].get("/api/v1/stats.csv?by=material&from=2026-11-01&to=2026-11-30")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert lines[0][0] == "material" and lines[1][:3] == ["PLA", "PLA", "3"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("by=colour", "by"),
        ("from=2026-11-31", "from"),
        ("from=2026-11-30&to=2026-11-01", "to"),
        ("to=" + "9" * 40, "to"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(api, query, field):
    response = api["alice"].get(f"/api/v1/stats?{query}")
    assert response.status_code == 422 and response.get_json()["field"] == field
    assert api["anonymous"].get("/api/v1/stats").status_code == 401


def test_the_labs_time_zone_is_a_setting_a_manager_changes(api):
    assert (
        api["manager"].patch("/api/v1/settings", json={"time_zone": "Asia/Tokyo"}).get_json()["time_zone"]
        == "Asia/Tokyo"
    )
    refused = api["manager"].patch("/api/v1/settings", json={"time_zone": "Mars/Olympus"})
    assert refused.status_code == 422 and refused.get_json()["field"] == "time_zone"
    assert api["alice"].get("/api/v1/settings").get_json()["time_zone"] == "Asia/Tokyo"
