"""The plugin's call that queues a file: one Idempotency-Key per file, resent when the answer is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from octoprint_crowdfab.enroll import queue_file
from tests.e2e.test_fleet_octoprint import RunningFleet
from tests.lost_answer import AnswerDropper

PART = "M82\nG28\nG92 E0\nG1 Z0.2 F600\nG1 X10 Y10 F3000\nG1 X50 Y10 E2 F1200\nG1 X50 Y50 E4\n"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[RunningFleet]:
    with RunningFleet(tmp_path / "fleet") as running:
        yield running


def test_a_lost_answer_is_resent_with_the_same_key_and_the_file_is_queued_once(
    fleet: RunningFleet, tmp_path: Path
) -> None:
    token = fleet.cli("member", "add", "alice")["token"]
    part = tmp_path / "part.gcode"
    part.write_text(PART)
    relay = AnswerDropper(fleet.port)
    try:
        answer = queue_file(f"http://127.0.0.1:{relay.port}", token, part, "part.gcode", copies=2)
    finally:
        relay.close()

    assert relay.connections == 2, "the first answer was lost and the file sent once more"
    answered = [job["id"] for job in answer["jobs"]]
    mine = fleet.api(token, "GET", "/jobs/mine").json()["jobs"]
    assert sorted(job["id"] for job in mine) == sorted(answered) and len(answered) == 2

    # Each call is a submission of its own: a new key, new jobs.
    again = queue_file(fleet.url, token, part, "part.gcode")
    assert again["jobs"][0]["id"] not in answered
