"""Listings through /api/v1 a page at a time (jobs, printers, members, a job's history): cursors,
the page size and its cap, filters."""

from __future__ import annotations

import pytest

from fleet.api.openapi import openapi_document
from fleet.api.shapes.jobs import DEFAULT_PAGE, MAX_PAGE
from fleet.geometry import Box
from fleet.models import NewPrinter, PrinterSpec
from fleet.states import JobState
from tests.store.helpers import submit as store_submit

from .test_printers_members import submit

SHA = "ab" * 32


def add_jobs(fleet, member_id: int, count: int, *, at: float = 1_767_225_600.0, state=JobState.QUEUED):
    """Jobs straight into the store: hundreds of them without analysing a file each."""
    jobs = store_submit(
        fleet.store,
        member_id,
        count=count,
        state=state,
        file_sha256=SHA,
        filename="part.gcode",
        size_bytes=10,
        analysis={"estimated_time_s": 60.0},
        now=at,
    )
    return [j.id for j in jobs]


def follow(client, url: str) -> tuple[list[int], int]:
    """Every id a listing gives, page after page, and how many pages it took."""
    ids: list[int] = []
    pages = 0
    cursor = None
    while True:
        sep = "&" if "?" in url else "?"
        response = client.get(url + (f"{sep}cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        ids += [j["id"] for j in body["jobs"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages


def test_a_long_history_comes_in_default_pages_each_job_once(api, fleet):
    ids = add_jobs(fleet, api["alice"].member_id, DEFAULT_PAGE + 5)
    first = api["manager"].get("/api/v1/jobs").get_json()
    assert len(first["jobs"]) == DEFAULT_PAGE and first["next_cursor"]
    seen, pages = follow(api["manager"], "/api/v1/jobs")
    assert seen == sorted(ids) and pages == 2
    mine, _ = follow(api["alice"], "/api/v1/jobs/mine?limit=40")
    assert mine == sorted(ids)


@pytest.mark.parametrize("limit", ["0", str(MAX_PAGE + 1), "ten", "-3"])
def test_page_sizes_beyond_the_cap_are_refused(api, limit):
    response = api["manager"].get(f"/api/v1/jobs?limit={limit}")
    assert response.status_code == 422 and response.get_json()["field"] == "limit"
    assert str(MAX_PAGE) in response.get_json()["message"]


def test_the_largest_page_is_allowed(api, fleet):
    add_jobs(fleet, api["alice"].member_id, 3)
    body = api["manager"].get(f"/api/v1/jobs?limit={MAX_PAGE}").get_json()
    assert len(body["jobs"]) == 3 and body["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cursor=abc", "cursor"),
        ("cursor=-1", "cursor"),
        ("since=yesterday", "since"),
        ("state=lost", "state"),
    ],
)
def test_bad_queries_name_the_parameter(api, query, field):
    response = api["manager"].get(f"/api/v1/jobs?{query}")
    assert response.status_code == 422 and response.get_json()["field"] == field


def test_filters_by_state_member_and_time(api, fleet):
    alice, bob = api["alice"].member_id, api["bob"].member_id
    january = add_jobs(fleet, alice, 2, at=1_767_225_600.0)  # 2026-01-01
    february = add_jobs(fleet, alice, 1, at=1_769_904_000.0, state=JobState.AWAITING_APPROVAL)  # 2026-02-01
    bobs = add_jobs(fleet, bob, 2, at=1_769_904_000.0)
    manager = api["manager"]

    def ids(query: str) -> list[int]:
        response = manager.get(f"/api/v1/jobs?{query}")
        assert response.status_code == 200, response.get_json()
        return [j["id"] for j in response.get_json()["jobs"]]

    assert ids(f"member_id={bob}") == bobs
    assert ids("member_id=&state=&limit=") == january + february + bobs  # empty: as if absent
    assert ids("state=awaiting_approval") == february
    assert ids("state=queued,awaiting_approval&limit=500") == january + february + bobs
    assert ids(f"member_id={alice}&since=2026-01-15T00:00:00Z") == february
    assert ids("until=2026-01-15T00:00:00%2B00:00") == january
    assert ids("since=2026-01-01T00:00:00&until=2026-01-01T00:00:01") == january  # no zone: UTC
    mine = api["alice"].get("/api/v1/jobs/mine?state=queued").get_json()["jobs"]
    assert [j["id"] for j in mine] == january


def test_members_list_only_their_own_jobs(api, fleet):
    add_jobs(fleet, api["bob"].member_id, 1)
    alice = api["alice"]
    assert alice.get("/api/v1/jobs").status_code == 403
    assert alice.get(f"/api/v1/jobs?member_id={api['bob'].member_id}").status_code == 403
    own = alice.get(f"/api/v1/jobs?member_id={alice.member_id}")
    assert own.status_code == 200 and own.get_json() == {"jobs": [], "next_cursor": None}


def test_a_page_of_my_jobs_explains_the_waiting_ones(api):
    first = submit(api["alice"])
    second = submit(api["alice"])
    page = api["alice"].get("/api/v1/jobs/mine?limit=1").get_json()
    assert [j["id"] for j in page["jobs"]] == [first]
    assert page["jobs"][0]["explanation"]["position"] == 1
    rest = api["alice"].get(f"/api/v1/jobs/mine?limit=1&cursor={page['next_cursor']}").get_json()
    assert [j["id"] for j in rest["jobs"]] == [second] and rest["next_cursor"] is None
    assert rest["jobs"][0]["explanation"]["position"] == 2


