"""Files stored for an upload whose job was never recorded (the fleet stopped in between) are swept."""

from __future__ import annotations

import io
import os
import time

from fleet.models import Role

GCODE = b"G28\nG1 X10 Y10 Z0.2 E1 F1200\n"


def age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_only_old_files_no_job_refers_to_are_removed(fleet) -> None:
    service, blobs = fleet.app, fleet.blobs
    member, _ = service.members.add_member("alice", Role.MEMBER)
    job = service.intake.submit_job(member, io.BytesIO(GCODE), filename="part.gcode").jobs[0]
    service.jobs.cancel_job(member, job.id)  # a finished job's file stays: its history shows it
    orphan_old = blobs.put_stream(io.BytesIO(b"G28\n; cut off\n"), max_bytes=1 << 20)
    orphan_new = blobs.put_stream(io.BytesIO(b"G28\n; just stored by another process\n"), max_bytes=1 << 20)
    for sha in (job.file_sha256, orphan_old.sha256):
        age(blobs.path(sha), 7200)
    age(blobs.path(orphan_new.sha256), 60)

    assert service.intake.remove_orphan_blobs(older_than_s=3600) == 1
    assert not blobs.exists(orphan_old.sha256)
    assert blobs.exists(orphan_new.sha256), "a file stored a moment ago may be about to get its job"
    assert blobs.exists(job.file_sha256)
    assert {sha for sha, _ in blobs.stored()} == {job.file_sha256, orphan_new.sha256}
    assert service.intake.remove_orphan_blobs(older_than_s=3600) == 0
