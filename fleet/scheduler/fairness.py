"""The fair-share rule: in what order the queue is served.

:func:`queue_order` is the rule, in one place; the dispatch loop, the estimates and every explanation
follow the order it gives. :func:`effective_priority` and :func:`decayed_usage` are the two figures it
weighs. To change a rule, change :func:`queue_order` (or the aging in :func:`levels_gained`); the
property tests (tests/test_scheduler_fairness.py) compare it with the plain definition, one job at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from operator import add, neg

from ..errors import Invalid
from .model import DEFAULTS, GROUP_PRIORITY, ID, MEMBER, PRIORITY, SUBMITTED, JobInfo, SchedulerParams

__all__ = ["decayed_usage", "effective_priority", "levels_gained", "queue_order"]


def levels_gained(waited: float, aging_seconds: float) -> int:
    """Priority levels a job gains by waiting: one per ``aging_seconds``, so nothing waits forever.

    It must never grow for a later submission (the levels of a whole queue are found by bisection).
    """
    return int(waited // aging_seconds) if waited > 0 else 0


def effective_priority(job: JobInfo, now: float, params: SchedulerParams = DEFAULTS) -> int:
    """The job's priority, plus its membership group's, plus one level per ``aging_seconds`` it has waited."""
    return job.priority + job.group_priority + levels_gained(now - job.submitted_at, params.aging_seconds)


def decayed_usage(
    records: Iterable[tuple[int, float, float]], now: float, half_life_s: float = 7 * 86400
) -> dict[int, float]:
    """Recent printer-seconds per member: each record ``(member_id, seconds, at)`` halves every half-life."""
    if not half_life_s > 0:
        raise Invalid("half_life_s must be positive", field="half_life_s")
    usage: dict[int, float] = {}
    for member_id, seconds, at in records:
        age = now - at
        weight = 0.5 ** (age / half_life_s) if age > 0 else 1.0
        usage[member_id] = usage.get(member_id, 0.0) + seconds * weight
    return usage


def queue_order(
    jobs: Sequence[JobInfo],
    charge: Sequence[float],
    usage: Mapping[int, float],
    now: float,
    params: SchedulerParams = DEFAULTS,
) -> Iterator[int]:
    """Indexes of ``jobs`` in queue order. The fair-share rule: one job goes before another when


    1. its effective priority is higher (:func:`effective_priority`: a manager's priority, plus its
       member's group's, plus what waiting adds);
    2. its member has used fewer printer-seconds recently: their decayed ``usage``, plus the
       ``charge`` of each of their jobs this order has already placed ahead (a job's estimated
       seconds; nothing for a job no printer of the fleet could take, see
       :func:`~.planning.charges`), so one member's many jobs
       interleave with everyone else's instead of queueing as a block;
    3. it was submitted earlier; then, the lower job id.

    Equal to picking the first job by (-effective priority, member's usage so far, submitted_at, id)
    over and over, charging each pick to its member. Faster: within one priority level a member's
    usage only grows along their own jobs, oldest first, so each job's "usage before it" is known
    from their earlier jobs alone, and one stable sort by it (of jobs already oldest first) gives
    rules 2 and 3 together. Charges must not be negative. Lazy, level by level: the dispatch loop
    reads only the head.
    """
    members = list(map(MEMBER, jobs))
    spent = {member: float(used) for member, used in usage.items()}
    before = [0.0] * len(jobs)
    for level in _levels(jobs, now, params):  # rule 1; each level's jobs oldest first (rule 3)
        for i in level:
            member = members[i]
            used = before[i] = spent.get(member, 0.0)
            spent[member] = used + charge[i]
        yield from sorted(level, key=before.__getitem__)  # rule 2; stable, so ties stay oldest first


def _levels(jobs: Sequence[JobInfo], now: float, params: SchedulerParams) -> list[list[int]]:
    """Job indexes grouped by :func:`effective_priority`, highest first; each group by (submitted_at, id).

    Column-wise, for speed: the aging part only falls along the queue from oldest to newest, so each
    run of equal levels is found by bisection, and levels are compared as a list of ints.
    """
    ids = list(map(ID, jobs))
    submitted = list(map(SUBMITTED, jobs))
    by_age = sorted(range(len(jobs)), key=ids.__getitem__)
    by_age.sort(key=submitted.__getitem__)
    levels = _aging_runs(list(map(submitted.__getitem__, by_age)), now, params.aging_seconds)
    priorities = list(map(PRIORITY, jobs))
    group_levels = list(map(GROUP_PRIORITY, jobs))
    if any(group_levels):
        priorities = list(map(add, priorities, group_levels))
    if any(priorities):
        levels = list(map(add, levels, map(priorities.__getitem__, by_age)))
    # Stable, so each level keeps its jobs oldest first; without manager priorities already in order.
    ranked = sorted(range(len(by_age)), key=list(map(neg, levels)).__getitem__)
    ladder = list(map(levels.__getitem__, ranked))
    ranked = list(map(by_age.__getitem__, ranked))
    groups = []
    start = 0
    for end in _run_ends(ladder.__getitem__, len(ladder)):
        groups.append(ranked[start:end])
        start = end
    return groups


def _aging_runs(submitted: list[float], now: float, aging: float) -> list[int]:
    """:func:`levels_gained` for each of ``submitted`` (ascending): one call per run of equal levels."""

    def level(k: int) -> int:
        return levels_gained(now - submitted[k], aging)

    levels: list[int] = []
    start = 0
    for end in _run_ends(level, len(submitted)):
        levels.extend([level(start)] * (end - start))
        start = end
    return levels


def _run_ends(value: Callable[[int], int], count: int) -> Iterator[int]:
    """Where each run of equal values ends along ``0..count-1``, for a value that never grows (bisection)."""
    start = 0
    while start < count:
        current = value(start)
        low, high = start + 1, count
        while low < high:
            middle = (low + high) // 2
            if value(middle) < current:
                high = middle
            else:
                low = middle + 1
        yield low
        start = low
