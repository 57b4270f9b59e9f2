"""The scheduler: fit rules and reasons by example, its laws as properties."""

from __future__ import annotations

import copy
import gc
import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fleet.errors import Invalid
from fleet.geometry import Box
from fleet.scheduler import (
    Explanation,
    JobInfo,
    Plan,
    PrinterInfo,
    SchedulerParams,
    WaitReason,
    decayed_usage,
    effective_priority,
    fits,
    plan,
)
from fleet.states import DISPATCHABLE, JobState, PrinterState

NOW = 1_000_000.0
HOUR = 3600.0


def printer(
    pid: str = "p1",
    state: PrinterState = PrinterState.IDLE,
    size: tuple[float, float, float] = (250, 210, 210),
    nozzle: float = 0.4,
    material: str | None = "PLA",
    restricted: bool = False,
    busy_until: float | None = None,
) -> PrinterInfo:
    return PrinterInfo(pid, state, Box.of_size(*size), nozzle, material, restricted, busy_until)


def job(
    jid: int = 1,
    member: int = 1,
    state: JobState = JobState.QUEUED,
    submitted: float = NOW - 60,
    seconds: float = HOUR,
    size: tuple[float, float, float] | None = None,
    nozzle: float | None = None,
    material: str | None = None,
    priority: int = 0,
) -> JobInfo:
    bounds = None if size is None else Box.of_size(*size)
    return JobInfo(jid, member, state, submitted, seconds, bounds, nozzle, material, priority)


def run(
    printers: Sequence[PrinterInfo],
    jobs: Sequence[JobInfo],
    usage: dict[int, float] | None = None,
    grants: dict[int, frozenset[str]] | None = None,
    now: float = NOW,
    params: SchedulerParams | None = None,
    explain: bool = True,
) -> Plan:
    return plan(
        printers,
        jobs,
        usage=usage or {},
        grants=grants or {},
        now=now,
        params=params or SchedulerParams(),
        explain=explain,
    )


# --- fit rules ------------------------------------------------------------------------------------

FITS = [
    ("no requirements", {}, {}, {}, True),
    ("bounds inside", {"size": (200, 180, 50)}, {}, {}, True),
    ("bounds exactly the volume", {"size": (250, 210, 210)}, {}, {}, True),
    ("too wide", {"size": (251, 100, 10)}, {}, {}, False),
    ("too tall", {"size": (10, 10, 211)}, {}, {}, False),
    ("nozzle equal", {"nozzle": 0.4}, {}, {}, True),
    ("nozzle within tolerance", {"nozzle": 0.405}, {}, {}, True),
    ("nozzle differs", {"nozzle": 0.6}, {}, {}, False),
    ("material equal, other case", {"material": "pla"}, {}, {}, True),
    ("material differs", {"material": "PETG"}, {}, {}, False),
    ("printer material unknown", {"material": "PLA"}, {"material": None}, {}, False),
    ("any material on unknown", {}, {"material": None}, {}, True),
    ("restricted, not granted", {}, {"restricted": True}, {}, False),
    ("restricted, granted", {}, {"restricted": True}, {1: frozenset({"p1"})}, True),
    ("restricted, granted another printer", {}, {"restricted": True}, {1: frozenset({"p2"})}, False),
    ("restricted, another member granted", {}, {"restricted": True}, {2: frozenset({"p1"})}, False),
    ("open printer needs no grant", {}, {"restricted": False}, {}, True),
    ("state does not matter", {}, {"state": PrinterState.OFFLINE}, {}, True),
]


@pytest.mark.parametrize(
    ("case", "job_kw", "printer_kw", "grants", "expected"), FITS, ids=[c[0] for c in FITS]
)
def test_fits(case: str, job_kw: dict, printer_kw: dict, grants: dict, expected: bool) -> None:
    assert fits(job(**job_kw), printer(**printer_kw), grants, SchedulerParams()) is expected


def test_bounds_tolerance_lets_a_print_stick_out() -> None:
    shifted = JobInfo(1, 1, JobState.QUEUED, NOW, HOUR, Box(-0.5, 0, 0, 250.5, 100, 10))
    assert not fits(shifted, printer(), {}, SchedulerParams())
    assert fits(shifted, printer(), {}, SchedulerParams(bounds_tolerance=0.5))


def test_bounds_are_in_printer_coordinates() -> None:
    off_bed = JobInfo(1, 1, JobState.QUEUED, NOW, HOUR, Box(100, 100, 0, 260, 150, 10))
    assert not fits(off_bed, printer(), {})


