"""Which printers could ever print which jobs: capability classes and the fit rules.

Printers are grouped into capability classes (volume and bed shape, nozzle, loaded material and
colour, heated bed and chamber, extruders, who may use them) and jobs
by their requirements, so compatibility is worked out once per (requirement, class), not per pair:
a pass over 20,000 jobs and 500 printers looks at a few hundred distinct requirements.

The grams left on a spool differ from printer to printer, so only an idle printer's make part of its
class (the printers dispatch hands out now; a few dozen in a large fleet): a job goes to no idle
printer whose spool holds less than it takes. A busy printer's spool will run down and may be
changed before it is free, so its grams make no class (500 printers would make 500 classes); a job no
spool of its printers holds enough for waits for a spool change (see :meth:`Fleet.most_grams`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from itertools import repeat
from operator import and_, attrgetter, mul, or_
from typing import TypeVar

from ..errors import Invalid
from ..geometry import Box
from ..states import DISPATCHABLE
from .model import (
    BOUNDS,
    COLOUR,
    DEFAULTS,
    GRAMS,
    HEATS_BED,
    HEATS_CHAMBER,
    MATERIAL,
    MEMBER,
    NOZZLE,
    TOOLS,
    JobInfo,
    PrinterInfo,
    SchedulerParams,
)

_SIDE_GETTERS = [attrgetter(side) for side in ("min_x", "min_y", "min_z", "max_x", "max_y", "max_z")]
#: Stands for "no bounds" (fits anywhere): every side of Box.contains holds for it.
_ANYWHERE = Box(math.inf, math.inf, math.inf, -math.inf, -math.inf, -math.inf)


def volume_fits(volume: Box, bounds: Box | None, tolerance: float) -> bool:
    return bounds is None or volume.contains(bounds, tolerance)


def circle_fits(volume: Box, bounds: Box, tolerance: float) -> bool:
    """Does the footprint of ``bounds`` lie in the circle inscribed in ``volume``'s box, centred?"""
    cx = (volume.min_x + volume.max_x) / 2
    cy = (volume.min_y + volume.max_y) / 2
    radius = min(volume.max_x - volume.min_x, volume.max_y - volume.min_y) / 2 + tolerance
    dx = max(abs(bounds.min_x - cx), abs(bounds.max_x - cx))
    dy = max(abs(bounds.min_y - cy), abs(bounds.max_y - cy))
    return dx * dx + dy * dy <= radius * radius


def bed_fits(printer: PrinterInfo, bounds: Box | None, tolerance: float) -> bool:
    """The print fits the volume, and on a round bed its footprint fits the circle."""
    return volume_fits(printer.volume, bounds, tolerance) and (
        bounds is None or not printer.round_bed or circle_fits(printer.volume, bounds, tolerance)
    )


def heat_fits(heated_bed: bool | None, heats_bed: bool) -> bool:
    """A job that heats the bed goes to no printer that says its bed is not heated."""
    return not heats_bed or heated_bed is not False


def chamber_fits(heated_chamber: bool | None, heats_chamber: bool) -> bool:
    """A job that heats the chamber goes only to a printer that says it has a heated chamber."""
    return not heats_chamber or heated_chamber is True


#: A job's heating needs as one small int, for the class masks: its bed, its chamber.
BED, CHAMBER = 1, 2


def tools_fit(extruders: int | None, tools: int) -> bool:
    """A job goes to no printer with fewer tools than it uses (an unreported count takes any job)."""
    return extruders is None or tools <= extruders


def nozzle_fits(printer_nozzle: float, job_nozzle: float | None, tolerance: float) -> bool:
    return job_nozzle is None or abs(printer_nozzle - job_nozzle) <= tolerance


def lending_takes(accepts: frozenset[str] | None, job_material: str | None) -> bool:
    """The owner of a lent printer names the materials it takes (folded); None takes any."""
    return accepts is None or job_material is None or job_material in accepts


def material_fits(printer_material: str | None, job_material: str | None) -> bool:
    """Compare casefolded names; an unknown loaded material matches no job that names one."""
    return job_material is None or (printer_material is not None and printer_material == job_material)


def colour_fits(printer_colour: str | None, job_colour: str | None) -> bool:
    """Compare casefolded names; a printer whose spool's colour is unknown matches no job that names one."""
    return job_colour is None or (printer_colour is not None and printer_colour == job_colour)


