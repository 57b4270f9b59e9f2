"""Photos of the plate: only the printer the job ran on sends one, only images, bounded; who sees them."""

from __future__ import annotations

import pytest

from fleet.http_protocol import DEFAULT_SNAPSHOT_BYTES, BrokerAddress
from fleet.protocol import CommandType
from fleet.states import JobState

from .test_enrollment import as_printer, enroll
from .test_printers_members import submit

#: The smallest images a webcam could send: magic bytes and a little body (the fleet checks the magic).
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def printed(api, fleet):
    """Two enrolled printers; alice's job dispatched to one of them and printed to done."""
    fleet.app.enrollment.node_mqtt = BrokerAddress("fleet.lab", 18830, tls=False)
    _, mk4 = enroll(api, "mk4")
    _, mini = enroll(api, "mini")
    fleet.store.update_printer("mini", state="maintenance")
    fleet.store.update_printer("mk4", state="idle")
    job_id = submit(api["alice"])
    [(job_id, holder)] = fleet.app.dispatcher.dispatch_pass()
    assert holder == "mk4"
    fleet.app.reports.printer_job_event("mk4", job_id, JobState.PRINTING, "started")
    fleet.app.reports.finish_job(job_id, JobState.DONE, actor="printer", reason="done")
    return job_id, mk4["token"], mini["token"]


def put(api, printer_id, job_id, token, data, content_type="image/jpeg"):
    return api["anonymous"].put(
        f"/api/v1/printers/{printer_id}/jobs/{job_id}/snapshot",
        data=data,
        headers={**as_printer(api, token), "Content-Type": content_type},
    )


def test_the_printer_sends_its_photo_and_those_who_see_the_job_see_it(api, printed):
    job_id, mk4, _ = printed
    assert api["alice"].get(f"/api/v1/jobs/{job_id}/snapshot").status_code == 404
    assert put(api, "mk4", job_id, mk4, JPEG).status_code == 204
    for who in ("alice", "manager"):
        got = api[who].get(f"/api/v1/jobs/{job_id}/snapshot")
        assert got.status_code == 200 and got.data == JPEG
        assert got.headers["Content-Type"] == "image/jpeg"
    assert api["bob"].get(f"/api/v1/jobs/{job_id}/snapshot").status_code == 403
    assert api["anonymous"].get(f"/api/v1/jobs/{job_id}/snapshot").status_code == 401
    # A later photo of the same job replaces it; the type comes from the bytes, not the header.
    assert put(api, "mk4", job_id, mk4, PNG, content_type="image/jpeg").status_code == 204
    got = api["alice"].get(f"/api/v1/jobs/{job_id}/snapshot")
    assert got.data == PNG and got.headers["Content-Type"] == "image/png"


def test_only_the_printer_the_job_ran_on_sends_with_its_own_token(api, printed):
    job_id, mk4, mini = printed
    assert put(api, "mk4", job_id, mini, JPEG).status_code == 403  # another printer's token
    assert put(api, "mini", job_id, mini, JPEG).status_code == 403  # the job did not run there
    assert put(api, "mk4", job_id, "cfp_not-a-token", JPEG).status_code == 401
    assert put(api, "mk4", job_id, api["alice"].token, JPEG).status_code == 401  # a member's token
    assert put(api, "mk4", job_id, api["manager"].token, JPEG).status_code == 401
    assert put(api, "mk4", 999_999, mk4, JPEG).status_code == 404
    assert api["alice"].get(f"/api/v1/jobs/{job_id}/snapshot").status_code == 404


def test_what_is_no_image_or_too_large_is_refused_and_names_why(api, printed):
    job_id, mk4, _ = printed
    html = put(api, "mk4", job_id, mk4, b"<html><script>alert(1)</script></html>", "image/png")
    assert html.status_code == 422 and "JPEG or PNG" in html.get_json()["message"]
    assert html.get_json()["field"] == "snapshot"
    assert put(api, "mk4", job_id, mk4, b"").status_code == 422
    large = put(api, "mk4", job_id, mk4, JPEG + b"\x00" * DEFAULT_SNAPSHOT_BYTES)
    assert large.status_code == 413 and str(DEFAULT_SNAPSHOT_BYTES) in large.get_json()["message"]
    assert put(api, "mk4", job_id, mk4, JPEG[:3] + b"\x00" * (DEFAULT_SNAPSHOT_BYTES - 3)).status_code == 204
    assert api["alice"].get(f"/api/v1/jobs/{job_id}/snapshot").status_code == 200