@pytest.mark.parametrize(
    "params",
    [{"aging_seconds": 0}, {"aging_seconds": -1}, {"nozzle_tolerance": -0.1}, {"bounds_tolerance": -1}],
)
def test_params_are_checked(params: dict) -> None:
    with pytest.raises(Invalid) as error:
        SchedulerParams(**params)
    assert error.value.field == next(iter(params))


# --- reasons and messages -------------------------------------------------------------------------


def explain_one(printers: list[PrinterInfo], jobs: list[JobInfo], job_id: int, **kw: object) -> Explanation:
    return run(printers, jobs, **kw).explanations[job_id]  # type: ignore[arg-type]


def busy(pid: str, until: float, **kw: object) -> PrinterInfo:
    return printer(pid, PrinterState.PRINTING, busy_until=until, **kw)  # type: ignore[arg-type]


REASONS = [
    (
        "next",
        [printer("p1")],
        [job(1)],
        1,
        WaitReason.NEXT,
        ["1st in line; starting now on p1."],
    ),
    (
        "fair share",
        [printer("p1")],
        [job(1, member=1, submitted=NOW - 100), job(2, member=2, submitted=NOW - 50)],
        2,
        WaitReason.FAIR_SHARE,
        ["2nd in line; the compatible printer free now goes to jobs ahead in line", "about 1 h"],
    ),
    (
        "all busy",
        [busy("p1", NOW + HOUR), busy("p2", NOW + 2 * HOUR)],
        [job(1, size=(200, 180, 50), material="PLA")],
        1,
        WaitReason.NO_PRINTER_FREE,
        [
            "1st in line; waiting for a free printer that fits 200\u00d7180\u00d750 mm with PLA: "
            "2 compatible printers, both busy; expected to start in about 1 h."
        ],
    ),
    (
        "busy and offline",
        [busy("p1", NOW + 600), printer("p2", PrinterState.OFFLINE)],
        [job(1, nozzle=0.4)],
        1,
        WaitReason.NO_PRINTER_FREE,
        ["that can print it with a 0.4 mm nozzle: 2 compatible printers: 1 busy, 1 offline", "about 10 min"],
    ),
    (
        "only offline printers",
        [printer("p1", PrinterState.OFFLINE), printer("p2", PrinterState.MAINTENANCE)],
        [job(1)],
        1,
        WaitReason.PRINTERS_UNAVAILABLE,
        ["2 printers could print it", "none is working now (1 maintenance, 1 offline)"],
    ),
    (
        "material not loaded",
        [printer("p1"), printer("p2", material=None)],
        [job(1, material="PETG")],
        1,
        WaitReason.MATERIAL_NOT_LOADED,
        ["2 printers could print it, but none has PETG loaded; it waits until a manager loads PETG."],
    ),
    (
        "too big",
        [printer("p1")],
        [job(1, size=(300, 300, 10), material="PETG")],
        1,
        WaitReason.NO_COMPATIBLE_PRINTER,
        ["1st in line; no printer in the fleet is big enough for 300\u00d7300\u00d710 mm."],
    ),
    (
        "no such nozzle",
        [printer("p1")],
        [job(1, size=(10, 10, 10), nozzle=0.8)],
        1,
        WaitReason.NO_COMPATIBLE_PRINTER,
        ["no printer big enough for it has a 0.8 mm nozzle"],
    ),
    (
        "not granted",
        [printer("p1", restricted=True)],
        [job(1)],
        1,
        WaitReason.NO_COMPATIBLE_PRINTER,
        ["only restricted printers can print it, and you have not been granted any of them"],
    ),
    (
        "awaiting approval",
        [printer("p1")],
        [job(1, state=JobState.AWAITING_APPROVAL)],
        1,
        WaitReason.AWAITING_APPROVAL,
        ["Waiting for a manager to approve it."],
    ),
    (
        "awaiting approval, fits nothing",
        [printer("p1")],
        [job(1, state=JobState.AWAITING_APPROVAL, material="TPU")],
        1,
        WaitReason.AWAITING_APPROVAL,
        ["Waiting for a manager to approve it. Note: 1 printer could print it, but none has TPU loaded"],
    ),
    (
        "submitted",
        [printer("p1")],
        [job(1, state=JobState.SUBMITTED)],
        1,
        WaitReason.SUBMITTED,
        ["Received; it joins the queue once it has been checked."],
    ),
]


