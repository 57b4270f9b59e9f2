"""Matching by what is loaded: material, colour and grams left on the spool, and the reasons a job waits."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.geometry import Box
from fleet.scheduler import JobInfo, PrinterInfo, WaitReason, fits, plan
from fleet.states import JobState, PrinterState

NOW = 1_000_000.0
HOUR = 3600.0


def printer(
    pid: str,
    material: str | None = "PETG",
    colour: str | None = None,
    grams: float | None = None,
    state: PrinterState = PrinterState.IDLE,
    busy_until: float | None = None,
) -> PrinterInfo:
    return PrinterInfo(
        pid,
        state,
        Box.of_size(250, 210, 210),
        0.4,
        material,
        busy_until=busy_until,
        colour=colour,
        spool_grams=grams,
    )


def job(
    jid: int = 1,
    material: str | None = "PETG",
    colour: str | None = None,
    grams: float = 0.0,
    member: int = 1,
) -> JobInfo:
    return JobInfo(
        jid, member, JobState.QUEUED, NOW - 1000 + jid, HOUR, material=material, colour=colour, grams=grams
    )


def one(printers: list[PrinterInfo], jobs: list[JobInfo]):  # type: ignore[no-untyped-def]
    return plan(printers, jobs, usage={}, grants={}, now=NOW)


def test_a_job_asking_for_a_colour_goes_only_to_a_printer_with_that_colour_loaded() -> None:
    result = one([printer("a", colour="white"), printer("b", colour="Black")], [job(colour="black")])
    assert result.assignments == ((1, "b"),)


def test_a_job_without_a_colour_takes_any_colour_of_its_material() -> None:
    assert fits(job(), printer("a", colour="white"), {})
    assert not fits(job(colour="white"), printer("a", colour=None), {}), "an unknown colour is no match"


def test_other_colours_of_the_material_are_named_in_the_reason() -> None:
    printers = [printer("a", colour="white"), printer("b", colour="red"), printer("c", material="PLA")]
    result = one(printers, [job(colour="black")])
    why = result.explanations[1]
    assert result.assignments == ()
    assert why.reason is WaitReason.MATERIAL_NOT_LOADED
    assert (
        "no printer has black PETG loaded; 2 printers have PETG in other colours (red, white)" in why.message
    )


def test_a_job_waits_for_a_spool_that_holds_what_it_takes_and_says_so() -> None:
    printers = [printer("a", colour="black", grams=80.0), printer("b", colour="black", grams=35.5)]
    result = one(printers, [job(colour="black", grams=120.0)])
    why = result.explanations[1]
    assert result.assignments == ()
    assert why.reason is WaitReason.LOW_SPOOL
    assert why.estimated_start is None
    assert "2 printers have black PETG loaded, but no spool holds the 120 g it needs" in why.message
    assert "the fullest has 80 g left" in why.message


def test_dispatch_skips_an_idle_spool_too_low_for_the_job_and_takes_one_that_holds_enough() -> None:
    printers = [printer("a", grams=10.0), printer("b", grams=500.0)]
    result = one(printers, [job(grams=120.0)])
    assert result.assignments == ((1, "b"),)


def test_the_low_spool_printer_still_takes_a_smaller_job_in_the_same_pass() -> None:
    printers = [printer("a", grams=50.0), printer("b", grams=500.0)]
    result = one(printers, [job(1, grams=120.0), job(2, grams=40.0)])
    assert sorted(result.assignments) == [(1, "b"), (2, "a")]


def test_a_printer_without_spool_records_takes_jobs_as_before() -> None:
    """A lab that does not track spools: the printer's own material is all that is matched."""
    result = one([printer("a", grams=None)], [job(grams=5000.0)])
    assert result.assignments == ((1, "a"),)


def test_a_job_that_waits_for_grams_does_not_count_against_its_member() -> None:
    # Member 1's big job waits for a spool change; member 1's next job is not pushed behind member 2's.
    printers = [printer("a", grams=100.0, state=PrinterState.PRINTING, busy_until=NOW + HOUR)]
    jobs = [job(1, grams=900.0, member=1), job(2, grams=10.0, member=1), job(3, grams=10.0, member=2)]
    result = one(printers, jobs)
    assert result.explanations[1].reason is WaitReason.LOW_SPOOL
    assert result.order.index(2) < result.order.index(3)


def test_a_job_waiting_for_a_busy_printer_says_what_the_idle_ones_have_loaded() -> None:
    printers = [
        printer("busy", colour="black", state=PrinterState.PRINTING, busy_until=NOW + HOUR),
        printer("idle1", colour="white"),
        printer("idle2", colour="red"),
    ]
    result = one(printers, [job(colour="black")])
    why = result.explanations[1]
    assert why.reason is WaitReason.NO_PRINTER_FREE
    assert "no idle printer has black PETG loaded; 2 idle printers have PETG in other colours" in why.message


grams_left = st.one_of(st.none(), st.floats(0, 1000, allow_nan=False))
colours = st.sampled_from([None, "black", "white"])


@settings(max_examples=150, deadline=None)
@given(
    loaded=st.lists(st.tuples(colours, grams_left, st.booleans()), min_size=1, max_size=6),
    asked=st.lists(st.tuples(colours, st.floats(0, 1200, allow_nan=False)), min_size=1, max_size=10),
)
def test_no_job_is_ever_dispatched_to_a_spool_without_its_colour_or_grams(
    loaded: list[tuple[str | None, float | None, bool]], asked: list[tuple[str | None, float]]
) -> None:
    printers = [
        printer(f"p{n}", colour=c, grams=g, state=PrinterState.IDLE if idle else PrinterState.PRINTING)
        for n, (c, g, idle) in enumerate(loaded)
    ]
    jobs = [job(n + 1, colour=c, grams=g, member=n % 3) for n, (c, g) in enumerate(asked)]
    result = one(printers, jobs)
    by_id = {p.id: p for p in printers}
    taken = [pid for _, pid in result.assignments]
    assert len(taken) == len(set(taken)), "a printer takes one job at a time"
    for job_id, pid in result.assignments:
        assert fits(jobs[job_id - 1], by_id[pid], {})
    for j in jobs:
        why = result.explanations[j.id]
        if why.reason is WaitReason.LOW_SPOOL:
            assert all(
                p.spool_grams is not None and p.spool_grams < j.grams
                for p in printers
                if fits(replace(j, grams=0.0), p, {})
            )
    # An idle printer that fits a waiting job is left idle only when the jobs ahead took the others.
    idle_left = [p for p in printers if p.state is PrinterState.IDLE and p.id not in taken]
    dispatched = {job_id for job_id, _ in result.assignments}
    for j in jobs:
        if j.id not in dispatched:
            assert not any(fits(j, p, {}) for p in idle_left), (j, idle_left)


def test_a_job_too_big_for_the_idle_spool_waits_for_the_busy_printer_that_holds_enough() -> None:
    printers = [
        printer("idle", colour="black", grams=50.0),
        printer("busy", colour="black", grams=500.0, state=PrinterState.PRINTING, busy_until=NOW + HOUR),
    ]
    result = one(printers, [job(1, colour="black", grams=120.0), job(2, colour="black", grams=20.0)])
    assert result.assignments == ((2, "idle"),)
    why = result.explanations[1]
    assert why.reason is WaitReason.NO_PRINTER_FREE
    assert why.estimated_start == NOW + HOUR, "it starts when the printer whose spool holds enough is free"
    assert why.compatible_printers == ("busy",)
    assert "1 idle printer has black PETG loaded, but too little of it for the 120 g it needs" in why.message