def add_printers(fleet, manager_id: int, ids: list[str]) -> None:
    manager = fleet.store.get_member(manager_id)
    spec = PrinterSpec(Box(0, 0, 0, 180, 180, 180))
    for printer_id in ids:
        fleet.app.printers.add_printer(manager, NewPrinter(printer_id, printer_id.upper(), spec))


def follow_key(client, url: str, key: str) -> tuple[list, int]:
    """Every row a listing gives under ``key`` (its id), page after page, and how many pages it took."""
    seen, pages, cursor = [], 0, None
    while True:
        sep = "&" if "?" in url else "?"
        response = client.get(url + (f"{sep}cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        seen += [row["id"] if "id" in row else (row["from"], row["to"], row["reason"]) for row in body[key]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages


def test_printers_come_in_pages_in_id_order_for_every_member(api, fleet):
    ids = [f"p-{n:02d}" for n in range(7)]
    add_printers(fleet, api["manager"].member_id, list(reversed(ids)))
    first = api["alice"].get("/api/v1/printers?limit=3").get_json()
    assert [p["id"] for p in first["printers"]] == ids[:3] and first["next_cursor"] == ids[2]
    seen, pages = follow_key(api["alice"], "/api/v1/printers?limit=3", "printers")
    assert seen == ids and pages == 3
    whole = api["alice"].get("/api/v1/printers").get_json()
    assert [p["id"] for p in whole["printers"]] == ids and whole["next_cursor"] is None


def test_a_printer_added_meanwhile_never_shifts_a_page(api, fleet):
    add_printers(fleet, api["manager"].member_id, ["b", "d", "f"])
    first = api["alice"].get("/api/v1/printers?limit=2").get_json()
    add_printers(fleet, api["manager"].member_id, ["a", "c"])  # both sort before the cursor
    rest = api["alice"].get(f"/api/v1/printers?limit=2&cursor={first['next_cursor']}").get_json()
    assert [p["id"] for p in first["printers"] + rest["printers"]] == ["b", "d", "f"]


def test_members_come_in_pages_for_managers_only(api, fleet):
    for n in range(5):
        fleet.app.members.add_member(f"extra{n}")
    everyone = [m.id for m in fleet.store.list_members()]
    seen, pages = follow_key(api["manager"], "/api/v1/members?limit=2", "members")
    assert seen == everyone and pages == (len(everyone) + 1) // 2
    assert api["alice"].get("/api/v1/members?limit=2").status_code == 403
    assert api["alice"].get("/api/v1/members?limit=nonsense").status_code == 403  # who, before what


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/printers?cursor=../x", "cursor"),
        ("/api/v1/printers?limit=0", "limit"),
        ("/api/v1/members?cursor=x", "cursor"),
        (f"/api/v1/members?limit={MAX_PAGE + 1}", "limit"),
    ],
)
def test_bad_page_queries_name_the_parameter(api, url, field):
    response = api["manager"].get(url)
    assert response.status_code == 422 and response.get_json()["field"] == field


def test_a_long_history_comes_in_pages_and_the_job_holds_the_first(api, fleet):
    job_id = submit(api["alice"])
    for n in range(DEFAULT_PAGE + 4):
        fleet.store.set_priority(job_id, n % 7 - 3, actor="manager:1", now=1_767_225_600.0 + n)
    every = [(e.from_state, e.to_state, e.reason) for e in fleet.store.job_events(job_id)]
    job = api["alice"].get(f"/api/v1/jobs/{job_id}").get_json()
    assert len(job["history"]) == DEFAULT_PAGE and job["history_next_cursor"]
    rest = api["alice"].get(f"/api/v1/jobs/{job_id}/history?cursor={job['history_next_cursor']}").get_json()
    assert len(job["history"]) + len(rest["events"]) == len(every) and rest["next_cursor"] is None
    seen, pages = follow_key(api["alice"], f"/api/v1/jobs/{job_id}/history?limit=30", "events")
    assert [(f, t, r) for f, t, r in seen] == [(f and f.value, t.value, r) for f, t, r in every]
    assert pages == -(-len(every) // 30)
    assert api["bob"].get(f"/api/v1/jobs/{job_id}/history").status_code == 403
    assert api["manager"].get(f"/api/v1/jobs/{job_id}/history?limit=1").status_code == 200
    assert api["alice"].get("/api/v1/jobs/999999/history").status_code == 404


def test_a_short_history_says_there_is_no_more(api):
    job_id = submit(api["alice"])
    job = api["alice"].get(f"/api/v1/jobs/{job_id}").get_json()
    assert [h["to"] for h in job["history"]] == ["submitted", "queued"] and job["history_next_cursor"] is None


def test_every_paged_listing_documents_limit_and_cursor_and_answers_next_cursor():
    document = openapi_document()
    for path in ("/jobs", "/jobs/mine", "/printers", "/members", "/jobs/{job_id}/history"):
        operation = document["paths"][path]["get"]
        params = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
        assert {"limit", "cursor"} <= set(params), path
        assert params["limit"]["schema"]["maximum"] == MAX_PAGE, path
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        schema = document["components"]["schemas"][answer.rsplit("/", 1)[1]]
        assert "next_cursor" in schema["required"], path
