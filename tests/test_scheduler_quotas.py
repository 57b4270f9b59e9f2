"""Quotas and membership groups inside the fair-share pass: held jobs, their reasons, group priority."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.economy.periods import Period
from fleet.economy.quotas import Allowance, Limits, Used, allowance
from fleet.geometry import Box
from fleet.scheduler import JobInfo, PrinterInfo, WaitReason, plan
from fleet.states import JobState, PrinterState

NOW = 1_000_000.0
HOUR = 3600.0
NEW_YEAR = date(2027, 1, 1)


def printer(pid: str, state: PrinterState = PrinterState.IDLE) -> PrinterInfo:
    busy = None if state is PrinterState.IDLE else NOW + HOUR
    return PrinterInfo(pid, state, Box.of_size(250, 210, 210), 0.4, "PLA", busy_until=busy)


def job(jid: int, member: int, seconds: float = HOUR, waited: float = 60, **extra: object) -> JobInfo:
    return JobInfo(jid, member, JobState.QUEUED, NOW - waited + jid, seconds, **extra)  # type: ignore[arg-type]


def hours(limit: float, used: float = 0.0, *, at_once: int | None = None, active: int = 0) -> Allowance:
    limits = {Period.MONTH: Limits(printer_hours=Decimal(str(limit)), jobs_at_once=at_once)}
    return allowance(limits, {Period.MONTH: Used(seconds=used * HOUR)}, active, {Period.MONTH: NEW_YEAR})


def test_a_job_past_the_quota_waits_and_says_why():
    printers = [printer("a"), printer("b")]
    jobs = [job(1, 1, seconds=0.5 * HOUR), job(2, 1, seconds=0.5 * HOUR), job(3, 2)]
    result = plan(printers, jobs, usage={}, grants={}, now=NOW, quotas={1: hours(10, used=9.25)})
    assert dict(result.assignments) == {1: "a", 3: "b"}
    held = result.explanations[2]
    assert held.reason is WaitReason.QUOTA
    assert held.position is None and held.estimated_start is None
    assert held.message == (
        "Waits: you have used 9.3 of your 10 printer-hours this month (and 0.5 more go to your jobs ahead "
        "in line); your quota renews on 1 January."
    )
    assert result.holds[2].cap.period is Period.MONTH
    # The jobs behind a held one move up: positions are what the pass will do.
    assert [result.explanations[j].position for j in (1, 3)] == [1, 2]


def test_a_lifted_job_goes_past_the_quota():
    jobs = [job(1, 1, seconds=2 * HOUR, quota_lifted=True)]
    result = plan([printer("a")], jobs, usage={}, grants={}, now=NOW, quotas={1: hours(1)})
    assert result.assignments == ((1, "a"),)


def test_jobs_at_once_counts_what_is_already_on_printers():
    jobs = [job(1, 1), job(2, 1)]
    result = plan(
        [printer("a"), printer("b")],
        jobs,
        usage={},
        grants={},
        now=NOW,
        quotas={1: hours(100, at_once=2, active=1)},
    )
    assert result.assignments == ((1, "a"),)
    assert "1 of your 2 jobs at once" not in result.explanations[2].message
    assert "already have 2 of your 2 jobs at once" in result.explanations[2].message


def test_a_job_no_printer_can_take_is_not_held_by_a_quota():
    big = job(1, 1, bounds=Box.of_size(900, 900, 900))
    result = plan([printer("a")], [big], usage={}, grants={}, now=NOW, quotas={1: hours(0.5)})
    assert result.explanations[1].reason is WaitReason.NO_COMPATIBLE_PRINTER


def test_group_priority_goes_first_and_is_explained():
    jobs = [job(1, 1, waited=600), job(2, 2, waited=60, group="pro", group_priority=1)]
    result = plan([printer("a", PrinterState.PRINTING)], jobs, usage={}, grants={}, now=NOW)
    assert result.order == (2, 1)
    assert "your membership group pro adds 1 to its priority" in result.explanations[2].message
    assert "membership group" not in result.explanations[1].message


def test_the_fast_pass_holds_the_same_jobs_as_the_full_one():
    printers = [printer(f"p{n}") for n in range(4)]
    jobs = [job(n, n % 3, seconds=HOUR * (1 + n % 2)) for n in range(1, 13)]
    quotas = {0: hours(2), 1: hours(3, at_once=1)}
    fast = plan(printers, jobs, usage={}, grants={}, now=NOW, quotas=quotas, explain=False)
    full = plan(printers, jobs, usage={}, grants={}, now=NOW, quotas=quotas)
    assert fast.assignments == full.assignments
    assert {j: h for j, h in full.holds.items() if j in fast.order} == dict(fast.holds)


@settings(max_examples=150, deadline=None)
@given(
    idle=st.integers(min_value=0, max_value=6),
    specs=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3),  # member
            st.floats(min_value=0, max_value=6 * HOUR),  # seconds
            st.floats(min_value=0, max_value=300),  # grams
            st.integers(min_value=0, max_value=2000),  # cost in cents
            st.booleans(),  # lifted
        ),
        max_size=25,
    ),
    limits=st.dictionaries(
        st.integers(min_value=0, max_value=3),
        st.tuples(
            st.none() | st.integers(min_value=0, max_value=10),  # hours
            st.none() | st.integers(min_value=0, max_value=500),  # grams
            st.none() | st.integers(min_value=0, max_value=3000),  # cents
            st.none() | st.integers(min_value=0, max_value=3),  # at once
            st.integers(min_value=0, max_value=5),  # hours used
            st.integers(min_value=0, max_value=2),  # active jobs
        ),
    ),
    explain=st.booleans(),
)
def test_no_job_starts_beyond_a_quota_unless_a_manager_lifted_it(idle, specs, limits, explain):
    printers = [printer(f"p{n}") for n in range(idle)] + [printer("busy", PrinterState.PRINTING)]
    jobs = [
        job(n + 1, member, seconds, grams=grams, cost_minor=cost, quota_lifted=lifted)
        for n, (member, seconds, grams, cost, lifted) in enumerate(specs)
    ]
    quotas = {
        member: allowance(
            {Period.WEEK: Limits(
                None if h is None else Decimal(h), None if g is None else Decimal(g), c, once
            )},
            {Period.WEEK: Used(seconds=used * HOUR)},
            active,
            {},
        )
        for member, (h, g, c, once, used, active) in limits.items()
    }  # fmt: skip
    result = plan(printers, jobs, usage={}, grants={}, now=NOW, quotas=quotas, explain=explain)
    by_id = {j.id: j for j in jobs}
    spent: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for job_id, _ in result.assignments:
        j = by_id[job_id]
        total = spent[j.member_id]
        total[0] += j.estimated_seconds
        total[1] += j.grams
        total[2] += j.cost_minor
        total[3] += 1
        if j.quota_lifted or j.member_id not in limits:
            continue
        h, g, c, once, used, active = limits[j.member_id]
        assert h is None or used * HOUR + total[0] <= h * HOUR + 1e-6
        assert g is None or total[1] <= g + 1e-6
        assert c is None or total[2] <= c
        assert once is None or active + total[3] <= once
    assert not set(result.holds) & {job_id for job_id, _ in result.assignments}
    if explain:
        for job_id in result.holds:
            assert result.explanations[job_id].reason is WaitReason.QUOTA
