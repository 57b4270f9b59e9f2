"""Which queued job goes to which idle printer, and why every other job is still waiting.

Pure: no I/O and no clock (``now`` is a parameter). One pass puts the queue in order (effective
priority, which grows with waiting; then fair share by recent usage; then age), walks that order over
the printers' expected availability, and dispatches each job that reaches an idle printer. Walking
the whole order gives every waiting job its place and an estimated start, from the same rules.

Printers are grouped into capability classes (volume, nozzle, material, who may use them) and jobs
by their requirements, so compatibility is worked out once per (requirement, class), not per pair.
"""

from __future__ import annotations

import bisect
import gc
import heapq
import math
from collections import Counter
from collections.abc import ItemsView, Iterable, Iterator, Mapping, Sequence, ValuesView
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from itertools import repeat
from operator import add, and_, attrgetter, ge, itemgetter
from typing import TYPE_CHECKING

from .errors import Invalid
from .geometry import Box
from .states import DISPATCHABLE, JobState, PrinterState

__all__ = [
    "Explanation",
    "JobInfo",
    "Plan",
    "PrinterInfo",
    "SchedulerParams",
    "WaitReason",
    "decayed_usage",
    "effective_priority",
    "fits",
    "plan",
]

TIMES = "\u00d7"
_ID = attrgetter("id")
_MEMBER = attrgetter("member_id")
_PRIORITY = attrgetter("priority")
_SECONDS = attrgetter("estimated_seconds")
_SUBMITTED = attrgetter("submitted_at")
_BOUNDS = attrgetter("bounds")
_NOZZLE = attrgetter("nozzle_diameter")
_MATERIAL = attrgetter("material")
_SIDES = attrgetter("min_x", "min_y", "min_z", "max_x", "max_y", "max_z")
#: Stands for "no bounds" (fits anywhere): every side of Box.contains holds for it.
_ANYWHERE = Box(math.inf, math.inf, math.inf, -math.inf, -math.inf, -math.inf)


@dataclass(frozen=True)
class PrinterInfo:
    """What the scheduler knows about one printer."""

    id: str
    state: PrinterState
    #: Build volume in printer coordinates.
    volume: Box
    nozzle_diameter: float
    #: Loaded material, e.g. "PLA"; None (unknown) matches no job that names a material.
    material: str | None
    #: Restricted printers only take jobs of members granted to them.
    restricted: bool = False
    #: When a busy printer is expected to be free (epoch seconds); used for estimates only.
    busy_until: float | None = None


@dataclass(frozen=True)
class JobInfo:
    """What the scheduler knows about one job."""

    id: int
    member_id: int
    state: JobState
    submitted_at: float
    estimated_seconds: float
    #: Extent of the print in printer coordinates; None (unknown) fits anywhere.
    bounds: Box | None = None
    #: None means any nozzle.
    nozzle_diameter: float | None = None
    #: None means any material.
    material: str | None = None
    #: A manager may raise (or lower) it.
    priority: int = 0


@dataclass(frozen=True)
class SchedulerParams:
    #: A waiting job gains one priority level per this much waiting, so nothing waits forever.
    aging_seconds: float = 6 * 3600
    nozzle_tolerance: float = 0.01
    #: Millimetres a print may stick out of the build volume on any side.
    bounds_tolerance: float = 0.0

    def __post_init__(self) -> None:
        if not self.aging_seconds > 0:
            raise Invalid("aging_seconds must be positive (math.inf turns aging off)", field="aging_seconds")
        if not self.nozzle_tolerance >= 0:
            raise Invalid("nozzle_tolerance must not be negative", field="nozzle_tolerance")
        if not self.bounds_tolerance >= 0:
            raise Invalid("bounds_tolerance must not be negative", field="bounds_tolerance")


class WaitReason(str, Enum):
    #: Dispatched in this plan.
    NEXT = "next"
    #: Not yet checked; it joins the queue after validation.
    SUBMITTED = "submitted"
    AWAITING_APPROVAL = "awaiting_approval"
    #: A compatible printer is free, but jobs ahead in line take it first.
    FAIR_SHARE = "fair_share"
    #: Compatible printers exist and all are busy.
    NO_PRINTER_FREE = "no_printer_free"
    #: Compatible printers exist, but none is working (offline, error, maintenance) or has an estimate.
    PRINTERS_UNAVAILABLE = "printers_unavailable"
    #: Printers could take it, but none has its material loaded; a manager can load it.
    MATERIAL_NOT_LOADED = "material_not_loaded"
    #: No printer in the fleet could ever take it (too big, nozzle, not granted).
    NO_COMPATIBLE_PRINTER = "no_compatible_printer"


