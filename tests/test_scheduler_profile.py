"""The printer profile in the scheduler: round beds, heated beds, extruders, and the reasons members read."""

from __future__ import annotations

import pytest

from fleet.geometry import Box
from fleet.scheduler import JobInfo, PrinterInfo, WaitReason, fits, plan
from fleet.states import JobState, PrinterState

NOW = 1_000_000.0


def printer(pid: str = "p1", size: float = 200.0, **profile: object) -> PrinterInfo:
    return PrinterInfo(pid, PrinterState.IDLE, Box.of_size(size, size, 200), 0.4, "PLA", **profile)  # type: ignore[arg-type]


def job(jid: int = 1, bounds: Box | None = None, **needs: object) -> JobInfo:
    return JobInfo(jid, 1, JobState.QUEUED, NOW - 60, 3600.0, bounds, **needs)  # type: ignore[arg-type]


def square(centre: float, side: float) -> Box:
    half = side / 2
    return Box(centre - half, centre - half, 0.0, centre + half, centre + half, 10.0)


def only(
    printers: list[PrinterInfo], jobs: list[JobInfo]
) -> tuple[tuple[tuple[int, str], ...], str, WaitReason]:
    result = plan(printers, jobs, usage={}, grants={}, now=NOW)
    explanation = result.explanations[jobs[0].id]
    return result.assignments, explanation.message, explanation.reason


@pytest.mark.parametrize(
    ("bounds", "round_fits"),
    [
        (square(100, 140), True),  # corners 99 mm from the centre of a 200 mm circle (radius 100)
        (square(100, 142), False),  # corners 100.4 mm out
        (Box(10, 90, 0, 190, 110, 5), True),  # a thin bar almost across the diameter
        (square(30, 40), False),  # in the box's corner, off the round bed
    ],
)
def test_a_round_bed_takes_only_what_fits_the_circle_inside_its_box(bounds: Box, round_fits: bool) -> None:
    assert fits(job(bounds=bounds), printer(round_bed=True), {}) is round_fits
    assert fits(job(bounds=bounds), printer(round_bed=False), {})
    assignments = only([printer(round_bed=True)], [job(bounds=bounds)])[0]
    assert assignments == (((1, "p1"),) if round_fits else ())


def test_a_job_off_every_round_bed_says_so() -> None:
    assignments, message, reason = only([printer("delta", round_bed=True)], [job(bounds=square(100, 180))])
    assert assignments == ()
    assert reason is WaitReason.NO_COMPATIBLE_PRINTER
    assert "1 printer with a round bed has the height and the width" in message
    assert "stick out of the round bed" in message


@pytest.mark.parametrize(("heated", "takes"), [(True, True), (None, True), (False, False)])
def test_a_job_that_heats_the_bed_goes_only_where_the_bed_may_be_heated(
    heated: bool | None, takes: bool
) -> None:
    assert fits(job(heats_bed=True), printer(heated_bed=heated), {}) is takes
    assert fits(job(heats_bed=False), printer(heated_bed=heated), {})


def test_the_unheated_bed_reason_names_the_bed() -> None:
    assignments, message, reason = only([printer(heated_bed=False)], [job(heats_bed=True)])
    assert assignments == () and reason is WaitReason.NO_COMPATIBLE_PRINTER
    assert "it heats the bed, and no printer that could otherwise print it has a heated bed" in message


@pytest.mark.parametrize(
    ("extruders", "tools", "takes"), [(1, 1, True), (1, 2, False), (2, 2, True), (None, 4, True)]
)
def test_a_job_with_more_tools_than_extruders_goes_nowhere(
    extruders: int | None, tools: int, takes: bool
) -> None:
    assert fits(job(tools=tools), printer(extruders=extruders), {}) is takes


def test_the_extruder_reason_counts_the_tools_and_the_other_printer_takes_it() -> None:
    assignments, message, _ = only([printer("single", extruders=1)], [job(tools=2)])
    assert assignments == ()
    assert "it uses 2 tools, and no printer that could otherwise print it has 2 extruders" in message
    assert only([printer("single", extruders=1), printer("dual", extruders=2)], [job(tools=2)])[0] == (
        (1, "dual"),
    )


def test_with_no_printer_enrolled_the_reason_says_so() -> None:
    assignments, message, reason = only([], [job(bounds=square(50, 20))])
    assert assignments == () and reason is WaitReason.NO_PRINTER_YET
    assert message == "1st in line; no printer has joined the fleet yet."


def test_a_profile_that_shrinks_leaves_a_queued_job_explained() -> None:
    """The same job, before and after its only printer reports a smaller, round, cold, single-tool profile."""
    print_job = job(bounds=square(100, 180), heats_bed=True, tools=2)
    busy = PrinterInfo(
        "p1", PrinterState.PRINTING, Box.of_size(200, 200, 200), 0.4, "PLA", busy_until=NOW + 600
    )
    assert only([busy], [print_job])[2] is WaitReason.NO_PRINTER_FREE

    shrunk = [PrinterInfo("p1", PrinterState.IDLE, Box.of_size(150, 150, 200), 0.4, "PLA")]
    assert "no printer in the fleet is big enough for 180\u00d7180\u00d710 mm" in only(shrunk, [print_job])[1]
    round_one = [printer(round_bed=True)]
    assert "round bed" in only(round_one, [print_job])[1]
    cold = [printer(heated_bed=False)]
    assert "heated bed" in only(cold, [print_job])[1]
    single = [printer(extruders=1)]
    assert "2 extruders" in only(single, [print_job])[1]


@pytest.mark.parametrize(
    ("machine", "needs", "words"),
    [
        (
            printer(size=180.0),
            job(bounds=Box(0, 0, 0, 250, 210, 220)),
            "250\u00d7210\u00d7220 mm needed, this profile gives 180\u00d7180\u00d7200 mm",
        ),
        (
            printer(round_bed=True),
            job(bounds=square(100, 180)),
            "180\u00d7180\u00d710 mm needed: its corners stick out of this profile's round bed",
        ),
        (
            printer(heated_bed=False),
            job(heats_bed=True),
            "it heats the bed, and this profile has no heated bed",
        ),
        (printer(extruders=1), job(tools=2), "it uses 2 tools, and this profile has 1 extruder"),
        (printer(), job(bounds=square(100, 50), material="PETG"), None),
    ],
)
def test_why_this_profile_cannot_take_a_job(machine: PrinterInfo, needs: JobInfo, words: str | None) -> None:
    from fleet.scheduler.wording import not_for

    assert not_for(needs, machine) == words
