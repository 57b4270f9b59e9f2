"""One planning pass: the queue order walked over the printers' expected availability.

The pass dispatches each job that reaches an idle printer, and (for the explanations) estimates when
every other job would start, by the same rules: each job takes the compatible printer free first,
and among idle ones the printer other jobs want least. Pure: no I/O, no clock, no process-wide state.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import compress
from operator import gt, itemgetter

from ..economy.quotas import Allowance, Hold, QuotaGate
from ..errors import Invalid
from ..lending import closing_at, is_open, next_opening
from ..states import DISPATCHABLE, JobState
from .explain import Explanation, Explanations
from .fairness import queue_order
from .matching import Fleet
from .model import (
    COST,
    DEFAULTS,
    GRAMS,
    ID,
    LIFTED,
    MEMBER,
    SECONDS,
    JobInfo,
    Plan,
    PrinterInfo,
    SchedulerParams,
)


def plan(
    printers: Sequence[PrinterInfo],
    jobs: Sequence[JobInfo],
    *,
    usage: Mapping[int, float],
    grants: Mapping[int, frozenset[str]],
    now: float,
    params: SchedulerParams = DEFAULTS,
    explain: bool = True,
    quotas: Mapping[int, Allowance] | None = None,
    currency: str = "EUR",
) -> Plan:
    """Decide which queued jobs go to which idle printers now, and explain every waiting job.

    ``usage`` is each member's recent printer-seconds (see :func:`decayed_usage`); ``grants`` maps a
    member to the restricted printers they may use. ``quotas`` holds each limited member's
    :class:`~fleet.economy.quotas.Allowance`: walking the queue order, a job whose member's quota it
    would break is held (it takes no printer and has no estimate), unless a manager lifted the limits
    for it; ``currency`` words a cost quota.

    With ``explain=False`` (the dispatch loop's fast path) ``order`` holds only the head of the queue
    the pass looked at (until every idle printer was taken or fit no job left), and ``explanations``
    is empty. The assignments are the same either way. Explanations are built when read; the first
    read walks the whole queue for the estimates. Reading them all (``values()``, ``items()``) builds
    them in one go, and each message is worded only when it is read.
    """
    fleet = Fleet(printers, grants, params)
    run = Pass(fleet, jobs, now, quotas, currency)
    order = queue_order(run.queued, run.charge, usage, now, params)
    if explain:
        run.order = list(order)
        looked = run.dispatch(iter(run.order))
        run.hold_rest(len(looked))
    else:
        run.order = run.dispatch(order)
    ids = run.ids
    assigned = run.assigned
    assignments = tuple((ids[i], fleet.printers[assigned[i]].id) for i in run.order if i in assigned)
    explanations: Mapping[int, Explanation] = Explanations(run, jobs) if explain else {}
    return Plan(
        assignments=assignments,
        explanations=explanations,
        order=tuple(map(ids.__getitem__, run.order)),
        holds={ids[i]: hold for i, hold in run.held.items()},
    )


def charges(seconds: list[float], compat: list[int], fleet: Fleet) -> list[float]:
    """What each job adds to its member's usage as the queue order places it: its printer-seconds.

    A job no printer of the fleet could ever take (too big, not granted, its material loaded nowhere)
    charges nothing: it waits for the fleet to change, and must not push its member's other jobs back.
    A job whose printers are only offline or busy charges in full, as will happen once one is back, so
    its place does not jump when a printer comes and goes; with no printer at all yet, every job
    charges in full, so the order is the one the first printer to join will serve.
    """
    if not fleet.printers:
        return seconds
    classes = fleet.compat_classes
    stuck = {c for c in set(compat) if not classes[c]}
    if not stuck:
        return seconds
    return [0.0 if c in stuck else s for s, c in zip(seconds, compat)]


class Pass:
    """One scheduling pass over the queued jobs: who takes which printer, and when each would start."""

    def __init__(
        self,
        fleet: Fleet,
        jobs: Sequence[JobInfo],
        now: float,
        quotas: Mapping[int, Allowance] | None = None,
        currency: str = "EUR",
    ) -> None:
        self.fleet = fleet
        self.now = now
        self.currency = currency
        #: Every limited member's running account; None when nobody has a quota (no cost at all).
        self.gate = QuotaGate(quotas) if quotas else None
        self.limited = self.gate.limited() if self.gate is not None else frozenset()
        #: Job index -> the quota that holds it, for the jobs the pass asked about.
        self.held: dict[int, Hold] = {}
        self._ask: Callable[[int], bool] | None = None
        # Hot code: each field is read once, with map() over a getter, into plain lists indexed in the
        # order the jobs came; only lists of indexes are sorted, and nothing is permuted.
        self.queued = arrived = [j for j in jobs if j.state is JobState.QUEUED]
        self.ids = ids = list(map(ID, arrived))
        if len(set(ids)) != len(ids):
            twice = sorted(job_id for job_id, n in Counter(ids).items() if n > 1)
            raise Invalid(f"jobs listed twice: {twice}", field="jobs")
        self.compat = fleet.compat_all(arrived)

        printers = fleet.printers
        #: When each printer is expected to be free; None when nobody knows (offline, error...).
        self.available: list[float | None] = [
            now if p.state in DISPATCHABLE else (None if p.busy_until is None else max(now, p.busy_until))
            for p in printers
        ]
        #: Lent printers outside their owner's windows now: never dispatched to, free when one opens.
        self.closed: dict[int, float | None] = {}
        #: Lent printers inside a window now, and when it ends: a job must be done by then to go there.
        self.closing: dict[int, float] = {}
        for index, p in enumerate(printers):
            if p.lending is None:
                continue
            if not is_open(p.lending, now):
                opens = self.closed[index] = next_opening(p.lending, now)
                at = self.available[index]
                self.available[index] = None if opens is None or at is None else max(at, opens)
            else:
                ends = closing_at(p.lending, now)
                if ends is not None:
                    self.closing[index] = ends
        self._rank_printers()
        self._pool_printers()
        seconds = list(map(SECONDS, arrived))
        if seconds and min(seconds) < 0.0:
            seconds = [s if s > 0.0 else 0.0 for s in seconds]
        #: Printer-seconds each job takes (never negative).
        self.seconds = seconds
        #: What each job adds to its member's usage in the queue order (see fairness.queue_order).
        self.charge = charges(seconds, self.compat, fleet)
        #: Per job: the grams it takes from a spool (only read when the fleet tracks spools).
        self.needs: list[float] = list(map(GRAMS, arrived)) if fleet.tracked else []
        #: Jobs no spool of their printers holds enough for: they wait for a spool change, and (as a
        #: material loaded nowhere) count nothing against their member meanwhile.
        self.short: frozenset[int] = self._short_of_grams()
        if self.short:
            self.charge = [0.0 if i in self.short else s for i, s in enumerate(self.charge)]
        #: Job indexes in queue order: all of them, or the head that dispatch looked at.
        self.order: list[int] = []
        self.members = list(map(MEMBER, arrived))
        #: Job index -> printer index, for the jobs dispatched now.
        self.assigned: dict[int, int] = {}

    def _short_of_grams(self) -> frozenset[int]:
        """Indexes of the jobs that need more grams than any spool of their printers holds."""
        if not self.needs:
            return frozenset()
        most = {c: self.fleet.most_grams(c) for c in self.jobs_per_compat}
        # Column by column in C (map, compress): no Python code runs per job.
        over = list(map(gt, self.needs, map(most.__getitem__, self.compat)))
        return frozenset(compress(range(len(over)), over)) if any(over) else frozenset()

    def _rank_printers(self) -> None:
        """Least wanted printers first, so a job leaves the printers others need most."""
        fleet = self.fleet
        self.jobs_per_compat = jobs_per_compat = Counter(self.compat)
        demand = [0] * len(fleet.class_printers)
        for compat, count in jobs_per_compat.items():
            for c in fleet.compat_classes[compat]:
                demand[c] += count
        class_of = [0] * len(fleet.printers)
        for c, members in enumerate(fleet.class_printers):
            for p in members:
                class_of[p] = c
        # Printers are sorted by id already, and sorted() is stable.
        self.by_rank = sorted(range(len(fleet.printers)), key=lambda p: demand[class_of[p]])
        self.rank = [0] * len(self.by_rank)
        for r, p in enumerate(self.by_rank):
            self.rank[p] = r

    def _pool_printers(self) -> None:
        """Merge classes that fit exactly the same compats: the walk then looks at fewer heaps."""
        fleet = self.fleet
        compats_of_class: dict[int, list[int]] = {}
        for compat in sorted(set(self.compat)):
            for c in fleet.compat_classes[compat]:
                compats_of_class.setdefault(c, []).append(compat)
        pool_ids: dict[tuple[int, ...], int] = {}
        pool_of_class: dict[int, int] = {}
        self.pools: list[list[tuple[float, int]]] = []
        count = len(fleet.printers)
        for c, compats in compats_of_class.items():
            entries = []
            for p in fleet.class_printers[c]:
                at = self.available[p]
                if at is not None:
                    idle = fleet.printers[p].state in DISPATCHABLE and p not in self.closed
                    entries.append((at, self.rank[p] if idle else self.rank[p] + count))
            if not entries:
                continue
            pool = pool_ids.setdefault(tuple(compats), len(pool_ids))
            if pool == len(self.pools):
                self.pools.append([])
            self.pools[pool].extend(entries)
            pool_of_class[c] = pool
        for heap in self.pools:
            heapq.heapify(heap)
        self.compat_pools = [
            tuple(sorted({pool_of_class[c] for c in classes if c in pool_of_class}))
            for classes in fleet.compat_classes
        ]

    def dispatch(self, order: Iterator[int]) -> list[int]:
        """Hand the idle printers to jobs in ``order``; return the jobs looked at (the head of ``order``).

        Stops once every idle printer is taken or fits no job left. Each job takes the idle printer
        of least rank among those it fits: the choice :meth:`walk` makes, as idle printers sort first.
        """
        count = len(self.fleet.printers)
        idle: list[list[int]] = []
        for heap in self.pools:
            idle.append(sorted((key for _, key in heap if key < count), reverse=True))
        idle_pools = [tuple(pool for pool in pools if idle[pool]) for pools in self.compat_pools]
        #: How many jobs not yet looked at fit each pool: at zero, its idle printers stay idle.
        wanted = [0] * len(idle)
        for fit, jobs in self.jobs_per_compat.items():
            for pool in idle_pools[fit]:
                wanted[pool] += jobs
        left = sum(len(ranks) for pool, ranks in enumerate(idle) if wanted[pool])
        compat = self.compat
        held = self.asker() if self.gate is not None else None
        closing = self.closing
        looked: list[int] = []
        # Checked before the first job is read too: the order is lazy, and with no printer to hand
        # out (the usual case for the dispatch loop) it is never worked out at all.
        while left:
            i = next(order, None)
            if i is None:
                break
            looked.append(i)
            candidates = idle_pools[compat[i]]
            if held is not None and held(i):
                for pool in candidates:
                    wanted[pool] -= 1
                    if not wanted[pool]:
                        left -= len(idle[pool])
                continue
            best = count
            chosen: list[int] | None = None
            place = -1
            if closing:
                # Some idle printers are lent until a window ends: each pool's least rank that would
                # finish this job in time (the rest of the pass is as below).
                for pool in candidates:
                    ranks = idle[pool]
                    for k in range(len(ranks) - 1, -1, -1):
                        if ranks[k] >= best:
                            break
                        if self.in_time(i, self.by_rank[ranks[k]]):
                            best, chosen, place = ranks[k], ranks, k
                            break
            else:
                for pool in candidates:
                    ranks = idle[pool]
                    if ranks and ranks[-1] < best:
                        best = ranks[-1]
                        chosen = ranks
            if chosen is not None:
                chosen.pop(place)
                self.assigned[i] = self.by_rank[best]
                left -= 1
            for pool in candidates:
                wanted[pool] -= 1
                if not wanted[pool]:
                    left -= len(idle[pool])
        return looked

    def asker(self) -> Callable[[int], bool]:
        """A function that asks the quota gate about job ``i`` (once each, in queue order) and says True
        when a quota holds it; its lookups are bound once, as a pass may ask about most of the queue.

        A job no working printer can take gets no slot, so it neither waits on nor counts against a quota.
        """
        if self._ask is not None:
            return self._ask
        gate = self.gate
        assert gate is not None
        arrived = self.queued
        grams = [g if g > 0.0 else 0.0 for g in map(GRAMS, arrived)]
        costs = [float(c) if c > 0 else 0.0 for c in map(COST, arrived)]
        lifted = list(map(LIFTED, arrived))
        reachable = [bool(pools) for pools in self.compat_pools]
        limited, members, compat = self.limited, self.members, self.compat
        seconds, held, admit = self.seconds, self.held, gate.admit_amounts

        def ask(i: int) -> bool:
            member = members[i]
            if member not in limited or not reachable[compat[i]]:
                return False
            hold = admit(member, (seconds[i], grams[i], costs[i], 1.0), lifted[i])
            if hold is None:
                return False
            held[i] = hold
            return True

        self._ask = ask
        return ask

    def hold_rest(self, start: int) -> None:
        """Ask the gate about the jobs of the order past the head :meth:`dispatch` looked at."""
        if self.gate is None:
            return
        ask = self.asker()
        for i in self.order[start:]:
            ask(i)

    def in_time(self, job: int, printer: int) -> bool:
        """Would job index ``job``, started now, be done before printer ``printer``'s lending window ends?"""
        ends = self.closing.get(printer)
        return ends is None or self.now + self.seconds[job] <= ends

    def walk(self) -> list[float | None]:
        """Estimated starts along the whole order: each job takes the compatible printer free first.

        The grams on an idle printer's spool count (its class says what it holds now); those on a
        busy printer's do not (they run down and are changed before it is free, which nobody knows),
        but a job no spool of its printers holds enough for gets no estimate at all.
        """
        count = len(self.fleet.printers)
        pools = [list(heap) for heap in self.pools]
        #: Per compat: the heaps of its pools. The heap whose top is free first is found by min() in C:
        #: a job that takes any colour of its material looks at a pool per colour loaded.
        heaps_of = [[pools[pool] for pool in candidates] for candidates in self.compat_pools]
        first = itemgetter(0)
        compat = self.compat
        seconds = self.seconds
        start: list[float | None] = [None] * len(seconds)
        replace = heapq.heapreplace
        held = self.held
        short = self.short
        for i in self.order:
            heaps = heaps_of[compat[i]]
            if not heaps or i in short or i in held:
                continue
            heap = heaps[0] if len(heaps) == 1 else min(heaps, key=first)
            at, key = heap[0]
            start[i] = at
            replace(heap, (at + seconds[i], key if key >= count else key + count))
        return start
