"""The fleet's disk full: an upload that does not fit, and a database that cannot grow.

The full disk is a real one: a small tmpfs mounted for the test (the tests run as root here), filled
with a plain file until only a little space is left, under a real ``crowdfab-fleet serve`` process.
A tmpfs was chosen over RLIMIT_FSIZE because it fails every writer the way a full disk does (the
database's journal included, with ENOSPC rather than a signal), and over a loop-mounted image
because it needs no image file and no loop device. Where mounting is refused the tests are
skipped, saying so; ``tests/store/test_blobs.py`` covers the blob store's side without a mount.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from fleet.gcode.generate import generate_box
from fleet.models import Role
from tests.brokers import TestBroker
from tests.disks import small_disk

from .conftest import FleetProcess, check_store, prepare_data_dir

MiB = 1024 * 1024
#: A real part padded with comment lines to about 2.4 MiB: accepted by the lab, bigger than the room left.
LARGE = (generate_box(20, 20, 2, origin=(60.0, 60.0)) + ("; " + "x" * 78 + "\n") * 30_000).encode()
SMALL = generate_box(8, 8, 0.4, origin=(60.0, 60.0)).encode()


def fill(folder: Path, leave: int = 0) -> Path:
    """Take the free space of ``folder``'s filesystem with one file, leaving about ``leave`` bytes."""
    filler = folder / "filler"
    stat = os.statvfs(folder)
    want = max(0, stat.f_bavail * stat.f_frsize - leave)
    chunk = bytes(64 * 1024)
    with filler.open("wb") as out:
        try:
            while want > 0:
                want -= out.write(chunk[: min(len(chunk), want)])
                out.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler


def blob_files(files: Path) -> list[str]:
    return sorted(str(p.relative_to(files)) for p in files.glob("??/??/*"))


def staging_files(files: Path) -> list[str]:
    return sorted(p.name for p in (files / "tmp").glob("*"))


def test_an_upload_larger_than_the_free_space_is_refused_cleanly_and_works_once_space_is_freed(
    tmp_path: Path, mosquitto: TestBroker, make_fleet: Callable[..., FleetProcess]
) -> None:
    data_dir = tmp_path / "fleet"
    tokens = prepare_data_dir(data_dir, {"ada": Role.MANAGER, "alice": Role.MEMBER})
    with small_disk(data_dir / "files", "4m") as files:
        fleet = make_fleet(data_dir, mqtt_url=mosquitto.url)
        fleet.start()
        try:
            alice, ada = tokens["alice"], tokens["ada"]
            for n in range(2):  # a queue to keep as it is
                upload = {"file": (f"part-{n}.gcode", b"; part %d\n" % n + SMALL)}
                assert fleet.api(alice, "POST", "/jobs", files=upload).status_code == 201
            queue_before = fleet.api(ada, "GET", "/queue").json()["queue"]
            jobs_before = fleet.api(ada, "GET", "/jobs").json()["jobs"]
            blobs_before = blob_files(files)
            filler = fill(files, leave=MiB)

            refused = fleet.api(alice, "POST", "/jobs", files={"file": ("big.gcode", LARGE)})

            assert refused.status_code == 507, refused.text
            body = refused.json()
            assert body["error"] == "insufficient_storage"
            assert "disk is full" in body["message"] and "free some space" in body["message"]
            assert staging_files(files) == [], "a half-written upload stayed in staging"
            assert blob_files(files) == blobs_before
            assert fleet.api(ada, "GET", "/jobs").json()["jobs"] == jobs_before
            assert fleet.api(ada, "GET", "/queue").json()["queue"] == queue_before

            filler.unlink()
            accepted = fleet.api(alice, "POST", "/jobs", files={"file": ("big.gcode", LARGE)})
            assert accepted.status_code == 201, accepted.text
            [job] = accepted.json()["jobs"]
            assert job["state"] == "queued" and job["size_bytes"] == len(LARGE)
            queue = [entry["id"] for entry in fleet.api(ada, "GET", "/queue").json()["queue"]]
            assert queue == [entry["id"] for entry in queue_before] + [job["id"]]
        finally:
            fleet.stop()
        report = check_store(data_dir)
        assert not report.problems, report.problems
        assert report.staging_files == [] and report.unreferenced_blobs == []


def test_a_full_disk_under_the_database_is_a_clear_error_and_leaves_it_intact(
    tmp_path: Path, mosquitto: TestBroker, make_fleet: Callable[..., FleetProcess]
) -> None:
    with small_disk(tmp_path / "fleet", "16m") as data_dir:
        tokens = prepare_data_dir(data_dir, {"ada": Role.MANAGER, "alice": Role.MEMBER})
        fleet = make_fleet(data_dir, mqtt_url=mosquitto.url)
        fleet.start()
        try:
            alice, ada = tokens["alice"], tokens["ada"]
            first = fleet.api(alice, "POST", "/jobs", files={"file": ("part.gcode", SMALL)})
            assert first.status_code == 201, first.text
            job_id = first.json()["jobs"][0]["id"]
            filler = fill(data_dir)

            # Writes that need the database to grow (each request also notes its token's use).
            answers = [
                fleet.api(alice, "POST", f"/jobs/{job_id}/cancel", json={"reason": "changed my mind"}),
                fleet.api(ada, "PATCH", "/settings", json={"approval_required": True}),
            ]
            for answer in answers:
                assert answer.status_code == 507, answer.text
                assert answer.json()["error"] == "insufficient_storage"
                assert "database is full" in answer.json()["message"]
            assert fleet.running, f"the fleet died of a full disk:\n{fleet.log_tail()}"

            filler.unlink()
            assert fleet.api(ada, "GET", f"/jobs/{job_id}").json()["state"] == "queued"
            cancelled = fleet.api(alice, "POST", f"/jobs/{job_id}/cancel", json={"reason": "changed my mind"})
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["state"] == "cancelled"
        finally:
            fleet.stop()
        report = check_store(data_dir)
        assert not report.problems, report.problems
        assert report.jobs[job_id]["state"] == "cancelled"