def grams_fit(spool_grams: float | None, need: float) -> bool:
    """A tracked spool must hold what the job takes; an untracked printer (None) takes any job."""
    return spool_grams is None or need <= spool_grams


def fold(material: str | None) -> str | None:
    return None if material is None else material.casefold()


def fits(
    job: JobInfo,
    printer: PrinterInfo,
    grants: Mapping[int, frozenset[str]],
    params: SchedulerParams = DEFAULTS,
) -> bool:
    """True when ``printer`` could print ``job`` (whatever the printer is doing now)."""
    return (
        bed_fits(printer, job.bounds, params.bounds_tolerance)
        and nozzle_fits(printer.nozzle_diameter, job.nozzle_diameter, params.nozzle_tolerance)
        and material_fits(fold(printer.material), fold(job.material))
        and colour_fits(fold(printer.colour), fold(job.colour))
        and grams_fit(printer.spool_grams, job.grams)
        and lending_takes(_accepts(printer), fold(job.material))
        and heat_fits(printer.heated_bed, job.heats_bed)
        and chamber_fits(printer.heated_chamber, job.heats_chamber)
        and tools_fit(printer.extruders, job.tools)
        and (not printer.restricted or printer.id in grants.get(job.member_id, ()))
    )


class Fleet:
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
        #: Volumes of round beds (a box may be both: a round and a square bed of the same size).
        self.round_volumes: list[int] = []
        self.class_volume: list[int] = []
        self.class_nozzle: list[float] = []
        self.class_material: list[str | None] = []
        self.class_members: list[frozenset[int] | None] = []
        #: Per class: whether its beds are known cold and its chambers known heated, and its extruders
        #: (None: not reported).
        self.class_heated: list[tuple[bool, bool]] = []
        self.class_extruders: list[int | None] = []
        #: Per class: the folded materials a lent printer's owner takes (None: any).
        self.class_accepts: list[frozenset[str] | None] = []
        #: Per class: the loaded spools' folded colour, and an idle printer's grams left (None: any).
        self.class_colour: list[str | None] = []
        self.class_grams: list[float | None] = []
        self.class_printers: list[list[int]] = []
        #: Per printer: grams left on its spool (None: not tracked, takes any job).
        self.spool_grams = [p.spool_grams for p in self.printers]
        #: Does any printer track its spool? If not, grams are never looked at.
        self.tracked = any(g is not None for g in self.spool_grams)
        volume_ids: dict[tuple[Box, bool], int] = {}
        class_ids: dict[tuple[object, ...], int] = {}
        for index, p in enumerate(self.printers):
            volume = volume_ids.setdefault((p.volume, p.round_bed), len(volume_ids))
            if volume == len(self.volumes):
                self.volumes.append(p.volume)
                if p.round_bed:
                    self.round_volumes.append(volume)
            members = frozenset(allowed[p.id]) if p.restricted else None
            material = fold(p.material)
            heat = (p.heated_bed is False, p.heated_chamber is True)
            accepts = _accepts(p)
            colour = fold(p.colour)
            grams = p.spool_grams if p.state in DISPATCHABLE else None
            key = (volume, p.nozzle_diameter, material, members, heat, p.extruders, accepts, colour, grams)
            cls = class_ids.setdefault(key, len(class_ids))
            if cls == len(self.class_printers):
                self.class_volume.append(volume)
                self.class_nozzle.append(p.nozzle_diameter)
                self.class_material.append(material)
                self.class_members.append(members)
                self.class_heated.append(heat)
                self.class_extruders.append(p.extruders)
                self.class_accepts.append(accepts)
                self.class_colour.append(colour)
                self.class_grams.append(grams)
                self.class_printers.append([])
            self.class_printers[cls].append(index)

        #: Compat id -> the classes it fits, in class order.
        self.compat_classes: list[tuple[int, ...]] = []
        self._compat_ids: dict[int, int] = {}
        #: (fit mask, nozzle, material, member if granted, heat needs, tools, colour, grams tier)
        #: -> compat.
        self._by_key: dict[_Requirement, int] = {}
        #: Per side (min x, y, z, then max x, y, z): sorted limits, and the volumes each bisection fits.
        self._sides = [self._lower_side(axis) for axis in range(3)] + [
            self._upper_side(axis) for axis in range(3)
        ]
        #: Bit masks of the classes each volume fit, nozzle, folded material and member may use.
        self._volume_classes: dict[int, int] = {}
        self._nozzle_classes: dict[float | None, int] = {}
        self._material_classes: dict[str | None, int] = {}
        self._member_classes: dict[int | None, int] = {}
        self._heat_classes: dict[int, int] = {}
        self._tool_classes: dict[int, int] = {}
        self._colour_classes: dict[str | None, int] = {}
        #: The distinct grams left on idle printers' spools, ascending: a job's need is put in a "tier"
        #: by bisection, and tier t fits the classes without grams and those at levels[t] and above.
        self._grams_levels = sorted({g for g in self.class_grams if g is not None})
        at_level = dict.fromkeys(self._grams_levels, 0)
        suffix = [sum(1 << c for c, g in enumerate(self.class_grams) if g is None)]
        for c, g in enumerate(self.class_grams):
            if g is not None:
                at_level[g] |= 1 << c
        for g in reversed(self._grams_levels):
            suffix.append(suffix[-1] | at_level[g])
        suffix.reverse()
        self._tier_classes = suffix
        #: Compat id -> the most grams left on a spool of its printers (inf when one is not tracked).
        self._most_grams: dict[int, float] = {}

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

    def compat_all(self, jobs: Sequence[JobInfo]) -> list[int]:
        """The compat id of each job.

        Hot, and written to allocate little: a pass over 20,000 jobs runs in C-level ``map`` calls over
        parallel lists, keys equal requirements by value (never by hashing a Box, which runs Python
        code), and works out each distinct requirement once.
        """
        granted = {m: m for m in self.granted_members}
        fits = self._fit_masks(list(map(BOUNDS, jobs)))
        nozzles = list(map(NOZZLE, jobs))
        materials = list(map(MATERIAL, jobs))
        granted_only: list[int | None] = list(map(granted.get, map(MEMBER, jobs)))
        # Bed and chamber as one int a job (see heat_needs), in C-level map() calls.
        heats = list(map(or_, map(HEATS_BED, jobs), map(mul, map(HEATS_CHAMBER, jobs), repeat(CHAMBER))))
        tools = list(map(TOOLS, jobs))
        colours = list(map(COLOUR, jobs))
        levels = self._grams_levels
        # Without idle spools every job is in tier 0 (repeat is endless, so both zips may read it).
        tiers: Iterable[int] = (
            list(map(bisect.bisect_left, repeat(levels), map(GRAMS, jobs))) if levels else repeat(0)
        )
        # zip twice rather than keep a tuple per job: zip reuses its tuple when nobody holds it, so
        # this allocates almost nothing for the garbage collector to walk.
        distinct: dict[_Requirement, int] = {}
        cache = self._by_key
        for key in dict.fromkeys(zip(fits, nozzles, materials, granted_only, heats, tools, colours, tiers)):
            compat = cache.get(key)
            if compat is None:
                compat = cache[key] = self._work_out(*key)
            distinct[key] = compat
        return list(
            map(
                distinct.__getitem__,
                zip(fits, nozzles, materials, granted_only, heats, tools, colours, tiers),
            )
        )

    def _fit_masks(self, boxes: list[Box | None]) -> list[int]:
        """The volumes each box fits, as bit masks: bisections over each side's limits, per distinct box.

        Column by column, in C-level map() calls, and without a tuple per box: a pass leaves nothing
        per job behind for the garbage collector to walk.
        """
        ids = list(map(id, boxes))
        by_id: dict[int, Box] = dict(zip(ids, boxes))  # type: ignore[arg-type]
        if id(None) in by_id:
            by_id[id(None)] = _ANYWHERE
        unique = list(by_id.values())
        masks: list[int] | None = None
        for axis, side in enumerate(_SIDE_GETTERS):
            thresholds, side_masks = self._sides[axis]
            search = bisect.bisect_right if axis < 3 else bisect.bisect_left
            column = map(side_masks.__getitem__, map(search, repeat(thresholds), map(side, unique)))
            masks = list(column) if masks is None else list(map(and_, masks, column))
        if self.round_volumes and masks is not None:
            masks = self._round_masks(unique, masks)
        of_id = dict(zip(by_id, masks or []))
        return list(map(of_id.__getitem__, ids))

    def _round_masks(self, boxes: list[Box], masks: list[int]) -> list[int]:
        """Clear the round volumes whose circle a box's footprint leaves (only fleets with round beds)."""
        tolerance = self.params.bounds_tolerance
        found = []
        for box, mask in zip(boxes, masks):
            if box is not _ANYWHERE:
                for v in self.round_volumes:
                    if mask >> v & 1 and not circle_fits(self.volumes[v], box, tolerance):
                        mask &= ~(1 << v)
            found.append(mask)
        return found

    def _work_out(
        self,
        fit: int,
        nozzle: float | None,
        material: str | None,
        member: int | None,
        heats: int,
        tools: int,
        colour: str | None,
        tier: int,
    ) -> int:
        """The compat of one requirement: the classes it fits, as a bit mask ANDed from one per field."""
        mask = _classes_where(self._volume_classes, fit, self.class_volume, lambda volume: fit >> volume & 1)
        tolerance = self.params.nozzle_tolerance
        mask &= _classes_where(
            self._nozzle_classes, nozzle, self.class_nozzle, lambda size: nozzle_fits(size, nozzle, tolerance)
        )
        folded = fold(material)
        mask &= _classes_where(
            self._material_classes,
            folded,
            zip(self.class_material, self.class_accepts),
            lambda pair: material_fits(pair[0], folded) and lending_takes(pair[1], folded),
        )
        mask &= _classes_where(
            self._member_classes, member, self.class_members, lambda members: _allowed(members, member)
        )
        mask &= _classes_where(
            self._heat_classes,
            heats,
            self.class_heated,
            lambda heat: (
                heat_fits(False if heat[0] else None, bool(heats & BED))
                and chamber_fits(heat[1], bool(heats & CHAMBER))
            ),
        )
        mask &= _classes_where(
            self._tool_classes, tools, self.class_extruders, lambda count: tools_fit(count, tools)
        )
        folded_colour = fold(colour)
        mask &= _classes_where(
            self._colour_classes,
            folded_colour,
            self.class_colour,
            lambda loaded: colour_fits(loaded, folded_colour),
        )
        mask &= self._tier_classes[tier]
        compat = self._compat_ids.get(mask)
        if compat is None:
            compat = self._compat_ids[mask] = len(self.compat_classes)
            self.compat_classes.append(_bits(mask))
        return compat

    def printers_of(self, compat: int) -> list[int]:
        """Indexes of the printers (sorted by id) that a compat fits."""
        return sorted(p for c in self.compat_classes[compat] for p in self.class_printers[c])

    def most_grams(self, compat: int) -> float:
        """The most grams left on a spool of a compat's printers: a job needing more waits for a spool
        change. Infinite when one of them does not track its spool (or none is tracked in the fleet)."""
        if not self.tracked:
            return math.inf
        most = self._most_grams.get(compat)
        if most is None:
            left = [self.spool_grams[p] for c in self.compat_classes[compat] for p in self.class_printers[c]]
            most = self._most_grams[compat] = max(
                (math.inf if g is None else g for g in left), default=-math.inf
            )
        return most