@pytest.mark.parametrize(
    ("case", "printers", "jobs", "job_id", "reason", "phrases"), REASONS, ids=[c[0] for c in REASONS]
)
def test_reason_and_message(
    case: str,
    printers: list[PrinterInfo],
    jobs: list[JobInfo],
    job_id: int,
    reason: WaitReason,
    phrases: list[str],
) -> None:
    explanation = explain_one(printers, jobs, job_id)
    assert explanation.reason is reason
    for phrase in phrases:
        assert phrase in explanation.message
    queued = explanation.reason not in (WaitReason.AWAITING_APPROVAL, WaitReason.SUBMITTED)
    assert (explanation.position is not None) is queued
    no_estimate = {
        WaitReason.NO_COMPATIBLE_PRINTER,
        WaitReason.MATERIAL_NOT_LOADED,
        WaitReason.PRINTERS_UNAVAILABLE,
        WaitReason.AWAITING_APPROVAL,
        WaitReason.SUBMITTED,
    }
    assert (explanation.estimated_start is None) is (reason in no_estimate)


def test_positions_are_ordinals() -> None:
    jobs = [job(n, member=n, submitted=NOW - 1000 + n) for n in range(1, 24)]
    explanations = run([busy("p1", NOW + HOUR)], jobs).explanations
    assert [explanations[n].message.split(";")[0] for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23)] == [
        "1st in line",
        "2nd in line",
        "3rd in line",
        "4th in line",
        "11th in line",
        "12th in line",
        "13th in line",
        "21st in line",
        "22nd in line",
        "23rd in line",
    ]


def test_jobs_that_are_not_waiting_are_not_explained() -> None:
    jobs = [job(1, state=JobState.PRINTING), job(2, state=JobState.DONE), job(3)]
    result = run([printer()], jobs)
    assert set(result.explanations) == {3}
    assert 1 not in result.explanations
    with pytest.raises(KeyError):
        result.explanations[1]


def test_estimates_follow_the_queue_over_the_printers() -> None:
    printers = [busy("p1", NOW + 100), busy("p2", NOW + 500), printer("p3", PrinterState.OFFLINE)]
    jobs = [job(n, member=1, submitted=NOW - 100 + n, seconds=1000) for n in (1, 2, 3)]
    result = run(printers, jobs)
    assert [result.explanations[n].estimated_start for n in (1, 2, 3)] == [NOW + 100, NOW + 500, NOW + 1100]
    assert result.assignments == ()


def test_a_printer_past_its_busy_until_counts_from_now() -> None:
    result = run([busy("p1", NOW - 500)], [job(1)])
    assert result.explanations[1].estimated_start == NOW
    assert "expected to start any moment" in result.explanations[1].message


def test_estimates_only_use_fitting_printers() -> None:
    printers = [busy("small", NOW + 100, size=(100, 100, 100)), busy("big", NOW + 900, size=(300, 300, 300))]
    result = run(printers, [job(1, size=(200, 200, 10))])
    assert result.explanations[1].estimated_start == NOW + 900
    assert result.explanations[1].compatible_printers == ("big",)


# --- ordering rules by example --------------------------------------------------------------------


def test_higher_priority_goes_first() -> None:
    jobs = [job(1, member=1, submitted=NOW - 100), job(2, member=2, submitted=NOW - 10, priority=1)]
    assert run([printer()], jobs).assignments == ((2, "p1"),)


def test_waiting_raises_priority() -> None:
    params = SchedulerParams(aging_seconds=HOUR)
    jobs = [job(1, member=1, submitted=NOW - 2 * HOUR - 1), job(2, member=2, submitted=NOW - 10, priority=1)]
    assert effective_priority(jobs[0], NOW, params) == 2
    assert run([printer()], jobs, params=params).assignments == ((1, "p1"),)


def test_less_recent_usage_goes_first() -> None:
    jobs = [job(1, member=1, submitted=NOW - 100), job(2, member=2, submitted=NOW - 10)]
    assert run([printer()], jobs, usage={1: 500.0, 2: 100.0}).assignments == ((2, "p1"),)
    assert run([printer()], jobs, usage={1: 100.0, 2: 100.0}).assignments == ((1, "p1"),)


def test_fair_share_interleaves_members() -> None:
    jobs = [job(n, member=1, submitted=NOW - 1000 + n) for n in range(1, 6)] + [job(9, member=2)]
    assert run([busy("p1", NOW + 10)], jobs).order == (1, 9, 2, 3, 4, 5)


