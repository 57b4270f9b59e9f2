"""The spool rules (fleet/spools.py): checks by example, what a job takes as properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.errors import Invalid
from fleet.spools import (
    after_use,
    check_colour_hex,
    check_colour_name,
    check_price_per_kg,
    check_spool_material,
    printed_share,
    used_grams,
)
from fleet.states import JobState

OUTCOMES = st.sampled_from([JobState.DONE, JobState.FAILED, JobState.CANCELLED])
GRAMS = st.floats(min_value=0, max_value=100_000, allow_nan=False)
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)


@given(
    remaining=GRAMS,
    weight=st.one_of(st.none(), ANY_FLOAT),
    outcome=OUTCOMES,
    share=st.one_of(st.none(), ANY_FLOAT),
)
def test_grams_never_go_negative_nor_up(
    remaining: float, weight: float | None, outcome: JobState, share: float | None
) -> None:
    used = used_grams(weight, outcome, share)
    assert used >= 0 and math.isfinite(used)
    left = after_use(remaining, used)
    assert 0 <= left <= remaining


@given(remaining=GRAMS, uses=st.lists(st.tuples(GRAMS, OUTCOMES, st.floats(0, 1)), max_size=30))
def test_a_spool_used_by_many_jobs_stays_between_zero_and_what_it_had(
    remaining: float, uses: list[tuple[float, JobState, float]]
) -> None:
    left = remaining
    for weight, outcome, share in uses:
        before = left
        left = after_use(left, used_grams(weight, outcome, share))
        assert 0 <= left <= before


@given(weight=st.floats(0.01, 5000), share=st.floats(0, 1))
def test_a_job_that_ends_early_takes_no_more_than_a_done_one(weight: float, share: float) -> None:
    done = used_grams(weight, JobState.DONE, None)
    assert done == weight
    assert used_grams(weight, JobState.FAILED, share) <= done
    assert used_grams(weight, JobState.CANCELLED, None) == 0.0, "nobody knows how far it got"


def test_reported_progress_is_a_share() -> None:
    assert printed_share(40.0) == 0.4
    assert printed_share(250.0) == 1.0 and printed_share(-3) == 0.0 and printed_share(None) is None


@pytest.mark.parametrize(
    ("value", "expected"), [("pla+", "PLA+"), (" PETG-CF ", "PETG-CF"), ("Nylon", "NYLON")]
)
def test_known_materials_and_their_variants(value: str, expected: str) -> None:
    assert check_spool_material(value) == expected


@pytest.mark.parametrize("value", ["unobtainium", "", None, 3, "WOOD"])
def test_unknown_materials_are_refused_naming_the_known_ones(value: object) -> None:
    with pytest.raises(Invalid) as caught:
        check_spool_material(value)
    assert caught.value.field == "material"


def test_colours_and_prices_are_checked() -> None:
    assert check_colour_hex("#A0b1C2") == "#a0b1c2"
    assert check_colour_name(" galaxy blue ") == "galaxy blue"
    for bad in ("red", "#12345", "#1234567", "#GGGGGG", 0xFFFFFF):
        with pytest.raises(Invalid):
            check_colour_hex(bad)
    for bad_name in ("", "<b>", "x" * 33, "a\nb"):
        with pytest.raises(Invalid):
            check_colour_name(bad_name)
    assert check_price_per_kg(2490) == 2490
    for bad_price in (24.9, "2490", True, -1, 10**12):
        with pytest.raises(Invalid):
            check_price_per_kg(bad_price)


def test_the_share_printed_comes_from_the_printers_progress_else_the_time_it_printed() -> None:
    from fleet.models import Job, LiveStatus
    from fleet.spools import printed_so_far

    job = Job(
        7,
        1,
        JobState.PRINTING,
        0,
        "a" * 64,
        "p.gcode",
        1,
        "PLA",
        "",
        {"estimated_time_s": 1000.0},
        "mk4",
        0.0,
        0.0,
        started_at=100.0,
    )
    live = LiveStatus("printing", {}, 40.0, None, 7, 0.0)
    assert printed_so_far(job, live, now=150.0) == 0.4
    other = LiveStatus("printing", {}, 90.0, None, 8, 0.0)
    assert printed_so_far(job, other, now=350.0) == 0.25, "another job's progress is not this one's"
    assert printed_so_far(job, None, now=5000.0) == 1.0
    never = Job(8, 1, JobState.ASSIGNED, 0, "a" * 64, "p.gcode", 1, "PLA", "", {}, "mk4", 0.0, 0.0)
    assert printed_so_far(never, None, now=5000.0) == 0.0
