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
    ("machine", "needs", "words", "key", "params"),
    [
        (
            printer(size=180.0),
            job(bounds=Box(0, 0, 0, 250, 210, 220)),
            "250\u00d7210\u00d7220 mm needed, this profile gives 180\u00d7180\u00d7200 mm",
            "too_small",
            {"needed": "250\u00d7210\u00d7220 mm", "have": "180\u00d7180\u00d7200 mm"},
        ),
        (
            printer(round_bed=True),
            job(bounds=square(100, 180)),
            "180\u00d7180\u00d710 mm needed: its corners stick out of this profile's round bed",
            "round_bed",
            {"needed": "180\u00d7180\u00d710 mm"},
        ),
        (
            printer(heated_bed=False),
            job(heats_bed=True),
            "it heats the bed, and this profile has no heated bed",
            "no_heated_bed",
            {},
        ),
        (
            printer(),
            job(heats_chamber=True),
            "it heats the chamber, and this profile has no heated chamber",
            "no_heated_chamber",
            {},
        ),
        (
            printer(extruders=1),
            job(tools=2),
            "it uses 2 tools, and this profile has 1 extruder",
            "too_few_extruders",
            {"tools": 2, "extruders": 1},
        ),
        (printer(), job(bounds=square(100, 50), material="PETG"), None, None, None),
    ],
)
def test_why_this_profile_cannot_take_a_job(
    machine: PrinterInfo, needs: JobInfo, words: str | None, key: str | None, params: dict[str, object] | None
) -> None:
    """In English, and as a key and values the plugin words in its user's language."""
    from fleet.scheduler.wording import not_for

    misfit = not_for(needs, machine)
    if words is None:
        assert misfit is None
    else:
        assert misfit is not None and (misfit.text, misfit.key, dict(misfit.params)) == (words, key, params)


@pytest.mark.parametrize(("chamber", "takes"), [(True, True), (None, False), (False, False)])
def test_a_job_that_heats_the_chamber_goes_only_to_a_printer_with_a_heated_chamber(
    chamber: bool | None, takes: bool
) -> None:
    assert fits(job(heats_chamber=True), printer(heated_chamber=chamber), {}) is takes
    assert fits(job(), printer(heated_chamber=chamber), {}), "a job that heats no chamber goes anywhere"
    assignments = only([printer(heated_chamber=chamber)], [job(heats_chamber=True)])[0]
    assert assignments == (((1, "p1"),) if takes else ())


def test_a_chamber_job_takes_the_printer_with_the_chamber_and_says_why_it_waits_otherwise() -> None:
    plain, warm = printer("a-plain"), printer("b-warm", heated_chamber=True)
    assert only([plain, warm], [job(heats_chamber=True), job(2)])[0] == ((1, "b-warm"), (2, "a-plain"))
    assignments, message, reason = only([plain], [job(heats_chamber=True)])
    assert assignments == () and reason is WaitReason.NO_COMPATIBLE_PRINTER
    assert (
        "it heats the chamber (M141/M191), and no printer that could otherwise print it has a heated chamber"
        in message
    )
    busy = PrinterInfo(
        "w",
        PrinterState.PRINTING,
        Box.of_size(200, 200, 200),
        0.4,
        "PLA",
        heated_chamber=True,
        busy_until=NOW + 600,
    )
    assert only([plain, busy], [job(heats_chamber=True)])[1] == (
        "1st in line; waiting for a free printer that can print it with a heated chamber: "
        "1 compatible printer, busy; expected to start in about 10 min."
    )