def test_a_job_takes_the_printer_others_need_least() -> None:
    # "a-big" sorts first by id, but only the big job can use it.
    printers = [printer("a-big", size=(350, 350, 350)), printer("b-small", size=(180, 180, 180))]
    jobs = [job(1, submitted=NOW - 100, size=(50, 50, 50)), job(2, member=2, size=(300, 300, 10))]
    assert run(printers, jobs).assignments == ((1, "b-small"), (2, "a-big"))


def test_fast_path_gives_the_same_assignments() -> None:
    printers = [printer("p1"), printer("p2", material="PETG"), printer("p3", material="TPU")]
    jobs = [job(n, member=n % 3, submitted=NOW - n, material=("PLA", "PETG")[n % 2]) for n in range(1, 30)]
    full = run(printers, jobs)
    fast = run(printers, jobs, explain=False)
    assert fast.assignments == full.assignments
    assert fast.order == full.order[: len(fast.order)]
    assert fast.explanations == {}


@pytest.mark.parametrize(
    ("printers", "jobs"),
    [([printer("p1"), printer("p1")], [job(1)]), ([printer("p1")], [job(1), job(1, member=2)])],
)
def test_duplicates_are_refused(printers: list[PrinterInfo], jobs: list[JobInfo]) -> None:
    with pytest.raises(Invalid):
        run(printers, jobs)


# --- decayed usage --------------------------------------------------------------------------------


def test_decayed_usage_halves_every_half_life() -> None:
    week = 7 * 86400.0
    usage = decayed_usage([(1, 1000.0, NOW), (1, 1000.0, NOW - week), (2, 800.0, NOW - 2 * week)], NOW)
    assert usage == pytest.approx({1: 1500.0, 2: 200.0})


def test_decayed_usage_does_not_grow_for_future_records() -> None:
    assert decayed_usage([(1, 100.0, NOW + 5000)], NOW) == {1: 100.0}


def test_decayed_usage_needs_a_positive_half_life() -> None:
    with pytest.raises(Invalid):
        decayed_usage([], NOW, half_life_s=0)


# --- properties -----------------------------------------------------------------------------------

VOLUMES = [(100, 100, 100), (250, 210, 210), (350, 350, 350)]
SIZES = [None, (50, 50, 20), (200, 200, 100), (300, 300, 300), (400, 10, 10)]


def centred(box: Box, shift: int) -> Box:
    """``box`` where the slicer left it (0: at the origin), or centred on a 100 (1) or 250 mm (2) bed."""
    if shift == 0:
        return box
    middle = (50.0, 125.0)[shift - 1]
    dx = middle - (box.min_x + box.max_x) / 2
    dy = middle - (box.min_y + box.max_y) / 2
    return Box(box.min_x + dx, box.min_y + dy, box.min_z, box.max_x + dx, box.max_y + dy, box.max_z)


@st.composite
def fleets(
    draw: st.DrawFn,
) -> tuple[list[PrinterInfo], list[JobInfo], dict[int, float], dict, float, SchedulerParams]:
    count = draw(st.integers(0, 6))
    printers = []
    for n in range(count):
        state = draw(st.sampled_from([PrinterState.IDLE] * 3 + list(PrinterState)))
        printers.append(
            PrinterInfo(
                id=f"p{n}",
                state=state,
                volume=Box.of_size(*draw(st.sampled_from(VOLUMES))),
                nozzle_diameter=draw(st.sampled_from([0.4, 0.6])),
                material=draw(st.sampled_from(["PLA", "PETG", None])),
                restricted=draw(st.integers(0, 3)) == 0,
                busy_until=draw(st.none() | st.integers(-5000, 50000).map(lambda s: NOW + s)),
                round_bed=draw(st.integers(0, 3)) == 0,
                heated_bed=draw(st.sampled_from([None, None, True, False])),
                extruders=draw(st.sampled_from([None, None, 1, 2])),
            )
        )
    jobs = []
    for n in range(draw(st.integers(0, 14))):
        size = draw(st.sampled_from(SIZES))
        jobs.append(
            JobInfo(
                id=100 + n,
                member_id=draw(st.integers(1, 4)),
                state=draw(st.sampled_from([JobState.QUEUED] * 5 + list(JobState))),
                submitted_at=NOW - draw(st.integers(-100, 100_000)),
                estimated_seconds=float(draw(st.integers(0, 20_000))),
                bounds=None if size is None else centred(Box.of_size(*size), draw(st.integers(0, 2))),
                nozzle_diameter=draw(st.sampled_from([None, None, 0.4, 0.6, 0.8])),
                material=draw(st.sampled_from([None, None, "PLA", "pla", "PETG", "TPU"])),
                priority=draw(st.integers(-1, 2)),
                heats_bed=draw(st.booleans()),
                tools=draw(st.sampled_from([1, 1, 2, 3])),
            )
        )
    usage = draw(st.dictionaries(st.integers(1, 4), st.sampled_from([0.0, 100.0, 5000.0, 40_000.0])))
    ids = [p.id for p in printers]
    grants = draw(
        st.dictionaries(
            st.integers(1, 4), st.frozensets(st.sampled_from(ids)) if ids else st.just(frozenset())
        )
    )
    params = SchedulerParams(aging_seconds=draw(st.sampled_from([600.0, 6 * HOUR, math.inf])))
    return printers, jobs, usage, grants, NOW, params


