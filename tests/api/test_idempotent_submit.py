"""POST /api/v1/jobs with an Idempotency-Key: a retried submission queues its jobs once."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest

from fleet.app.intake import SUBMISSION_KEY_TTL_S
from tests.conftest import Client

from .conftest import CheckedClient
from .test_jobs import SMALL, stored_files


def submit(client, key: str | None, content: str = SMALL, **fields):
    form = {"file": (io.BytesIO(content.encode()), "part.gcode"), **{k: str(v) for k, v in fields.items()}}
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post("/api/v1/jobs", data=form, content_type="multipart/form-data", headers=headers)


def job_ids(response) -> list[int]:
    return [job["id"] for job in response.get_json()["jobs"]]


def all_jobs(fleet) -> list[int]:
    return [job.id for job in fleet.app.store.list_jobs()]


def test_the_same_key_and_request_answer_the_first_jobs_and_create_nothing(api, fleet):
    first = submit(api["alice"], "retry-1", copies=2, material="petg", note="for the club")
    again = submit(api["alice"], "retry-1", copies=2, material="PETG", note="for the club ")

    assert first.status_code == again.status_code == 201
    assert job_ids(again) == job_ids(first)
    assert again.headers["Location"] == first.headers["Location"]
    assert again.get_json()["analysis"] == first.get_json()["analysis"]
    assert all_jobs(fleet) == job_ids(first)
    assert len(stored_files(fleet)) == 1, "one stored file, and no staging copy left behind"


def test_the_draft_quoted_form_of_a_key_is_the_same_key(api, fleet):
    first = submit(api["alice"], '"8e03978e-40d5-43e8-bc93-6894a57f9324"')
    again = submit(api["alice"], "8e03978e-40d5-43e8-bc93-6894a57f9324")

    assert job_ids(again) == job_ids(first)
    assert len(all_jobs(fleet)) == 1


def test_without_a_key_each_request_is_a_new_submission(api, fleet):
    submit(api["alice"], None)
    submit(api["alice"], None)

    assert len(all_jobs(fleet)) == 2


@pytest.mark.parametrize(
    "changed",
    [
        {"content": SMALL + "G1 X20 Y20\n"},
        {"copies": 2},
        {"material": "ABS"},
        {"note": "another note"},
    ],
)
def test_the_same_key_with_another_request_is_refused_with_422(api, fleet, changed):
    first = submit(api["alice"], "k")
    refused = submit(api["alice"], "k", **changed)

    assert refused.status_code == 422
    body = refused.get_json()
    assert body["field"] == "Idempotency-Key"
    assert "already used for a different submission" in body["message"]
    assert all_jobs(fleet) == job_ids(first)


def test_another_members_same_key_is_independent(api, fleet):
    mine = submit(api["alice"], "shared")
    theirs = submit(api["bob"], "shared")

    assert mine.status_code == theirs.status_code == 201
    assert set(job_ids(mine)).isdisjoint(job_ids(theirs))
    assert theirs.get_json()["jobs"][0]["member_id"] == api["bob"].member_id
    assert len(all_jobs(fleet)) == 2


@pytest.mark.parametrize("key", ["", " ", "x" * 129, "naïve", "tab\there", '"unterminated', '"bad\\n"'])
def test_a_malformed_key_is_a_422_naming_the_header(api, fleet, key):
    response = submit(api["alice"], key)

    assert response.status_code == 422
    body = response.get_json()
    assert body["field"] == "Idempotency-Key"
    assert "Idempotency-Key" in body["message"]
    assert all_jobs(fleet) == []


def test_racing_requests_with_one_key_make_one_set_of_jobs(app, clients, fleet):
    token = clients["alice"].token
    workers = 6
    start = Barrier(workers, timeout=60)

    def send(_: int) -> tuple[int, list[int]]:
        client = CheckedClient(Client(app.test_client(), token))
        start.wait()
        response = submit(client, "race", copies=2)
        return response.status_code, job_ids(response)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        answers = list(pool.map(send, range(workers)))

    assert {status for status, _ in answers} == {201}
    assert all(ids == answers[0][1] for _, ids in answers), answers
    assert all_jobs(fleet) == answers[0][1]


def test_a_key_expires_after_a_day_of_the_services_clock(api, fleet):
    now = [1_800_000_000.0]
    fleet.app.clock = lambda: now[0]
    first = submit(api["alice"], "daily")

    now[0] += SUBMISSION_KEY_TTL_S - 1
    assert job_ids(submit(api["alice"], "daily")) == job_ids(first)

    now[0] += 2
    later = submit(api["alice"], "daily")
    assert later.status_code == 201
    assert job_ids(later) != job_ids(first)
    assert len(all_jobs(fleet)) == 2
    # Renewed, the key names the later submission: another request with it is refused again.
    assert submit(api["alice"], "daily", note="changed").status_code == 422

    now[0] += SUBMISSION_KEY_TTL_S + 1
    assert fleet.app.intake.remove_expired_submission_keys() == 1


def test_a_running_fleet_forgets_expired_keys_as_members_submit(api, fleet):
    now = [1_800_000_000.0]
    fleet.app.clock = lambda: now[0]
    for n in range(3):
        assert submit(api["alice"], f"old-{n}").status_code == 201
    now[0] += SUBMISSION_KEY_TTL_S + 1  # a day later, with no restart in between
    assert submit(api["alice"], "new").status_code == 201  # this submission sweeps the three
    assert fleet.app.intake.remove_expired_submission_keys() == 0
