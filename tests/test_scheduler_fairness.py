"""The fair-share rule on its own: queue_order by example, and against its one-job-at-a-time definition."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.scheduler import JobInfo, SchedulerParams, effective_priority, queue_order
from fleet.scheduler.fairness import levels_gained
from fleet.states import JobState

NOW = 1_000_000.0
HOUR = 3600.0


def queued(jid: int, member: int, waited: float, priority: int = 0, seconds: float = HOUR) -> JobInfo:
    return JobInfo(jid, member, JobState.QUEUED, NOW - waited, seconds, priority=priority)


def ids(
    jobs: list[JobInfo],
    usage: dict[int, float] | None = None,
    params: SchedulerParams | None = None,
    charge: list[float] | None = None,
) -> list[int]:
    params = params or SchedulerParams()
    charge = [j.estimated_seconds for j in jobs] if charge is None else charge
    return [jobs[i].id for i in queue_order(jobs, charge, usage or {}, NOW, params)]


# (case, jobs, usage, expected order of ids)
CASES = [
    ("empty queue", [], {}, []),
    ("oldest first", [queued(1, 1, 60), queued(2, 2, 120)], {}, [2, 1]),
    ("equal age: lower id", [queued(2, 1, 60), queued(1, 2, 60)], {}, [1, 2]),
    ("priority beats age", [queued(1, 1, 5 * HOUR), queued(2, 2, 60, priority=1)], {}, [2, 1]),
    ("waiting raises priority", [queued(1, 1, 7 * HOUR), queued(2, 2, 60, priority=1)], {}, [1, 2]),
    ("negative priority waits", [queued(1, 1, 120, priority=-1), queued(2, 2, 60)], {}, [2, 1]),
    ("less usage first", [queued(1, 1, 120), queued(2, 2, 60)], {1: 500.0}, [2, 1]),
    ("usage counted in seconds", [queued(1, 1, 120), queued(2, 2, 60)], {1: 10.0, 2: 20.0}, [1, 2]),
    (
        "a member's jobs interleave with another's",
        [queued(1, 1, 400), queued(2, 1, 300), queued(3, 1, 200), queued(4, 2, 100), queued(5, 2, 50)],
        {},
        [1, 4, 2, 5, 3],
    ),
    (
        "longer jobs count for more",
        [queued(1, 1, 400, seconds=3 * HOUR), queued(2, 1, 300), queued(3, 2, 200), queued(4, 2, 100)],
        {},
        [1, 3, 4, 2],
    ),
    (
        "the pass's share carries across priority levels",
        [queued(1, 1, 60, priority=1), queued(2, 1, 200), queued(3, 2, 100)],
        {},
        [1, 3, 2],
    ),
    (
        "recent usage outweighs a long queue of one member",
        [queued(1, 1, 300), queued(2, 1, 200), queued(3, 2, 100)],
        {2: 3 * HOUR},
        [1, 2, 3],
    ),
]


@pytest.mark.parametrize(("case", "jobs", "usage", "expected"), CASES, ids=[c[0] for c in CASES])
def test_queue_order(case: str, jobs: list[JobInfo], usage: dict[int, float], expected: list[int]) -> None:
    assert ids(jobs, usage) == expected


def test_a_job_charged_nothing_does_not_count_against_its_member() -> None:
    jobs = [queued(1, 1, 300), queued(2, 1, 200), queued(3, 2, 100)]
    assert ids(jobs) == [1, 3, 2]
    assert ids(jobs, charge=[0.0, HOUR, HOUR]) == [1, 2, 3]


def test_aging_off_leaves_priority_alone() -> None:
    jobs = [queued(1, 1, 1000 * HOUR), queued(2, 2, 60, priority=1)]
    assert ids(jobs, params=SchedulerParams(aging_seconds=math.inf)) == [2, 1]


@pytest.mark.parametrize(
    ("waited", "aging", "gained"),
    [
        (-60, HOUR, 0),
        (0, HOUR, 0),
        (HOUR - 1, HOUR, 0),
        (HOUR, HOUR, 1),
        (5.5 * HOUR, HOUR, 5),
        (1e9, math.inf, 0),
    ],
)
def test_levels_gained(waited: float, aging: float, gained: int) -> None:
    assert levels_gained(waited, aging) == gained


def reference(
    jobs: list[JobInfo], charge: list[float], usage: dict[int, float], params: SchedulerParams
) -> list[int]:
    """The rule as written: pick the best job, charge its member, repeat."""
    spent = {m: float(u) for m, u in usage.items()}
    left = list(range(len(jobs)))
    order = []
    while left:
        best = min(
            left,
            key=lambda i: (
                -effective_priority(jobs[i], NOW, params),
                spent.get(jobs[i].member_id, 0.0),
                jobs[i].submitted_at,
                jobs[i].id,
            ),
        )
        left.remove(best)
        order.append(best)
        spent[jobs[best].member_id] = spent.get(jobs[best].member_id, 0.0) + charge[best]
    return order


@st.composite
def queues(draw: st.DrawFn) -> tuple[list[JobInfo], list[float], dict[int, float], SchedulerParams]:
    count = draw(st.integers(0, 30))
    jobs = [
        queued(
            100 + n,
            draw(st.integers(1, 5)),
            float(draw(st.sampled_from([-50, 0, 60, 3599, 3600, 7200]) | st.integers(-100, 40 * 3600))),
            priority=draw(st.integers(-2, 2)),
            seconds=float(draw(st.integers(0, 20_000))),
        )
        for n in range(count)
    ]
    charge = [draw(st.sampled_from([0.0, j.estimated_seconds])) for j in jobs]
    usage = draw(st.dictionaries(st.integers(1, 5), st.sampled_from([0.0, 60.0, 5000.0, 40_000.0])))
    params = SchedulerParams(aging_seconds=draw(st.sampled_from([600.0, HOUR, 6 * HOUR, math.inf])))
    return jobs, charge, usage, params


@settings(deadline=None, max_examples=300)
@given(queues())
def test_queue_order_is_its_definition(case: tuple) -> None:
    jobs, charge, usage, params = case
    assert list(queue_order(jobs, charge, usage, NOW, params)) == reference(jobs, charge, usage, params)


@settings(deadline=None, max_examples=100)
@given(queues(), st.randoms(use_true_random=False))
def test_queue_order_ignores_the_order_jobs_come_in(case: tuple, shuffle: object) -> None:
    jobs, charge, usage, params = case
    pairs = list(zip(jobs, charge))
    shuffle.shuffle(pairs)  # type: ignore[attr-defined]
    again = [j for j, _ in pairs]
    first = [jobs[i].id for i in queue_order(jobs, charge, usage, NOW, params)]
    second = [again[i].id for i in queue_order(again, [c for _, c in pairs], usage, NOW, params)]
    assert first == second