def plan_of(case: tuple) -> Plan:
    printers, jobs, usage, grants, now, params = case
    return plan(printers, jobs, usage=usage, grants=grants, now=now, params=params)


def plan_and_lookups(case: tuple) -> tuple[Plan, dict[int, JobInfo], dict[str, PrinterInfo]]:
    """The plan of ``case``, with its jobs and its printers by id, to look up what the plan names."""
    printers, jobs = case[0], case[1]
    return plan_of(case), {j.id: j for j in jobs}, {p.id: p for p in printers}


def reference_order(case: tuple) -> list[int]:
    """The queue order, from its definition: pick the best remaining job, one at a time."""
    printers, jobs, usage, grants, now, params = case
    spent = {m: float(u) for m, u in usage.items()}
    left = [j for j in jobs if j.state is JobState.QUEUED]
    order = []
    while left:
        best = min(
            left,
            key=lambda j: (
                -effective_priority(j, now, params),
                spent.get(j.member_id, 0.0),
                j.submitted_at,
                j.id,
            ),
        )
        left.remove(best)
        order.append(best.id)
        # Charged unless no printer of the fleet could ever take it (with none yet, every job is).
        if not printers or any(fits(best, p, grants, params) for p in printers):
            spent[best.member_id] = spent.get(best.member_id, 0.0) + max(0.0, best.estimated_seconds)
    return order


@settings(deadline=None, max_examples=150)
@given(fleets())
def test_assignments_are_sound(case: tuple) -> None:
    _, _, _, grants, _, params = case
    result, by_id, printer_by_id = plan_and_lookups(case)
    job_ids = [j for j, _ in result.assignments]
    printer_ids = [p for _, p in result.assignments]
    assert len(set(job_ids)) == len(job_ids), "a job on two printers"
    assert len(set(printer_ids)) == len(printer_ids), "two jobs on one printer"
    for job_id, printer_id in result.assignments:
        assert by_id[job_id].state is JobState.QUEUED
        assert printer_by_id[printer_id].state in DISPATCHABLE
        assert fits(by_id[job_id], printer_by_id[printer_id], grants, params)


@settings(deadline=None, max_examples=150)
@given(fleets())
def test_work_conserving(case: tuple) -> None:
    printers, jobs, _, grants, _, params = case
    result = plan_of(case)
    taken_jobs = {j for j, _ in result.assignments}
    taken_printers = {p for _, p in result.assignments}
    for p in printers:
        if p.state in DISPATCHABLE and p.id not in taken_printers:
            for j in jobs:
                if j.state is JobState.QUEUED and j.id not in taken_jobs:
                    assert not fits(j, p, grants, params), f"{p.id} left idle while {j.id} fits it"


@settings(deadline=None, max_examples=150)
@given(fleets())
def test_order_is_priority_then_fair_share_then_age(case: tuple) -> None:
    assert list(plan_of(case).order) == reference_order(case)


@settings(deadline=None, max_examples=100)
@given(fleets())
def test_no_waiting_job_outranks_one_that_got_its_printer(case: tuple) -> None:
    _, jobs, _, grants, now, params = case
    result, by_id, printer_by_id = plan_and_lookups(case)
    taken = {j for j, _ in result.assignments}
    place = {job_id: n for n, job_id in enumerate(result.order)}
    for job_id, printer_id in result.assignments:
        winner = by_id[job_id]
        for other in jobs:
            waiting = other.state is JobState.QUEUED and other.id not in taken
            if waiting and fits(other, printer_by_id[printer_id], grants, params):
                assert effective_priority(other, now, params) <= effective_priority(winner, now, params)
                assert place[other.id] > place[job_id]


