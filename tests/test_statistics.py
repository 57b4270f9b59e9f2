"""The lab's statistics as pure functions: percentiles, periods on the lab's clock, breakdowns that add up."""

from __future__ import annotations

import csv
import io
import math
import statistics
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.errors import Invalid
from fleet.states import JobState
from fleet.statistics import (
    Dimension,
    Period,
    PrintRow,
    Report,
    breakdown,
    in_period,
    parse_period,
    percentile,
    to_csv,
    totals,
)

#: 2026-03-29 00:00 in Paris (the night the clocks go forward: that day has 23 hours).
SPRING = 1774738800.0
NOW = SPRING + 10 * 86400
HOUR = 3600.0

finite = st.floats(min_value=0, max_value=1e7, allow_nan=False)


@given(st.lists(finite, min_size=1, max_size=40))
def test_the_median_is_the_median(values: list[float]) -> None:
    assert percentile(values, 0.5) == pytest.approx(statistics.median(values))


@given(st.lists(finite, min_size=2, max_size=40))
def test_the_90th_percentile_is_the_inclusive_cut_point(values: list[float]) -> None:
    assert percentile(values, 0.9) == pytest.approx(statistics.quantiles(values, n=10, method="inclusive")[8])


@given(st.lists(finite, min_size=1, max_size=40), st.floats(0, 1), st.floats(0, 1))
def test_a_percentile_lies_within_the_values_and_grows_with_q(
    values: list[float], a: float, b: float
) -> None:
    low, high = sorted((a, b))
    assert min(values) <= percentile(values, low) <= percentile(values, high) <= max(values)
    assert percentile(values, 0) == min(values) and percentile(values, 1) == max(values)


def test_a_percentile_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_a_period_is_whole_days_on_the_labs_clock() -> None:
    period = Period.of_days(date(2026, 3, 29), date(2026, 3, 29), "Europe/Paris")
    assert period.start == SPRING and period.end - period.start == 23 * HOUR
    assert SPRING in period and period.end not in period and SPRING - 1 not in period
    utc = Period.of_days(date(2026, 3, 29), date(2026, 3, 30), "UTC")
    assert utc.end - utc.start == 48 * HOUR and len(utc.days()) == 2


@pytest.mark.parametrize(
    ("first", "last", "zone", "field"),
    [
        ("2026-03-31", "2026-03-01", "UTC", "to"),
        ("2026-02-30", None, "UTC", "from"),
        ("yesterday", None, "UTC", "from"),
        (None, "2026-3-1", "UTC", "to"),
        ("2000-01-01", "2026-01-01", "UTC", "from"),
        (None, None, "Mars/Olympus", "time_zone"),
    ],
)
def test_a_bad_period_names_what_is_wrong(first: str | None, last: str | None, zone: str, field: str) -> None:
    with pytest.raises(Invalid) as error:
        parse_period(first, last, zone, NOW)
    assert error.value.field == field


def test_without_dates_the_period_is_the_last_30_days_today_included() -> None:
    period = parse_period(None, None, "Europe/Paris", NOW)
    assert period.last == date(2026, 4, 8) and period.first == date(2026, 3, 10)
    assert NOW in period


STATES = [JobState.DONE] * 4 + [JobState.FAILED, JobState.CANCELLED, JobState.PRINTING]


@st.composite
def print_rows(draw: st.DrawFn, with_costs: bool | None = None) -> list[PrintRow]:
    rows = []
    charged = draw(st.booleans()) if with_costs is None else with_costs
    for n in range(draw(st.integers(0, 25))):
        state = draw(st.sampled_from(STATES))
        submitted = SPRING + draw(st.integers(-3 * 86400, 12 * 86400))
        started = submitted + draw(st.integers(0, 2 * 86400))
        finished = None if state is JobState.PRINTING else started + draw(st.integers(0, 20 * 3600))
        member = draw(st.integers(1, 4))
        rows.append(
            PrintRow(
                job_id=n,
                member_id=member,
                member=f"m{member}",
                state=state,
                submitted_at=submitted,
                started_at=started,
                finished_at=finished,
                grams=float(draw(st.integers(0, 500))),
                printer_id=draw(st.sampled_from([None, "mk4", "mini"])),
                material=draw(st.sampled_from([None, "PLA", "pla", "PETG"])),
                group=draw(st.sampled_from([None, "student", "pro"])),
                cost=Decimal(draw(st.integers(0, 5000))) / 100 if charged and draw(st.booleans()) else None,
            )
        )
    return rows