class Explanation(tuple):  # type: ignore[type-arg]
    """Why one job waits (or that it starts now): immutable, compared and hashed by value.

    ``message`` may be worded only when first read: a pass explains 20,000 jobs, and most readers need
    the reasons and positions of all but the wording of few. A tuple underneath, as that is the
    cheapest immutable object to build; read it by field name.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        job_id: int
        #: 1-based place in the queue order; None for jobs not in the queue.
        position: int | None
        reason: WaitReason
        estimated_start: float | None
        compatible_printers: tuple[str, ...]
    else:
        job_id = property(itemgetter(0))
        position = property(itemgetter(1))
        reason = property(itemgetter(2))
        estimated_start = property(itemgetter(4))
        compatible_printers = property(itemgetter(5))

    def __new__(
        cls,
        job_id: int,
        position: int | None,
        reason: WaitReason,
        message: str,
        estimated_start: float | None,
        compatible_printers: tuple[str, ...],
    ) -> Explanation:
        return _new_tuple(cls, (job_id, position, reason, message, estimated_start, compatible_printers))

    @property
    def message(self) -> str:
        message: str | _Explanations = self[3]
        return message if isinstance(message, str) else message._message_of(self)

    def _fields(self) -> tuple[object, ...]:
        return (
            self.job_id,
            self.position,
            self.reason,
            self.message,
            self.estimated_start,
            self.compatible_printers,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Explanation):
            return NotImplemented
        return self._fields() == other._fields()

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Explanation):
            return NotImplemented
        return self._fields() != other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"Explanation(job_id={self.job_id!r}, position={self.position!r}, reason={self.reason!r}, "
            f"message={self.message!r}, estimated_start={self.estimated_start!r}, "
            f"compatible_printers={self.compatible_printers!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (Explanation, self._fields())


_new_tuple = tuple.__new__


@dataclass(frozen=True)
class Plan:
    #: (job_id, printer_id) pairs to dispatch now, in queue order.
    assignments: tuple[tuple[int, str], ...]
    #: One for every QUEUED, AWAITING_APPROVAL and SUBMITTED job passed in.
    explanations: Mapping[int, Explanation]
    #: Queued job ids in queue order.
    order: tuple[int, ...]


def _volume_fits(volume: Box, bounds: Box | None, tolerance: float) -> bool:
    return bounds is None or volume.contains(bounds, tolerance)


def _nozzle_fits(printer_nozzle: float, job_nozzle: float | None, tolerance: float) -> bool:
    return job_nozzle is None or abs(printer_nozzle - job_nozzle) <= tolerance


def _material_fits(printer_material: str | None, job_material: str | None) -> bool:
    """Compare casefolded names; an unknown loaded material matches no job that names one."""
    return job_material is None or (printer_material is not None and printer_material == job_material)


def _fold(material: str | None) -> str | None:
    return None if material is None else material.casefold()


def fits(
    job: JobInfo,
    printer: PrinterInfo,
    grants: Mapping[int, frozenset[str]],
    params: SchedulerParams = SchedulerParams(),
) -> bool:
    """True when ``printer`` could print ``job`` (whatever the printer is doing now)."""
    return (
        _volume_fits(printer.volume, job.bounds, params.bounds_tolerance)
        and _nozzle_fits(printer.nozzle_diameter, job.nozzle_diameter, params.nozzle_tolerance)
        and _material_fits(_fold(printer.material), _fold(job.material))
        and (not printer.restricted or printer.id in grants.get(job.member_id, ()))
    )


def effective_priority(job: JobInfo, now: float, params: SchedulerParams = SchedulerParams()) -> int:
    """The job's priority plus one level per ``aging_seconds`` it has waited."""
    age = now - job.submitted_at
    return job.priority + (int(age // params.aging_seconds) if age > 0 else 0)


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


class _Fleet:
    """The printers grouped into capability classes, and which classes each job requirement fits.

    Jobs with equal requirements share a "compat" (an int standing for a tuple of classes), worked out
    once; members granted restricted printers get their own.
    """

    def __init__(
        self, printers: Sequence[PrinterInfo], grants: Mapping[int, frozenset[str]], params: SchedulerParams
    ) -> None:
        self.printers = sorted(printers, key=attrgetter("id"))
        for a, b in zip(self.printers, self.printers[1:]):
            if a.id == b.id:
                raise Invalid(f"printer {a.id!r} is listed twice", field="printers")
        self.params = params
        self.grants = grants
        allowed: dict[str, set[int]] = {p.id: set() for p in self.printers if p.restricted}
        for member_id, printer_ids in grants.items():
            for pid in printer_ids:
                if pid in allowed:
                    allowed[pid].add(member_id)
        #: Members granted at least one restricted printer: their compat is worked out per member.
        self.granted_members = frozenset(m for members in allowed.values() for m in members)

        self.volumes: list[Box] = []
        self.class_volume: list[int] = []
        self.class_nozzle: list[float] = []
        self.class_material: list[str | None] = []
        self.class_members: list[frozenset[int] | None] = []
        self.class_printers: list[list[int]] = []
        volume_ids: dict[Box, int] = {}
        class_ids: dict[tuple[int, float, str | None, frozenset[int] | None], int] = {}
        for index, p in enumerate(self.printers):
            volume = volume_ids.setdefault(p.volume, len(volume_ids))
            if volume == len(self.volumes):
                self.volumes.append(p.volume)
            members = frozenset(allowed[p.id]) if p.restricted else None
            material = _fold(p.material)
            cls = class_ids.setdefault((volume, p.nozzle_diameter, material, members), len(class_ids))
            if cls == len(self.class_printers):
                self.class_volume.append(volume)
                self.class_nozzle.append(p.nozzle_diameter)
                self.class_material.append(material)
                self.class_members.append(members)
                self.class_printers.append([])
            self.class_printers[cls].append(index)

        #: Compat id -> the classes it fits, in class order.
        self.compat_classes: list[tuple[int, ...]] = []
        self._compat_ids: dict[int, int] = {}
        #: (fit mask, nozzle, material, member if granted) -> compat.
        self._by_key: dict[tuple[int, float | None, str | None, int | None], int] = {}
        #: Per side (min x, y, z, then max x, y, z): sorted limits, and the volumes each bisection fits.
        self._sides = [self._lower_side(axis) for axis in range(3)] + [
            self._upper_side(axis) for axis in range(3)
        ]
        #: Bit masks of the classes each volume fit, nozzle, folded material and member may use.
        self._volume_classes: dict[int, int] = {}
        self._nozzle_classes: dict[float | None, int] = {}
        self._material_classes: dict[str | None, int] = {}
        self._member_classes: dict[int | None, int] = {}

    def _lower_side(self, axis: int) -> tuple[list[float], list[int]]:
        """A box fits volume v on this side when its min >= v's min - tolerance (as Box.contains)."""
        tolerance = self.params.bounds_tolerance
        limits = sorted(
            ((box.min_x, box.min_y, box.min_z)[axis] - tolerance, v) for v, box in enumerate(self.volumes)
        )
        masks = [0]
        for _, v in limits:
            masks.append(masks[-1] | 1 << v)
        return [limit for limit, _ in limits], masks

    def _upper_side(self, axis: int) -> tuple[list[float], list[int]]:
        """A box fits volume v on this side when its max <= v's max + tolerance (as Box.contains)."""
        tolerance = self.params.bounds_tolerance
        limits = sorted(
            ((box.max_x, box.max_y, box.max_z)[axis] + tolerance, v) for v, box in enumerate(self.volumes)
        )
        masks = [0]
        for _, v in reversed(limits):
            masks.append(masks[-1] | 1 << v)
        masks.reverse()
        return [limit for limit, _ in limits], masks

    def compat_all(self, jobs: Sequence[JobInfo], members: list[int] | None = None) -> list[int]:
        """The compat id of each job.

        Hot, and written to allocate little: a pass over 20,000 jobs runs in C-level ``map`` calls over
        parallel lists, keys equal requirements by value (never by hashing a Box, which runs Python
        code), and works out each distinct requirement once.
        """
        granted = {m: m for m in self.granted_members}
        fits = self._fit_masks(list(map(_BOUNDS, jobs)))
        nozzles = list(map(_NOZZLE, jobs))
        materials = list(map(_MATERIAL, jobs))
        if members is None:
            members = list(map(_MEMBER, jobs))
        granted_only: list[int | None] = list(map(granted.get, members))
        # zip twice rather than keep a tuple per job: zip reuses its tuple when nobody holds it, so
        # this allocates almost nothing for the garbage collector to walk.
        distinct: dict[tuple[int, float | None, str | None, int | None], int] = {}
        cache = self._by_key
        for key in dict.fromkeys(zip(fits, nozzles, materials, granted_only)):
            compat = cache.get(key)
            if compat is None:
                compat = cache[key] = self._work_out(*key)
            distinct[key] = compat
        return list(map(distinct.__getitem__, zip(fits, nozzles, materials, granted_only)))

    def _fit_masks(self, boxes: list[Box | None]) -> list[int]:
        """The volumes each box fits, as bit masks: bisections over each side's limits, per distinct box."""
        ids = list(map(id, boxes))
        by_id: dict[int, Box] = dict(zip(ids, boxes))  # type: ignore[arg-type]
        if id(None) in by_id:
            by_id[id(None)] = _ANYWHERE
        values = list(map(_SIDES, by_id.values()))
        distinct = list(dict.fromkeys(values))
        masks: list[int] | None = None
        for axis in range(6):
            thresholds, side_masks = self._sides[axis]
            search = bisect.bisect_right if axis < 3 else bisect.bisect_left
            column = map(
                side_masks.__getitem__, map(search, repeat(thresholds), map(itemgetter(axis), distinct))
            )
            masks = list(column) if masks is None else list(map(and_, masks, column))
        of_value = dict(zip(distinct, masks or []))
        of_id = dict(zip(by_id, map(of_value.__getitem__, values)))
        return list(map(of_id.__getitem__, ids))

    def _work_out(self, fit: int, nozzle: float | None, material: str | None, member: int | None) -> int:
        """The compat of one requirement: the classes it fits, as a bit mask ANDed from one per field."""
        mask = self._volume_classes.get(fit)
        if mask is None:
            mask = self._volume_classes[fit] = sum(
                1 << c for c, volume in enumerate(self.class_volume) if fit >> volume & 1
            )
        part = self._nozzle_classes.get(nozzle)
        if part is None:
            tolerance = self.params.nozzle_tolerance
            part = self._nozzle_classes[nozzle] = sum(
                1 << c for c, size in enumerate(self.class_nozzle) if _nozzle_fits(size, nozzle, tolerance)
            )
        mask &= part
        folded = _fold(material)
        part = self._material_classes.get(folded)
        if part is None:
            part = self._material_classes[folded] = sum(
                1 << c for c, loaded in enumerate(self.class_material) if _material_fits(loaded, folded)
            )
        mask &= part
        part = self._member_classes.get(member)
        if part is None:
            part = self._member_classes[member] = sum(
                1 << c for c, members in enumerate(self.class_members) if _allowed(members, member)
            )
        mask &= part
        compat = self._compat_ids.get(mask)
        if compat is None:
            compat = self._compat_ids[mask] = len(self.compat_classes)
            self.compat_classes.append(tuple(c for c in range(len(self.class_printers)) if mask >> c & 1))
        return compat

    def printers_of(self, compat: int) -> list[int]:
        """Indexes of the printers (sorted by id) that a compat fits."""
        return sorted(p for c in self.compat_classes[compat] for p in self.class_printers[c])


def _allowed(members: frozenset[int] | None, member: int | None) -> bool:
    """May ``member`` use a class whose printers are restricted to ``members`` (None: open to all)?"""
    return members is None or (member is not None and member in members)


class _Pass:
    """One scheduling pass: the queue order and its walk over the printers' availability."""

    def __init__(
        self,
        fleet: _Fleet,
        jobs: Sequence[JobInfo],
        usage: Mapping[int, float],
        now: float,
    ) -> None:
        self.fleet = fleet
        self.now = now
        # Hot code: on a slow machine each pass over 20,000 jobs costs a millisecond or more, so each
        # field is read once, with map() over a getter, into plain lists indexed in the order the jobs
        # came (their order in memory); only the list of indexes is sorted, and nothing is permuted.
        self.queued = arrived = [j for j in jobs if j.state is JobState.QUEUED]
        self.ids = ids = list(map(_ID, arrived))
        if len(set(ids)) != len(ids):
            twice = sorted(job_id for job_id, n in Counter(ids).items() if n > 1)
            raise Invalid(f"jobs listed twice: {twice}", field="jobs")
        submitted = list(map(_SUBMITTED, arrived))
        #: Job indexes by (submitted_at, id), the final tie-break.
        self.by_age = by_age = sorted(range(len(ids)), key=ids.__getitem__)
        by_age.sort(key=submitted.__getitem__)
        self.members = members = list(map(_MEMBER, arrived))
        self.compat = fleet.compat_all(arrived, members)

        printers = fleet.printers
        #: When each printer is expected to be free; None when nobody knows (offline, error...).
        self.available: list[float | None] = [
            now if p.state in DISPATCHABLE else (None if p.busy_until is None else max(now, p.busy_until))
            for p in printers
        ]
        self._rank_printers()
        self._pool_printers()
        seconds = list(map(_SECONDS, arrived))
        if seconds and min(seconds) < 0.0:
            seconds = [s if s > 0.0 else 0.0 for s in seconds]
        #: Printer-seconds each job takes (never negative).
        self.seconds = seconds
        pools = self.compat_pools
        # A job no working printer can take gets no slot, so it does not count against its member.
        stuck = {c for c in self.jobs_per_compat if not pools[c]}
        self.accrue = [0.0 if c in stuck else s for s, c in zip(seconds, self.compat)] if stuck else seconds
        #: Effective priority levels along ``by_age`` (not by job index).
        levels = _age_levels(list(map(submitted.__getitem__, by_age)), now, fleet.params.aging_seconds)
        priorities = list(map(_PRIORITY, arrived))
        if any(priorities):
            levels = list(map(add, levels, map(priorities.__getitem__, by_age)))
        self.levels = levels
        self.usage = usage
        #: Job indexes in queue order: all of them (full_order) or the head that dispatch looked at.
        self.order: list[int] = []
        #: Job index -> printer index, for the jobs dispatched now.
        self.assigned: dict[int, int] = {}

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
                    idle = fleet.printers[p].state in DISPATCHABLE
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

    def full_order(self) -> None:
        self.order = _queue_order(self.by_age, self.levels, self.members, self.accrue, self.usage)

    def dispatch(self, order: Iterable[int]) -> list[int]:
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
        looked: list[int] = []
        for i in order:
            if not left:
                break
            looked.append(i)
            candidates = idle_pools[compat[i]]
            best = count
            chosen: list[int] | None = None
            for pool in candidates:
                ranks = idle[pool]
                if ranks and ranks[-1] < best:
                    best = ranks[-1]
                    chosen = ranks
            if chosen is not None:
                chosen.pop()
                self.assigned[i] = self.by_rank[best]
                left -= 1
            for pool in candidates:
                wanted[pool] -= 1
                if not wanted[pool]:
                    left -= len(idle[pool])
        return looked

    def walk(self) -> list[float | None]:
        """Estimated starts along the whole order: each job takes the compatible printer free first."""
        count = len(self.fleet.printers)
        pools = [list(heap) for heap in self.pools]
        compat_pools = self.compat_pools
        compat = self.compat
        seconds = self.seconds
        start: list[float | None] = [None] * len(seconds)
        replace = heapq.heapreplace
        for i in self.order:
            candidates = compat_pools[compat[i]]
            if not candidates:
                continue
            heap = pools[candidates[0]]
            best = heap[0]
            for pool in candidates[1:]:
                top = pools[pool][0]
                if top < best:
                    best = top
                    heap = pools[pool]
            at, key = best
            start[i] = at
            replace(heap, (at + seconds[i], key if key >= count else key + count))
        return start


def _age_levels(submitted: list[float], now: float, aging: float) -> list[int]:
    """Levels gained by waiting, for ``submitted`` in ascending order; equal to :func:`effective_priority`.

    The level only falls along the list, so each run of equal levels is found by bisection.
    """

    def level(at: float) -> int:
        return int((now - at) // aging) if at < now else 0

    levels: list[int] = []
    start, end = 0, len(submitted)
    while start < end:
        current = level(submitted[start])
        low, high = start + 1, end
        while low < high:
            middle = (low + high) // 2
            if level(submitted[middle]) < current:
                high = middle
            else:
                low = middle + 1
        levels.extend([current] * (low - start))
        start = low
    return levels


def _level_runs(by_age: list[int], levels: list[int]) -> list[list[int]]:
    """Job indexes by level, highest first, each level's jobs by age; ``levels`` runs along ``by_age``."""
    count = len(by_age)
    # Without manager priorities the level only falls along by_age; otherwise sort (stably) by level.
    if all(map(ge, levels, levels[1:])):
        ladder, by_level = levels, by_age
    else:
        rank = sorted(range(count), key=[-level for level in levels].__getitem__)
        ladder = list(map(levels.__getitem__, rank))
        by_level = list(map(by_age.__getitem__, rank))
    runs = []
    start = 0
    while start < count:
        level = ladder[start]
        low, high = start + 1, count
        while low < high:
            middle = (low + high) // 2
            if ladder[middle] < level:
                high = middle
            else:
                low = middle + 1
        runs.append(by_level[start:low])
        start = low
    return runs


def _queue_order(
    by_age: list[int], levels: list[int], members: list[int], accrue: list[float], usage: Mapping[int, float]
) -> list[int]:
    """Job indexes in queue order: higher level first; within a level, least usage first, then age.

    ``levels`` runs along ``by_age``. Each job a member gets in the order adds its ``accrue`` to their
    usage. Taking the member with the least usage, one job at a time, is a merge of each member's
    jobs keyed by (usage before the job, age), a key that only grows along a member's jobs; so a
    stable sort of each level's jobs (already by age) by usage before the job gives the same order,
    faster. The keys are plain lists of numbers: no tuple per job.
    """
    before = [0.0] * len(members)
    spent = {member: float(used) for member, used in usage.items()}
    get = spent.get
    order: list[int] = []
    for run in _level_runs(by_age, levels):
        for i in run:
            member = members[i]
            used = before[i] = get(member, 0.0)
            spent[member] = used + accrue[i]
        order += sorted(run, key=before.__getitem__)
    return order


def _queue_head(
    by_age: list[int], levels: list[int], members: list[int], accrue: list[float], usage: Mapping[int, float]
) -> Iterator[int]:
    """The order of :func:`_queue_order`, made one job at a time: the dispatch loop needs only the head.

    The merge itself, level by level: a heap of members keyed by (usage so far, age of their next job).
    """
    spent = {member: float(used) for member, used in usage.items()}
    for run in _level_runs(by_age, levels):
        mine: dict[int, list[int]] = {}
        for place, i in enumerate(run):
            places = mine.get(members[i])
            if places is None:
                mine[members[i]] = [place]
            else:
                places.append(place)
        heap: list[tuple[float, int, int]] = []
        for member, places in mine.items():
            heap.append((spent.get(member, 0.0), places[0], member))
            places.reverse()
        heapq.heapify(heap)
        while heap:
            used, place, member = heap[0]
            i = run[place]
            yield i
            places = mine[member]
            places.pop()
            used += accrue[i]
            if places:
                heapq.heapreplace(heap, (used, places[-1], member))
            else:
                heapq.heappop(heap)
                spent[member] = used


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold off Python's cycle collector during a pass.

    A pass allocates tens of thousands of short-lived, acyclic lists and numbers; each allocation
    burst can trigger a collection that walks every live object, the caller's 20,000 job records
    included, which costs more than the pass itself. Nothing the pass allocates forms a cycle, so
    postponing collection loses nothing; it runs again as soon as the pass ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def plan(
    printers: Sequence[PrinterInfo],
    jobs: Sequence[JobInfo],
    *,
    usage: Mapping[int, float],
    grants: Mapping[int, frozenset[str]],
    now: float,
    params: SchedulerParams = SchedulerParams(),
    explain: bool = True,
) -> Plan:
    """Decide which queued jobs go to which idle printers now, and explain every waiting job.

    ``usage`` is each member's recent printer-seconds (see :func:`decayed_usage`); ``grants`` maps a
    member to the restricted printers they may use.

    With ``explain=False`` (the dispatch loop's fast path) the pass stops once every idle printer is
    taken or fits no job left, ``order`` holds only the head of the queue it looked at, and
    ``explanations`` is empty. The assignments are the same either way. Explanations are built when
    read; the first read walks the whole queue for the estimates. Reading them all (``values()``,
    ``items()``) builds them in one go, and each message is worded only when it is read.
    """
    with _collector_paused():
        fleet = _Fleet(printers, grants, params)
        run = _Pass(fleet, jobs, usage, now)
        if explain:
            run.full_order()
            run.dispatch(run.order)
        else:
            run.order = run.dispatch(_queue_head(run.by_age, run.levels, run.members, run.accrue, usage))
    ids = run.ids
    assigned = run.assigned
    assignments = tuple((ids[i], fleet.printers[assigned[i]].id) for i in run.order if i in assigned)
    order = tuple(map(ids.__getitem__, run.order))
    explanations: Mapping[int, Explanation] = _Explanations(run, jobs) if explain else {}
    return Plan(assignments=assignments, explanations=explanations, order=order)


class _Explanations(Mapping[int, Explanation]):
    """Explanations built when asked for: a member's page reads a few, the dispatch loop none."""

    def __init__(self, run: _Pass, jobs: Sequence[JobInfo]) -> None:
        self._run = run
        self._jobs = jobs
        self._start: list[float | None] | None = None
        self._by_compat: dict[int, tuple[list[int], tuple[str, ...], int]] = {}
        self._why_not: dict[tuple[object, ...], tuple[WaitReason, str]] = {}
        self._busy_of: dict[int, str] = {}
        self._needs_of: dict[tuple[object, ...], str] = {}
        self._built: dict[int, Explanation] | None = None
        self._messages: dict[int, str] = {}

    def _ready(self) -> list[float | None]:
        """Index the jobs and walk the queue for the estimates, once."""
        with _collector_paused():
            return self._walk_once()

    def _walk_once(self) -> list[float | None]:
        if self._start is None:
            run = self._run
            order = run.order
            #: Job index -> 1-based place in the order (the order's inverse, sorted in C).
            self._position = list(map(add, sorted(range(len(order)), key=order.__getitem__), repeat(1)))
            self._index: dict[int, int] = dict(zip(run.ids, range(len(run.ids))))
            others = [
                j
                for j in self._jobs
                if j.state in (JobState.AWAITING_APPROVAL, JobState.SUBMITTED) and j.id not in self._index
            ]
            self._others: dict[int, tuple[JobInfo, int]] = dict(
                zip(map(_ID, others), zip(others, run.fleet.compat_all(others)))
            )
            self._ids = tuple(map(run.ids.__getitem__, order)) + tuple(sorted(self._others))
            self._start = run.walk()
        return self._start

    def __len__(self) -> int:
        self._ready()
        return len(self._ids)

    def __iter__(self) -> Iterator[int]:
        self._ready()
        return iter(self._ids)

    def __contains__(self, job_id: object) -> bool:
        self._ready()
        return job_id in self._index or job_id in self._others

    def __getitem__(self, job_id: int) -> Explanation:
        if self._built is not None:
            return self._built[job_id]
        start = self._ready()
        index = self._index.get(job_id)
        if index is not None:
            return self._queued(index, start[index])
        other = self._others.get(job_id)
        if other is None:
            raise KeyError(job_id)
        return self._not_queued(*other)

    def __repr__(self) -> str:
        return f"<explanations of {len(self)} jobs>"

    def _queued(self, i: int, start: float | None) -> Explanation:
        """The reason now; the message when it is read (see :meth:`_wording`)."""
        run = self._run
        compatible, free = self._printers(run.compat[i])[1:]
        if i in run.assigned:
            reason = WaitReason.NEXT
        elif not compatible:
            reason = self._incompatible(run.queued[i])[0]
        elif start is None:
            reason = WaitReason.PRINTERS_UNAVAILABLE
        elif free:
            reason = WaitReason.FAIR_SHARE
        else:
            reason = WaitReason.NO_PRINTER_FREE
        return _new_tuple(Explanation, (run.ids[i], self._position[i], reason, self, start, compatible))

    def _all(self) -> dict[int, Explanation]:
        """Every explanation, built in one go (the /queue page reads them all): the same as reading each.

        Column by column over the queue order, in C-level map() calls; only jobs without an estimate
        (or dispatched now) are looked at one by one.
        """
        with _collector_paused():
            return self._build_all()

    def _build_all(self) -> dict[int, Explanation]:
        if self._built is None:
            start = self._ready()
            run = self._run
            order = run.order
            compat = list(map(run.compat.__getitem__, order))
            at = list(map(start.__getitem__, order))
            compatible: dict[int, tuple[str, ...]] = {}
            waits: dict[int, WaitReason] = {}
            for c in set(compat):
                compatible[c], free = self._printers(c)[1:]
                waits[c] = WaitReason.FAIR_SHARE if free else WaitReason.NO_PRINTER_FREE
            reasons = list(map(waits.__getitem__, compat))
            printers = list(map(compatible.__getitem__, compat))
            for place in [place for place, when in enumerate(at) if when is None]:
                if printers[place]:
                    reasons[place] = WaitReason.PRINTERS_UNAVAILABLE
                else:
                    reasons[place] = self._incompatible(run.queued[order[place]])[0]
            for i in run.assigned:
                reasons[self._position[i] - 1] = WaitReason.NEXT
            ids = self._ids[: len(order)]
            columns = zip(ids, range(1, len(order) + 1), reasons, repeat(self), at, printers)
            built = dict(zip(ids, map(_new_tuple, repeat(Explanation), columns)))
            for job_id in self._ids[len(order) :]:
                built[job_id] = self._not_queued(*self._others[job_id])
            self._built = built
        return self._built

    def values(self) -> ValuesView[Explanation]:
        return self._all().values()

    def items(self) -> ItemsView[int, Explanation]:
        return self._all().items()

    def _message_of(self, explanation: Explanation) -> str:
        """The message of a queued job's explanation, worded once."""
        message = self._messages.get(explanation.job_id)
        if message is None:
            message = self._messages[explanation.job_id] = self._wording(explanation)
        return message

    def _wording(self, explanation: Explanation) -> str:
        run = self._run
        fleet = run.fleet
        i = self._index[explanation.job_id]
        reason = explanation.reason
        start = explanation.estimated_start
        job = run.queued[i]
        printer_indexes, compatible, free = self._printers(run.compat[i])
        head = f"{_ordinal(self._position[i])} in line"
        if reason is WaitReason.NEXT:
            return f"{head}; starting now on {fleet.printers[run.assigned[i]].id}."
        if not compatible:
            return f"{head}; {self._incompatible(job)[1]}."
        if reason is WaitReason.PRINTERS_UNAVAILABLE:
            return (
                f"{head}; {_count(len(compatible), 'printer')} could print it ({self._needs(job)}), "
                f"but {'it is' if len(compatible) == 1 else 'none is'} working now "
                f"({_states(fleet, printer_indexes)}); no estimate until one is back."
            )
        if reason is WaitReason.FAIR_SHARE:
            return (
                f"{head}; {'the compatible printer' if free == 1 else f'the {free} compatible printers'} "
                f"free now {'goes' if free == 1 else 'go'} to jobs ahead in line "
                f"(members who printed less recently go first); {_expected(start, run.now)}."
            )
        return (
            f"{head}; waiting for a free printer {self._needs(job)}: "
            f"{self._busy(run.compat[i])}; {_expected(start, run.now)}."
        )

    def _needs(self, job: JobInfo) -> str:
        bounds = job.bounds
        key = (None if bounds is None else _SIDES(bounds), job.nozzle_diameter, job.material)
        known = self._needs_of.get(key)
        if known is None:
            known = self._needs_of[key] = _needs(job)
        return known

    def _busy(self, compat: int) -> str:
        known = self._busy_of.get(compat)
        if known is None:
            run = self._run
            known = self._busy_of[compat] = _busy(run.fleet, self._printers(compat)[0], run.available)
        return known

    def _incompatible(self, job: JobInfo) -> tuple[WaitReason, str]:
        bounds = job.bounds
        key = (None if bounds is None else _SIDES(bounds), job.nozzle_diameter, job.material, job.member_id)
        known = self._why_not.get(key)
        if known is None:
            known = self._why_not[key] = _incompatible(job, self._run.fleet)
        return known

    def _printers(self, compat: int) -> tuple[list[int], tuple[str, ...], int]:
        """The printers a compat fits, their ids, and how many are idle; once per compat."""
        known = self._by_compat.get(compat)
        if known is None:
            fleet = self._run.fleet
            indexes = fleet.printers_of(compat)
            ids = tuple(fleet.printers[p].id for p in indexes)
            free = sum(1 for p in indexes if fleet.printers[p].state in DISPATCHABLE)
            known = self._by_compat[compat] = (indexes, ids, free)
        return known

    def _not_queued(self, job: JobInfo, compat: int) -> Explanation:
        compatible = self._printers(compat)[1]
        if job.state is JobState.SUBMITTED:
            reason = WaitReason.SUBMITTED
            message = "Received; it joins the queue once it has been checked."
        else:
            reason = WaitReason.AWAITING_APPROVAL
            message = "Waiting for a manager to approve it."
        if not compatible:
            message += f" Note: {self._incompatible(job)[1]}."
        return Explanation(job.id, None, reason, message, None, compatible)


def _incompatible(job: JobInfo, fleet: _Fleet) -> tuple[WaitReason, str]:
    """Why no printer fits ``job``: the first requirement, in this order, that rules out every printer."""
    params = fleet.params
    candidates = [p for p in fleet.printers if _volume_fits(p.volume, job.bounds, params.bounds_tolerance)]
    if not candidates:
        return WaitReason.NO_COMPATIBLE_PRINTER, f"no printer in the fleet is big enough for {_size(job)}"
    nozzle = job.nozzle_diameter
    candidates = [p for p in candidates if _nozzle_fits(p.nozzle_diameter, nozzle, params.nozzle_tolerance)]
    if not candidates:
        where = "big enough for it" if job.bounds is not None else "in the fleet"
        return WaitReason.NO_COMPATIBLE_PRINTER, f"no printer {where} has a {nozzle:g} mm nozzle"
    granted = fleet.grants.get(job.member_id, frozenset())
    candidates = [p for p in candidates if not p.restricted or p.id in granted]
    if not candidates:
        return (
            WaitReason.NO_COMPATIBLE_PRINTER,
            "only restricted printers can print it, and you have not been granted any of them; "
            "ask a manager for access",
        )
    # Only the material is left: the one requirement a manager can meet by loading a spool.
    return (
        WaitReason.MATERIAL_NOT_LOADED,
        f"{_count(len(candidates), 'printer')} could print it, but none has {job.material} loaded; "
        f"it waits until a manager loads {job.material}",
    )


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _mm(value: float) -> str:
    return f"{round(value, 1):g}"


def _size(job: JobInfo) -> str:
    if job.bounds is None:
        return "it"
    return TIMES.join(_mm(v) for v in job.bounds.size) + " mm"


def _needs(job: JobInfo) -> str:
    """What the job asks of a printer: 'that fits 200x180x40 mm with PLA and a 0.4 mm nozzle'."""
    text = f"that fits {_size(job)}" if job.bounds is not None else "that can print it"
    extras = []
    if job.material is not None:
        extras.append(job.material)
    if job.nozzle_diameter is not None:
        extras.append(f"a {job.nozzle_diameter:g} mm nozzle")
    if extras:
        text += " with " + " and ".join(extras)
    return text


def _states(fleet: _Fleet, printer_indexes: list[int]) -> str:
    counts = Counter(fleet.printers[p].state.value.replace("_", " ") for p in printer_indexes)
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def _busy(fleet: _Fleet, printer_indexes: list[int], available: list[float | None]) -> str:
    """'2 compatible printers, both busy' or '3 compatible printers: 2 busy, 1 offline'."""
    total = len(printer_indexes)
    away = [p for p in printer_indexes if available[p] is None]
    head = _count(total, "compatible printer")
    if not away:
        return f"{head}, {'busy' if total == 1 else 'both busy' if total == 2 else 'all busy'}"
    return f"{head}: {total - len(away)} busy, {_states(fleet, away)}"


def _expected(start: float | None, now: float) -> str:
    if start is None:
        return "no estimate yet"
    wait = start - now
    if wait < 60:
        return "expected to start any moment"
    return f"expected to start in about {_duration(wait)}"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