#: What a job asks of a printer, as classes match it: fit mask, nozzle, material, member if granted,
#: heats the bed, tools, colour and grams tier.
_Requirement = tuple[int, float | None, str | None, int | None, int, int, str | None, int]


def _bits(mask: int) -> tuple[int, ...]:
    """The set bits of ``mask``, lowest first."""
    found = []
    while mask:
        low = mask & -mask
        found.append(low.bit_length() - 1)
        mask ^= low
    return tuple(found)


def _accepts(printer: PrinterInfo) -> frozenset[str] | None:
    lending = printer.lending
    if lending is None or lending.materials is None:
        return None
    return frozenset(m.casefold() for m in lending.materials)


def _allowed(members: frozenset[int] | None, member: int | None) -> bool:
    """May ``member`` use a class whose printers are restricted to ``members`` (None: open to all)?"""
    return members is None or (member is not None and member in members)


_Key = TypeVar("_Key", bound=Hashable)
_Value = TypeVar("_Value")


def _classes_where(
    known: dict[_Key, int], key: _Key, column: Iterable[_Value], fits: Callable[[_Value], object]
) -> int:
    """The bit mask of the classes whose value in ``column`` fits ``key``, worked out once per key."""
    part = known.get(key)
    if part is None:
        part = known[key] = sum(1 << c for c, value in enumerate(column) if fits(value))
    return part
