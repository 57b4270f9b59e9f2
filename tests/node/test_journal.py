from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleet.node import FleetJob, JobPhase, Journal, Offer
from fleet.protocol import Ack, AckStatus, Command, CommandType, Event, EventType, JobRef


def test_everything_survives_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    journal = Journal.load(path)
    ack = Ack("c1", AckStatus.ACCEPTED, 5.0, 7, "")
    job = FleetJob(7, "c1", "crowdfab/7-a.gcode", JobPhase.PRINTING)
    event = Event(EventType.JOB_STARTED, 6.0, 7)
    command = Command(
        "c2", CommandType.DISPATCH, 1.0, 9.0, None, JobRef(8, "http://f/x", "0" * 64, 3, "b.gcode")
    )
    journal.record_ack(ack)
    journal.set_job(job, event)
    journal.set_offer(Offer(command, 99.0))

    again = Journal.load(path)
    assert again.ack_for("c1") == ack
    assert again.job == job
    assert again.outbox == [event]
    assert again.offer == Offer(command, 99.0)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "no temp file left behind"


@pytest.mark.parametrize(
    ("phase", "event", "after"),
    [
        (JobPhase.PRINTING, EventType.JOB_PAUSED, JobPhase.PAUSED),
        (JobPhase.PAUSED, EventType.JOB_RESUMED, JobPhase.PRINTING),
        (JobPhase.PRINTING, EventType.JOB_DONE, JobPhase.DONE),
        (JobPhase.PAUSED, EventType.JOB_CANCELLED, JobPhase.CANCELLED),
        (JobPhase.PRINTING, EventType.JOB_FAILED, JobPhase.FAILED),
        (JobPhase.PRINTING, EventType.JOB_STARTED, None),
        (JobPhase.PRINTING, EventType.JOB_RESUMED, None),
        (JobPhase.DONE, EventType.JOB_FAILED, None),
        (JobPhase.CANCELLED, EventType.JOB_DONE, None),
    ],
)
def test_printer_events_move_the_job(
    tmp_path: Path, phase: JobPhase, event: EventType, after: JobPhase
) -> None:
    journal = Journal.load(tmp_path / "j.json")
    journal.set_job(FleetJob(7, "c1", "a.gcode", phase))
    moved = journal.advance(Event(event, 1.0, 7))
    assert (moved.phase if moved else None) is after
    assert len(journal.outbox) == (1 if after else 0), "only a real change is reported"


def test_old_acks_are_forgotten_beyond_the_limit(tmp_path: Path) -> None:
    journal = Journal.load(tmp_path / "j.json", max_acks=3)
    for n in range(5):
        journal.record_ack(Ack(f"c{n}", AckStatus.DONE, float(n)))
    assert [journal.ack_for(f"c{n}") is not None for n in range(5)] == [False, False, True, True, True]


def test_a_corrupt_journal_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    path.write_text(json.dumps({"format": 1, "acks": {"c": {"status": "bogus"}}}))
    journal = Journal.load(path)
    assert journal.job is None and journal.ack_for("c") is None
    assert (tmp_path / "j.json.corrupt").exists()


def test_a_reported_event_leaves_the_outbox(tmp_path: Path) -> None:
    journal = Journal.load(tmp_path / "j.json")
    first, second = Event(EventType.JOB_STARTED, 1.0, 7), Event(EventType.JOB_DONE, 2.0, 7)
    journal.set_job(FleetJob(7, "c1", "a.gcode", JobPhase.PRINTING), first)
    journal.set_job(FleetJob(7, "c1", "a.gcode", JobPhase.DONE), second)
    journal.mark_reported(first)
    assert Journal.load(tmp_path / "j.json").outbox == [second]
