"""Reasons and positions at the edges: no printer yet, a flat part, printers that come and go.

What a member reads must be what the fair-share pass will do: the same order with or without printers.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.geometry import Box
from fleet.scheduler import JobInfo, PrinterInfo, WaitReason, plan
from fleet.states import JobState, PrinterState

NOW = 1_000_000.0
HOUR = 3600.0


def job(jid: int, member: int, submitted: float, seconds: float = HOUR, **needs: object) -> JobInfo:
    return JobInfo(jid, member, JobState.QUEUED, NOW - 1000 + submitted, seconds, **needs)  # type: ignore[arg-type]


def printer(pid: str = "p1", state: PrinterState = PrinterState.IDLE, size: float = 200.0) -> PrinterInfo:
    busy = NOW + HOUR if state is PrinterState.PRINTING else None
    return PrinterInfo(pid, state, Box.of_size(size, size, size), 0.4, "PLA", busy_until=busy)


def explain(printers: list[PrinterInfo], jobs: list[JobInfo]):  # type: ignore[no-untyped-def]
    return plan(printers, jobs, usage={}, grants={}, now=NOW).explanations


#: alice (member 1) queued five jobs, then bob (member 2) one.
FIVE_THEN_ONE = [job(n, 1, n) for n in range(1, 6)] + [job(6, 2, 10)]


def test_with_no_printer_every_job_says_none_has_joined_yet() -> None:
    flat = Box(10.0, 10.0, 0.2, 70.0, 60.0, 0.2)
    jobs = [*FIVE_THEN_ONE, job(7, 3, 11, bounds=flat, material="PETG", nozzle_diameter=0.6)]
    jobs.append(dataclasses.replace(job(8, 3, 12), state=JobState.AWAITING_APPROVAL))
    explanations = explain([], jobs)
    for n in range(1, 8):
        assert explanations[n].reason is WaitReason.NO_PRINTER_YET
        assert explanations[n].message.endswith("; no printer has joined the fleet yet.")
        assert "big enough" not in explanations[n].message
    assert explanations[8].message == (
        "Waiting for a manager to approve it. Note: no printer has joined the fleet yet."
    )


def test_with_no_printer_positions_follow_the_fair_share_pass() -> None:
    """bob's one job is 2nd behind alice's five, as the first printer to join will serve it."""
    alone = explain([], FIVE_THEN_ONE)
    assert alone[6].position == 2 and alone[6].message.startswith("2nd in line;")
    assert [alone[n].position for n in range(1, 6)] == [1, 3, 4, 5, 6]
    joined = plan([printer()], FIVE_THEN_ONE, usage={}, grants={}, now=NOW)
    assert joined.assignments == ((1, "p1"),)
    assert [joined.explanations[n].position for n in range(1, 7)] == [alone[n].position for n in range(1, 7)]


def test_positions_do_not_jump_when_the_only_printer_goes_offline() -> None:
    working = explain([printer(state=PrinterState.PRINTING)], FIVE_THEN_ONE)
    offline = explain([printer(state=PrinterState.OFFLINE)], FIVE_THEN_ONE)
    assert [offline[n].position for n in range(1, 7)] == [working[n].position for n in range(1, 7)]
    assert offline[6].reason is WaitReason.PRINTERS_UNAVAILABLE and offline[6].position == 2


def test_a_job_no_printer_could_take_still_does_not_push_its_members_others_back() -> None:
    """alice's first job is too big for the fleet: it waits for a bigger printer and costs her nothing."""
    huge = Box.of_size(500, 500, 10)
    jobs = [job(1, 1, 1, bounds=huge), job(2, 1, 2), job(3, 2, 3)]
    explanations = explain([printer(state=PrinterState.PRINTING)], jobs)
    assert explanations[1].reason is WaitReason.NO_COMPATIBLE_PRINTER
    assert [explanations[n].position for n in (1, 2, 3)] == [1, 2, 3]


def test_a_flat_part_is_as_tall_as_its_one_layer() -> None:
    flat = Box(10.0, 10.0, 0.2, 70.0, 60.0, 0.2)
    assert flat.print_size == (60.0, 50.0, 0.2)
    message = explain([printer(size=50.0)], [job(1, 1, 1, bounds=flat)])[1].message
    assert "no printer in the fleet is big enough for 60\u00d750\u00d70.2 mm" in message
    # A part printed from the first layer at 0.2 to 48 mm is 48 mm tall; one below the bed counts from there.
    assert Box(0, 0, 0.2, 10, 10, 48.0).print_size[2] == 48.0
    assert Box(0, 0, -0.5, 10, 10, 2.0).print_size[2] == 2.5


@st.composite
def queues(draw: st.DrawFn) -> list[JobInfo]:
    count = draw(st.integers(0, 12))
    return [
        job(
            n,
            draw(st.integers(1, 4)),
            draw(st.integers(0, 900)),
            float(draw(st.integers(0, 20_000))),
            priority=draw(st.integers(-1, 1)),
        )
        for n in range(1, count + 1)
    ]


@settings(deadline=None, max_examples=80)
@given(queues(), st.lists(st.sampled_from(list(PrinterState)), min_size=1, max_size=3))
def test_the_order_is_the_same_whatever_the_printers_are_doing(
    jobs: list[JobInfo], states: list[PrinterState]
) -> None:
    """No printer, printers offline, busy or idle: the queue's order (so every position) is the same."""
    empty = plan([], jobs, usage={}, grants={}, now=NOW)
    fleet = [printer(f"p{n}", state) for n, state in enumerate(states)]
    assert plan(fleet, jobs, usage={}, grants={}, now=NOW).order == empty.order
    positions = {e.job_id: e.position for e in empty.explanations.values()}
    assert sorted(positions.values()) == list(range(1, len(jobs) + 1))