@settings(deadline=None, max_examples=100)
@given(fleets(), st.randoms(use_true_random=False))
def test_deterministic_whatever_the_input_order(case: tuple, shuffle: random.Random) -> None:
    printers, jobs, usage, grants, now, params = case
    first = plan_of(case)
    printers, jobs = list(printers), list(jobs)
    shuffle.shuffle(printers)
    shuffle.shuffle(jobs)
    again = plan(printers, jobs, usage=usage, grants=grants, now=now, params=params)
    assert again.assignments == first.assignments
    assert again.order == first.order
    assert dict(again.explanations) == dict(first.explanations)


@settings(deadline=None, max_examples=100)
@given(fleets())
def test_every_waiting_job_is_explained(case: tuple) -> None:
    printers, jobs, _, grants, now, params = case
    result = plan_of(case)
    expected = {
        j.id for j in jobs if j.state in (JobState.QUEUED, JobState.AWAITING_APPROVAL, JobState.SUBMITTED)
    }
    assert set(result.explanations) == expected
    assigned = dict(result.assignments)
    place = {job_id: n + 1 for n, job_id in enumerate(result.order)}
    for j in jobs:
        if j.id not in expected:
            continue
        e = result.explanations[j.id]
        assert e.job_id == j.id and e.message
        assert e.compatible_printers == tuple(sorted(p.id for p in printers if fits(j, p, grants, params)))
        if j.state is JobState.QUEUED:
            assert e.position == place[j.id]
            assert (e.reason is WaitReason.NEXT) is (j.id in assigned)
            if e.reason is WaitReason.NEXT:
                assert e.estimated_start == now
            if not e.compatible_printers:
                expected_reasons = (
                    (WaitReason.NO_COMPATIBLE_PRINTER, WaitReason.MATERIAL_NOT_LOADED)
                    if printers
                    else (WaitReason.NO_PRINTER_YET,)
                )
                assert e.reason in expected_reasons
            if e.estimated_start is None:
                assert e.reason in (
                    WaitReason.NO_PRINTER_YET,
                    WaitReason.NO_COMPATIBLE_PRINTER,
                    WaitReason.MATERIAL_NOT_LOADED,
                    WaitReason.PRINTERS_UNAVAILABLE,
                )
            else:
                assert e.estimated_start >= now
        else:
            assert e.position is None and e.estimated_start is None
            expected_reason = WaitReason(j.state.value)
            assert e.reason is expected_reason


@settings(deadline=None, max_examples=100)
@given(fleets())
def test_fast_path_agrees(case: tuple) -> None:
    printers, jobs, usage, grants, now, params = case
    full = plan_of(case)
    fast = plan(printers, jobs, usage=usage, grants=grants, now=now, params=params, explain=False)
    assert fast.assignments == full.assignments
    assert fast.order == full.order[: len(fast.order)]


@settings(deadline=None, max_examples=100)
@given(
    st.lists(st.sampled_from(list(PrinterState)), max_size=5),
    st.lists(st.integers(-1000, 30_000), max_size=5),
    st.lists(st.tuples(st.integers(1, 3), st.integers(0, 9000), st.integers(0, 5000)), max_size=12),
)
def test_estimates_in_a_uniform_fleet_match_a_simple_simulation(
    states: list[PrinterState], busy_for: list[int], queue: list[tuple[int, int, int]]
) -> None:
    printers = [
        printer(f"p{n}", state, busy_until=NOW + busy_for[n] if n < len(busy_for) else None)
        for n, state in enumerate(states)
    ]
    jobs = [
        job(100 + n, member=m, seconds=float(s), submitted=NOW - age) for n, (m, s, age) in enumerate(queue)
    ]
    result = run(printers, jobs)
    free = sorted(
        NOW if p.state in DISPATCHABLE else max(NOW, p.busy_until)
        for p in printers
        if p.state in DISPATCHABLE or p.busy_until is not None
    )
    seconds = {j.id: j.estimated_seconds for j in jobs}
    for job_id in result.order:
        expected = free[0] if free else None
        assert result.explanations[job_id].estimated_start == expected
        if free:
            free[0] += seconds[job_id]
            free.sort()