def test_a_manager_sets_the_photos_size_limit_and_how_long_they_are_kept(api, fleet, printed):
    """Lab settings, checked, with defaults (2 MiB, 14 days); only a manager changes them."""
    job_id, mk4, _ = printed
    settings = api["alice"].get("/api/v1/settings").get_json()
    assert (settings["snapshot_max_bytes"], settings["snapshot_retention_days"]) == (2 * 1024 * 1024, 14)
    assert api["alice"].patch("/api/v1/settings", json={"snapshot_max_bytes": 100_000}).status_code == 403
    for bad in ({"snapshot_max_bytes": 1000}, {"snapshot_max_bytes": "2MB"}, {"snapshot_retention_days": 0}):
        refused = api["manager"].patch("/api/v1/settings", json=bad)
        assert refused.status_code == 422 and refused.get_json()["field"] == next(iter(bad)), bad
    assert (
        "64 KiB"
        in api["manager"].patch("/api/v1/settings", json={"snapshot_max_bytes": 1}).get_json()["message"]
    )
    changed = api["manager"].patch(
        "/api/v1/settings", json={"snapshot_max_bytes": 100_000, "snapshot_retention_days": 2}
    )
    assert changed.status_code == 200, changed.get_json()
    over = put(api, "mk4", job_id, mk4, JPEG + b"\x00" * 100_000)
    assert over.status_code == 413 and "at most 100000 bytes" in over.get_json()["message"]
    assert put(api, "mk4", job_id, mk4, JPEG + b"\x00" * 90_000).status_code == 204
    assert fleet.app.snapshots.retention_s == 2 * 86400
    now = fleet.app.clock()
    fleet.app.clock = lambda: now + 2 * 86400 + 60
    assert fleet.app.snapshots.remove_expired() == 1


def test_photos_are_forgotten_after_the_retention(api, fleet, printed):
    job_id, mk4, _ = printed
    now = fleet.app.clock()
    assert put(api, "mk4", job_id, mk4, JPEG).status_code == 204
    retention = fleet.app.snapshots.retention_s
    fleet.app.clock = lambda: now + retention - 60
    assert fleet.app.snapshots.remove_expired() == 0
    assert api["alice"].get(f"/api/v1/jobs/{job_id}/snapshot").status_code == 200
    fleet.app.clock = lambda: now + retention + 60
    assert fleet.app.snapshots.remove_expired() == 1
    assert api["alice"].get(f"/api/v1/jobs/{job_id}/snapshot").status_code == 404


def test_sending_a_photo_sweeps_the_expired_ones(api, fleet, printed):
    job_id, mk4, _ = printed
    start = fleet.app.clock()
    assert put(api, "mk4", job_id, mk4, JPEG).status_code == 204
    other = submit(api["alice"])
    fleet.store.update_printer("mk4", state="idle")
    [(other, holder)] = fleet.app.dispatcher.dispatch_pass()
    assert holder == "mk4"
    fleet.app.reports.printer_job_event("mk4", other, JobState.PRINTING, "started")
    fleet.app.reports.finish_job(other, JobState.DONE, actor="printer", reason="done")
    fleet.app.clock = lambda: start + fleet.app.snapshots.retention_s + 7200
    assert put(api, "mk4", other, mk4, PNG).status_code == 204
    assert api["alice"].get(f"/api/v1/jobs/{job_id}/snapshot").status_code == 404
    assert api["alice"].get(f"/api/v1/jobs/{other}/snapshot").status_code == 200


def test_a_manager_asks_the_printer_for_a_photo_of_the_job_on_its_plate(api, fleet, printed):
    job_id, _, _ = printed
    sent = []
    fleet.app.hooks.on_printer_command(
        lambda printer_id, command, job: sent.append((printer_id, command, job))
    )
    assert api["alice"].post("/api/v1/printers/mk4/snapshot").status_code == 403
    assert api["manager"].post("/api/v1/printers/nope/snapshot").status_code == 404
    assert api["manager"].post("/api/v1/printers/mini/snapshot").status_code == 409  # nothing printed there
    assert api["manager"].post("/api/v1/printers/mk4/snapshot").status_code == 202
    assert sent == [("mk4", CommandType.SNAPSHOT, job_id)]