@settings(max_examples=80, deadline=None)
@given(print_rows(), st.sampled_from(list(Dimension)))
def test_every_breakdown_adds_up_to_the_labs_totals(rows: list[PrintRow], by: Dimension) -> None:
    period = Period.of_days(date(2026, 3, 29), date(2026, 4, 4), "Europe/Paris")
    chosen = in_period(rows, period)
    parts = breakdown(chosen, by, NOW)
    whole = totals(chosen, NOW)
    assert sum(f.prints for f in parts) == whole.prints == len(chosen)
    for name in ("done", "failed", "cancelled"):
        assert sum(getattr(f, name) for f in parts) == getattr(whole, name)
    assert math.fsum(f.seconds for f in parts) == pytest.approx(whole.seconds)
    assert math.fsum(f.grams for f in parts) == pytest.approx(whole.grams)
    costs = [f.cost for f in parts if f.cost is not None]
    assert whole.cost == (sum(costs, Decimal(0)) if costs else None)  # exact: Decimal, not float
    assert len({f.key for f in parts}) == len(parts)
    if whole.prints:
        waits = [r.started_at - r.submitted_at for r in chosen]
        assert whole.wait_median_s == pytest.approx(statistics.median(waits))
        assert (
            min(f.wait_median_s for f in parts) <= whole.wait_median_s <= max(f.wait_median_s for f in parts)
        )  # type: ignore[operator]


@settings(max_examples=60, deadline=None)
@given(print_rows(), st.integers(1, 12))
def test_adjacent_periods_add_up_to_both_together(rows: list[PrintRow], split: int) -> None:
    first, last = date(2026, 3, 27), date(2026, 4, 8)
    middle = date(2026, 3, 27 + split) if split < 5 else date(2026, 4, split - 4)
    zone = "Europe/Paris"
    both = totals(in_period(rows, Period.of_days(first, last, zone)), NOW)
    before = totals(
        in_period(rows, Period.of_days(first, date.fromordinal(middle.toordinal() - 1), zone)), NOW
    )
    after = totals(in_period(rows, Period.of_days(middle, last, zone)), NOW)
    assert before.prints + after.prints == both.prints
    assert before.seconds + after.seconds == pytest.approx(both.seconds)
    assert before.grams + after.grams == pytest.approx(both.grams)


def row(
    job_id: int, member: int, state: JobState, waited_h: float, printed_h: float, **kw: object
) -> PrintRow:
    start = SPRING + 86400 + job_id * HOUR
    return PrintRow(
        job_id,
        member,
        f"m{member}",
        state,
        start - waited_h * HOUR,
        start,
        start + printed_h * HOUR,
        10.0,
        **kw,  # type: ignore[arg-type]
    )


def test_failure_rate_and_waits_by_example() -> None:
    rows = [
        row(1, 1, JobState.DONE, 1, 2, material="PLA"),
        row(2, 1, JobState.FAILED, 3, 1, material="pla"),
        row(3, 1, JobState.CANCELLED, 5, 0.5, material="PETG"),
        row(4, 2, JobState.DONE, 0, 4),
    ]
    (alice, bob) = breakdown(rows, Dimension.MEMBER, NOW)
    assert (alice.prints, alice.done, alice.failed, alice.cancelled) == (3, 1, 1, 1)
    assert alice.failure_rate == 0.5 and bob.failure_rate == 0.0
    assert alice.hours == 3.5 and alice.wait_median_s == 3 * HOUR
    assert alice.wait_p90_s == pytest.approx(4.6 * HOUR)
    materials = breakdown(rows, Dimension.MATERIAL, NOW)
    assert [(f.label, f.prints) for f in materials] == [("PETG", 1), ("PLA", 2), ("", 1)]
    assert totals([], NOW).failure_rate is None and totals([], NOW).wait_median_s is None


def test_the_csv_has_a_line_per_row_the_total_and_costs_only_when_charged() -> None:
    period = Period.of_days(date(2026, 3, 29), date(2026, 4, 1), "UTC")
    rows = [row(1, 1, JobState.DONE, 1, 2), row(2, 2, JobState.FAILED, 2, 1)]
    plain = Report(period, Dimension.MEMBER, breakdown(rows, Dimension.MEMBER, NOW), totals(rows, NOW))
    lines = list(csv.reader(io.StringIO(to_csv(plain))))
    assert lines[0][:3] == ["member", "label", "prints"] and "cost" not in lines[0]
    assert [line[0] for line in lines[1:]] == ["1", "2", "total"]
    assert lines[-1][2:6] == ["2", "1", "1", "0"] and lines[-1][7] == "3.000"
    charged = [
        row(1, 1, JobState.DONE, 1, 2, cost=Decimal("1.10")),
        row(2, 2, JobState.DONE, 1, 1, cost=Decimal("2.20")),
    ]
    money = Report(period, Dimension.MEMBER, breakdown(charged, Dimension.MEMBER, NOW), totals(charged, NOW))
    lines = list(csv.reader(io.StringIO(to_csv(money))))
    assert lines[0][-1] == "cost" and [line[-1] for line in lines[1:]] == ["1.10", "2.20", "3.30"]


def test_a_name_that_looks_like_a_formula_stays_text_in_the_csv() -> None:
    period = Period.of_days(date(2026, 3, 29), date(2026, 4, 1), "UTC")
    evil = PrintRow(1, 9, "=HYPERLINK(1)", JobState.DONE, SPRING, SPRING + HOUR, SPRING + 2 * HOUR, 1.0)
    report = Report(period, Dimension.MEMBER, breakdown([evil], Dimension.MEMBER, NOW), totals([evil], NOW))
    assert list(csv.reader(io.StringIO(to_csv(report))))[1][1] == "'=HYPERLINK(1)"