@settings(deadline=None, max_examples=100)
@given(
    a_jobs=st.integers(2, 40),
    usage_a=st.integers(0, 10_000),
    less=st.integers(0, 10_000),
    ages=st.lists(st.integers(0, 10_000), min_size=41, max_size=41),
)
def test_one_members_many_jobs_do_not_lock_others_out(
    a_jobs: int, usage_a: int, less: int, ages: list[int]
) -> None:
    usage_b = max(0, usage_a - less)
    # All within one aging step, so nobody's priority differs; A's jobs are all older than B's.
    params = SchedulerParams(aging_seconds=6 * HOUR)
    newest_a = NOW - 10_001
    jobs = [job(n, member=1, submitted=newest_a - ages[n], seconds=600) for n in range(1, a_jobs + 1)]
    jobs.append(job(999, member=2, submitted=NOW - 1))
    result = run([printer()], jobs, usage={1: float(usage_a), 2: float(usage_b)}, params=params)
    if usage_b < usage_a:
        assert result.assignments == ((999, "p1"),)
    else:
        # Equal usage: A's oldest job goes first (the age tie-break), then it is B's turn.
        assert result.order.index(999) == 1
        two = run([printer("p1"), printer("p2")], jobs, usage={1: float(usage_a), 2: float(usage_b)})
        assert 999 in dict(two.assignments)


@settings(deadline=None, max_examples=60)
@given(
    head=st.lists(st.tuples(st.integers(1, 3), st.integers(0, 2), st.integers(0, 20_000)), max_size=12),
    rival_priority=st.integers(0, 2),
    target_usage=st.sampled_from([0.0, 1e6, 1e9]),
)
def test_aging_bounds_every_wait(
    head: list[tuple[int, int, int]], rival_priority: int, target_usage: float
) -> None:
    """A rival member with top priority and no usage submits a job every pass; the target still gets in.

    Jobs that arrive more than (priority gap + 1) aging steps after the target rank below it, so at
    most the jobs already queued plus those arrivals go first: one printer frees up every pass.
    """
    aging, period = 3000.0, 1000.0
    start = NOW
    queue = [job(n, member=m, priority=p, submitted=start - age) for n, (m, p, age) in enumerate(head, 1)]
    queue.append(job(500, member=9, submitted=start))
    usage = {9: target_usage, 8: 0.0}
    bound = len(head) + int((rival_priority + 1) * aging / period) + 3
    now = start
    for tick in range(bound):
        queue.append(job(1000 + tick, member=8, priority=rival_priority, submitted=now))
        result = run([printer()], queue, usage=usage, now=now, params=SchedulerParams(aging_seconds=aging))
        assert len(result.assignments) == 1
        ((taken, _),) = result.assignments
        if taken == 500:
            return
        queue = [j for j in queue if j.id != taken]
        now += period
    pytest.fail(f"the target waited more than {bound} passes")


@settings(deadline=None, max_examples=100)
@given(st.lists(st.tuples(st.integers(1, 3), st.floats(0, 1e5), st.floats(-1e6, 1e6)), max_size=20))
def test_decayed_usage_is_bounded_by_the_raw_sum(records: list[tuple[int, float, float]]) -> None:
    usage = decayed_usage(records, NOW)
    for member in {m for m, _, _ in records}:
        raw = sum(s for m, s, _ in records if m == member)
        assert 0.0 <= usage[member] <= raw * (1 + 1e-9)
    assume(records)


# --- explanations as values -----------------------------------------------------------------------


def test_an_explanation_is_an_immutable_value() -> None:
    e = Explanation(7, 2, WaitReason.FAIR_SHARE, "2nd in line.", NOW + 60, ("p1",))
    assert (e.job_id, e.position, e.reason, e.message, e.estimated_start, e.compatible_printers) == (
        7,
        2,
        WaitReason.FAIR_SHARE,
        "2nd in line.",
        NOW + 60,
        ("p1",),
    )
    same = Explanation(
        job_id=7,
        position=2,
        reason=WaitReason.FAIR_SHARE,
        message="2nd in line.",
        estimated_start=NOW + 60,
        compatible_printers=("p1",),
    )
    assert e == same and hash(e) == hash(same)
    assert (e != same) is False
    assert e != Explanation(7, 2, WaitReason.FAIR_SHARE, "other words", NOW + 60, ("p1",))
    assert "message='2nd in line.'" in repr(e)
    with pytest.raises(AttributeError):
        e.message = "changed"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        e.position = 1  # type: ignore[misc]
    assert copy.deepcopy(e) == e


