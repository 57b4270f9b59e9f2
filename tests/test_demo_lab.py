"""The demo's living lab without its printers' processes: the history it records and the reasons its
scenario makes the queue give in its first minutes (the whole demo runs in tests/agent/test_demo.py)."""

from __future__ import annotations

import random

import pytest

from fleet import demo
from fleet.errors import Conflict
from fleet.geometry import Box
from fleet.models import NewPrinter, PrinterChanges, PrinterSpec
from fleet.states import JobState, PrinterState
from fleet.statistics import Dimension

#: A Wednesday noon (UTC): the history ends the day before.
NOW = 1_764_763_200.0


@pytest.fixture
def lab(fleet):
    svc = fleet.app
    svc.clock = lambda: NOW
    people = demo.seed_people(svc)
    manager = people["ada"][0]
    for spec in demo.PRINTERS:
        volume = Box.of_size(*spec.volume)
        svc.printers.add_printer(
            manager, NewPrinter(spec.id, spec.name, PrinterSpec(volume, spec.nozzle, spec.material))
        )
    return demo.Lab(svc, people, random.Random(7))


def test_weeks_of_history_fill_the_statistics(lab):
    svc = lab.service
    recorded = demo.seed_history(svc, lab.people, now=NOW, rng=lab.rng)
    assert recorded >= 3 * 7 * 3  # three weeks of a few prints a day
    manager = lab.member("ada")
    period = svc.statistics.period(None, None)
    report = svc.statistics.report(manager, Dimension.MEMBER, period)
    assert report.totals.prints == recorded
    assert {f.label for f in report.rows} == set(demo.HABITS)
    assert report.totals.failed > 0 and report.totals.done > report.totals.failed
    assert report.totals.wait_p90_s > report.totals.wait_median_s > 60
    by_printer = svc.statistics.report(manager, Dimension.PRINTER, period)
    assert {f.key for f in by_printer.rows} == {spec.id for spec in demo.PRINTERS}
    # Every past print is on a printer that could take it, and its history reads like a real one.
    job = svc.store.list_jobs(states=[JobState.DONE], limit=1)[0]
    steps = [(e.from_state, e.to_state) for e in svc.store.job_events(job.id)]
    assert steps[0] == (None, JobState.SUBMITTED) and steps[-1][1] is JobState.DONE


def test_the_scenario_shows_reasons_of_every_kind_in_the_first_minutes(lab):
    svc = lab.service
    demo.seed_lab(svc, lab.people)
    steps = list(demo.SCENARIO)
    said = demo.play(lab, steps, elapsed=60.0)
    assert len(said) == 8 and [s.at for s in steps] == [90.0]  # the end of the maintenance is still to come
    svc.dispatcher.dispatch_pass()
    queue = svc.dispatcher.queue(lab.member("bob"))
    reasons = {e.explanation.reason.value for e in queue if e.explanation is not None}
    assert reasons >= {
        "awaiting_approval",
        "material_not_loaded",
        "no_compatible_printer",
        "printers_unavailable",
        "no_printer_free",
        "quota",
    }
    # The colour change: no printer has red PLA loaded, and the queue names the colours that are.
    red = [e for e in queue if e.job.colour == "red"]
    assert red and red[0].explanation is not None
    assert red[0].explanation.reason.value == "material_not_loaded", red[0].explanation
    assert "red PLA" in red[0].explanation.message, red[0].explanation.message
    bobs = [
        e.explanation.position for e in queue if e.job.member_id == lab.member("bob").id and e.explanation
    ]
    others = [
        e.explanation.position for e in queue if e.job.member_id != lab.member("bob").id and e.explanation
    ]
    assert max(bobs) > max(p for p in others if p is not None)  # his batch waits behind the others' jobs
    assert demo.play(lab, steps, elapsed=91.0) == ["ada finished the Prusa MK4's maintenance"] and not steps


def test_a_maintenance_waits_for_the_print_and_ends_only_after_it_began(lab):
    svc = lab.service
    job_id = lab.submit("alice", demo.part_named("bracket.gcode"))[0]
    assert svc.dispatcher.dispatch_pass() == [(job_id, "prusa-mk4")]  # the PETG printer is busy
    steps = [demo.Step(8.0, demo.maintenance(True)), demo.Step(90.0, demo.maintenance(False))]
    assert demo.play(lab, steps, elapsed=120.0) == [] and len(steps) == 2  # neither happens yet


def test_a_maintenance_waits_for_the_bed_clear_and_the_printer_is_then_idle_for_its_node_too(lab):
    # A plate that still holds a print is cleared first: its node declines work until the clear,
    # and a maintenance that began meanwhile ended in "idle" with the node still waiting for it.
    svc = lab.service
    manager = lab.member("ada")
    job_id = lab.submit("alice", demo.part_named("bracket.gcode"))[0]
    assert svc.dispatcher.dispatch_pass() == [(job_id, "prusa-mk4")]
    svc.store.update_printer("prusa-mk4", state=PrinterState.AWAITING_BED_CLEAR, current_job_id=None)
    with pytest.raises(Conflict, match="clear the bed before maintenance"):
        svc.printers.update_printer(manager, "prusa-mk4", PrinterChanges(maintenance=True))
    steps = [demo.Step(8.0, demo.maintenance(True))]
    assert demo.play(lab, steps, elapsed=9.0) == [] and len(steps) == 1  # ada waits for the clear
    svc.printers.confirm_bed_cleared(manager, "prusa-mk4")
    said = demo.play(lab, steps, elapsed=10.0)
    assert said and said[0].startswith("ada took the Prusa MK4") and not steps
    assert svc.store.get_printer("prusa-mk4").state is PrinterState.MAINTENANCE


def test_members_keep_arriving_at_the_labs_pace(lab):
    now = [0.0]
    arrivals = demo.Arrivals(lab, mean_s=10.0, clock=lambda: now[0])
    said = []
    for tick in range(1, 400):
        now[0] = tick * 0.5
        said += [s for s in [arrivals.step()] if s]
    assert 10 <= len(said) <= 35  # about one every 10 s over 200 s
    assert len(lab.service.store.list_jobs()) == len(said)