def test_messages_are_worded_when_read_and_equal_eager_ones() -> None:
    printers = [busy("p1", NOW + HOUR), printer("p2")]
    jobs = [job(n, member=n % 3, submitted=NOW - 100 * n, size=(50, 50, 50)) for n in range(1, 8)]
    lazy = run(printers, jobs).explanations[5]
    eager = Explanation(
        lazy.job_id, lazy.position, lazy.reason, lazy.message, lazy.estimated_start, lazy.compatible_printers
    )
    assert lazy == eager and hash(lazy) == hash(eager)
    assert copy.deepcopy(lazy) == eager
    assert lazy.message is lazy.message  # worded once


@settings(deadline=None, max_examples=60)
@given(fleets())
def test_reading_all_explanations_at_once_equals_reading_each(case: tuple) -> None:
    one_by_one = plan_of(case).explanations
    each = {job_id: one_by_one[job_id] for job_id in one_by_one}
    at_once = plan_of(case).explanations
    assert dict(at_once.items()) == each
    assert [e.message for e in at_once.values()] == [e.message for e in each.values()]
    assert list(at_once) == list(each)


def test_shared_and_copied_bounds_plan_alike() -> None:
    """Requirements are matched by value: the same Box object or equal copies give the same plan."""
    printers = [
        printer("p1"),
        printer("p2", size=(180, 180, 180)),
        busy("p3", NOW + HOUR, size=(350, 350, 350)),
    ]
    shared = Box.of_size(200, 190, 40)
    sizes = [shared, Box.of_size(200, 190, 40), None, Box.of_size(300, 300, 10), shared]
    jobs = [
        JobInfo(n, n % 2, JobState.QUEUED, NOW - 100 * n, HOUR, bounds, None, "PLA")
        for n, bounds in enumerate(sizes, 1)
    ]
    result = run(printers, jobs)
    copied = [
        JobInfo(
            j.id,
            j.member_id,
            j.state,
            j.submitted_at,
            j.estimated_seconds,
            None if j.bounds is None else Box(**j.bounds.to_dict()),
            None,
            "PLA",
        )
        for j in jobs
    ]
    again = run(printers, copied)
    assert again.assignments == result.assignments and again.order == result.order
    assert dict(again.explanations) == dict(result.explanations)
    compatible = {job_id: e.compatible_printers for job_id, e in result.explanations.items()}
    assert compatible == {
        1: ("p1", "p3"),
        2: ("p1", "p3"),
        3: ("p1", "p2", "p3"),
        4: ("p3",),
        5: ("p1", "p3"),
    }


def test_fast_path_with_priorities_and_aging_levels() -> None:
    params = SchedulerParams(aging_seconds=HOUR)
    printers = [printer(f"p{n}") for n in range(3)] + [busy("b1", NOW + HOUR)]
    jobs = [
        job(
            n,
            member=n % 4,
            submitted=NOW - (n * 997) % (5 * HOUR),
            priority=(n % 5 == 0) - (n % 7 == 0),
            seconds=600.0 * (n % 3 + 1),
        )
        for n in range(1, 60)
    ]
    usage = {0: 100.0, 1: 5000.0, 2: 0.0}
    full = run(printers, jobs, usage=usage, params=params)
    fast = run(printers, jobs, usage=usage, params=params, explain=False)
    assert fast.assignments == full.assignments and len(fast.assignments) == 3
    assert fast.order == full.order[: len(fast.order)]
    assert list(full.order) == reference_order((printers, jobs, usage, {}, NOW, params))


def test_a_pass_leaves_little_for_the_garbage_collector() -> None:
    """A pass runs with the collector on (it must not pause it for every thread of the server), so it
    must not leave an object per job behind: each would be walked by the collections it triggers."""
    printers = [printer(f"p{n}", PrinterState.IDLE if n % 4 else PrinterState.PRINTING) for n in range(40)]
    printers = [p if p.state is PrinterState.IDLE else busy(p.id, NOW + HOUR) for p in printers]
    # Each job has its own Box object, as jobs read from the store do; 50 distinct sizes.
    jobs = [job(n, member=n % 97, size=(10 + n % 50, 20, 5), seconds=600.0 + n % 7) for n in range(1, 10_001)]
    started: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    for explain in (False, True):
        gc.collect()
        gc.callbacks.append(count)
        try:
            result = run(printers, jobs, explain=explain)
            if explain:
                result.explanations[result.order[0]]  # the estimates: a walk over the whole queue
        finally:
            gc.callbacks.remove(count)
        assert gc.isenabled()
        # One object left per job would start a collection every 700 jobs (about 14 here).
        assert len(started) <= 4, f"explain={explain}: {len(started)} collections"
        started.clear()
