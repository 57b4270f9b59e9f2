"""The sentences of the explanations: what a member reads about why their job waits.

Plain functions of plain values, kept apart from the pass so the wording can change without touching
the rules. Each is called once per distinct case (the explanations cache them), not once per job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from ..lending import clock_words, opening_words
from ..spools import colour_words
from .matching import (
    Fleet,
    bed_fits,
    chamber_fits,
    colour_fits,
    fold,
    heat_fits,
    material_fits,
    nozzle_fits,
    tools_fit,
    volume_fits,
)
from .model import JobInfo, PrinterInfo, WaitReason

TIMES = "\u00d7"


def incompatible(job: JobInfo, fleet: Fleet) -> tuple[WaitReason, str]:
    """Why no printer fits ``job``: the first requirement, in this order, that rules out every printer."""
    params = fleet.params
    if not fleet.printers:
        return WaitReason.NO_PRINTER_YET, "no printer has joined the fleet yet"
    boxed = [p for p in fleet.printers if volume_fits(p.volume, job.bounds, params.bounds_tolerance)]
    candidates = [p for p in boxed if bed_fits(p, job.bounds, params.bounds_tolerance)]
    if not candidates:
        if boxed:
            return (
                WaitReason.NO_COMPATIBLE_PRINTER,
                f"no printer in the fleet is big enough for {size(job)}: "
                f"{count(len(boxed), 'printer')} with a round bed "
                f"{'has' if len(boxed) == 1 else 'have'} the height and the width, "
                "but the print's corners stick out of the round bed",
            )
        return WaitReason.NO_COMPATIBLE_PRINTER, f"no printer in the fleet is big enough for {size(job)}"
    nozzle = job.nozzle_diameter
    candidates = [p for p in candidates if nozzle_fits(p.nozzle_diameter, nozzle, params.nozzle_tolerance)]
    if not candidates:
        where = "big enough for it" if job.bounds is not None else "in the fleet"
        return WaitReason.NO_COMPATIBLE_PRINTER, f"no printer {where} has a {nozzle:g} mm nozzle"
    if job.heats_bed:
        candidates = [p for p in candidates if heat_fits(p.heated_bed, True)]
        if not candidates:
            return (
                WaitReason.NO_COMPATIBLE_PRINTER,
                "it heats the bed, and no printer that could otherwise print it has a heated bed",
            )
    if job.heats_chamber:
        candidates = [p for p in candidates if chamber_fits(p.heated_chamber, True)]
        if not candidates:
            return (
                WaitReason.NO_COMPATIBLE_PRINTER,
                "it heats the chamber (M141/M191), and no printer that could otherwise print it has "
                "a heated chamber",
            )
    candidates = [p for p in candidates if tools_fit(p.extruders, job.tools)]
    if not candidates:
        return (
            WaitReason.NO_COMPATIBLE_PRINTER,
            f"it uses {job.tools} tools, and no printer that could otherwise print it has "
            f"{job.tools} extruders",
        )
    granted = fleet.grants.get(job.member_id, frozenset())
    candidates = [p for p in candidates if not p.restricted or p.id in granted]
    if not candidates:
        return (
            WaitReason.NO_COMPATIBLE_PRINTER,
            "only restricted printers can print it, and you have not been granted any of them; "
            "ask a manager for access",
        )
    refusing = [p for p in candidates if p.lending is not None and not p.lending.takes(job.material)]
    if refusing and len(refusing) == len(candidates):
        first = refusing[0]
        assert first.lending is not None and first.lending.materials is not None
        return (
            WaitReason.NO_COMPATIBLE_PRINTER,
            f"the printers that could print it are home printers whose owners do not lend them for "
            f"{job.material} ({first.id} takes {', '.join(sorted(first.lending.materials))})",
        )
    candidates = [p for p in candidates if p not in refusing]
    # Only what is loaded is left: the requirements a manager meets by loading a spool.
    return loaded(job, candidates)


def loaded(job: JobInfo, candidates: list[PrinterInfo], *, idle: bool = False) -> tuple[WaitReason, str]:
    """Why none of ``candidates`` (printers that could otherwise print ``job``) takes it: its material,
    its colour, or too little left on their spools. With ``idle``, worded for idle printers only (a
    note beside a job waiting for a busy printer that has what it needs)."""
    if idle:
        return _idle_loaded(job, candidates)
    material = fold(job.material)
    with_material = [p for p in candidates if material_fits(fold(p.material), material)]
    if not with_material:
        if job.colour is not None:
            return (
                WaitReason.MATERIAL_NOT_LOADED,
                f"{count(len(candidates), 'printer')} could print it, but none has "
                f"{colour_words(job.material, job.colour)} loaded; it waits until a manager loads it",
            )
        return (
            WaitReason.MATERIAL_NOT_LOADED,
            f"{count(len(candidates), 'printer')} could print it, but none has {job.material} loaded; "
            f"it waits until a manager loads {job.material}",
        )
    colour = fold(job.colour)
    with_colour = [p for p in with_material if colour_fits(fold(p.colour), colour)]
    wanted = colour_words(job.material, job.colour)
    if not with_colour:
        others = sorted({p.colour for p in with_material if p.colour is not None}, key=str.casefold)
        shown = f" ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''})" if others else ""
        return (
            WaitReason.MATERIAL_NOT_LOADED,
            f"no printer has {wanted} loaded; {count(len(with_material), 'printer')} "
            f"{'has' if len(with_material) == 1 else 'have'} {job.material or 'filament'} in other "
            f"colours{shown}; it waits until one is loaded with {wanted}",
        )
    fullest = max((p.spool_grams for p in with_colour if p.spool_grams is not None), default=0.0)
    return (
        WaitReason.LOW_SPOOL,
        f"{count(len(with_colour), 'printer')} {'has' if len(with_colour) == 1 else 'have'} {wanted} "
        f"loaded, but no spool holds the {grams(job.grams)} it needs (the fullest has "
        f"{grams(fullest)} left); it waits for a printer whose spool holds enough",
    )


def _idle_loaded(job: JobInfo, idle: list[PrinterInfo]) -> tuple[WaitReason, str]:
    """'no idle printer has black PETG loaded; 2 have PETG in other colours'."""
    wanted = colour_words(job.material, job.colour)
    material = fold(job.material)
    with_material = [p for p in idle if material_fits(fold(p.material), material)]
    with_colour = [p for p in with_material if colour_fits(fold(p.colour), fold(job.colour))]
    if with_colour:
        return (
            WaitReason.LOW_SPOOL,
            f"{count(len(with_colour), 'idle printer')} {'has' if len(with_colour) == 1 else 'have'} "
            f"{wanted} loaded, but too little of it for the {grams(job.grams)} it needs",
        )
    head = f"no idle printer has {wanted} loaded"
    if with_material and job.colour is not None:
        return (
            WaitReason.MATERIAL_NOT_LOADED,
            f"{head}; {count(len(with_material), 'idle printer')} "
            f"{'has' if len(with_material) == 1 else 'have'} {job.material or 'filament'} in other colours",
        )
    return WaitReason.MATERIAL_NOT_LOADED, head


def grams(value: float) -> str:
    return f"{round(value):d} g" if value >= 10 else f"{round(value, 1):g} g"


def lent(printer: PrinterInfo, opens: float | None) -> str:
    """'home printer X is lent weeknights 20:00-08:00 (Europe/Paris); next window opens Monday 20:00'."""
    lending = printer.lending
    assert lending is not None
    if opens is None:
        return f"home printer {printer.id} has no lending window set by its owner"
    return (
        f"home printer {printer.id} is lent {lending.describe()} ({lending.time_zone}); "
        f"next window opens {opening_words(lending, opens)}"
    )


def runs_past(printer: PrinterInfo, ends: float, seconds: float) -> str:
    """Why a lent printer free now does not take a job: it would still print when the window ends."""
    lending = printer.lending
    assert lending is not None
    closes = clock_words(lending, ends)
    return (
        f"home printer {printer.id} is free, but this print (about {duration(seconds)}) would run past the "
        f"end of the lending window at {closes} ({lending.time_zone}); it waits for a printer free for that "
        "long, or for a longer window"
    )


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def mm(value: float) -> str:
    return f"{round(value, 1):g}"


def size(job: JobInfo) -> str:
    if job.bounds is None:
        return "it"
    return TIMES.join(mm(v) for v in job.bounds.print_size) + " mm"


def needs(job: JobInfo) -> str:
    """What the job asks of a printer: 'that fits 200x180x40 mm with PLA and a 0.4 mm nozzle'."""
    text = f"that fits {size(job)}" if job.bounds is not None else "that can print it"
    extras = []
    if job.material is not None or job.colour is not None:
        extras.append(colour_words(job.material, job.colour))
    if job.nozzle_diameter is not None:
        extras.append(f"a {job.nozzle_diameter:g} mm nozzle")
    if job.heats_bed:
        extras.append("a heated bed")
    if job.heats_chamber:
        extras.append("a heated chamber")
    if job.tools > 1:
        extras.append(f"{job.tools} extruders")
    if extras:
        text += " with " + " and ".join(extras)
    return text


def states(fleet: Fleet, printer_indexes: list[int]) -> str:
    counts = Counter(fleet.printers[p].state.value.replace("_", " ") for p in printer_indexes)
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def busy(
    fleet: Fleet,
    printer_indexes: list[int],
    available: list[float | None],
    closed: Mapping[int, float | None] | None = None,
) -> str:
    """'2 compatible printers, both busy' or '3 compatible printers: 2 busy, 1 offline'."""
    total = len(printer_indexes)
    away = [p for p in printer_indexes if available[p] is None]
    head = count(total, "compatible printer")
    lent = [p for p in printer_indexes if closed and p in closed and available[p] is not None]
    if lent:
        parts = [f"{total - len(away) - len(lent)} busy"] if total > len(away) + len(lent) else []
        parts.append(f"{len(lent)} outside {'its' if len(lent) == 1 else 'their'} owner's lending hours")
        if away:
            parts.append(states(fleet, away))
        return f"{head}: {', '.join(parts)}"
    if not away:
        return f"{head}, {'busy' if total == 1 else 'both busy' if total == 2 else 'all busy'}"
    return f"{head}: {total - len(away)} busy, {states(fleet, away)}"


def expected(start: float | None, now: float) -> str:
    if start is None:
        return "no estimate yet"
    wait = start - now
    if wait < 60:
        return "expected to start any moment"
    return f"expected to start in about {duration(wait)}"


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@dataclass(frozen=True)
class Misfit:
    """Why a printer's profile cannot take a job: a stable ``key`` with its ``params`` (what the OctoPrint
    plugin words in its user's language), and the English ``text`` made of the same."""

    key: str
    params: Mapping[str, str | int]
    text: str


def not_for(job: JobInfo, printer: PrinterInfo, tolerance: float = 0.0) -> Misfit | None:
    """Why this one printer's profile cannot take ``job`` (size, bed shape, heated bed or chamber,
    extruders).

    None when its profile could: what a manager can change (material, grants) is not the profile's.
    Worded for the printer's owner, so it names only the job's needs, never its member or file.
    """
    bounds = job.bounds
    if bounds is not None and not volume_fits(printer.volume, bounds, tolerance):
        have = TIMES.join(mm(v) for v in printer.volume.size) + " mm"
        needed = size(job)
        return Misfit(
            "too_small", {"needed": needed, "have": have}, f"{needed} needed, this profile gives {have}"
        )
    if bounds is not None and not bed_fits(printer, bounds, tolerance):
        needed = size(job)
        return Misfit(
            "round_bed",
            {"needed": needed},
            f"{needed} needed: its corners stick out of this profile's round bed",
        )
    if not heat_fits(printer.heated_bed, job.heats_bed):
        return Misfit("no_heated_bed", {}, "it heats the bed, and this profile has no heated bed")
    if not chamber_fits(printer.heated_chamber, job.heats_chamber):
        return Misfit("no_heated_chamber", {}, "it heats the chamber, and this profile has no heated chamber")
    if not tools_fit(printer.extruders, job.tools):
        extruders = printer.extruders or 0
        return Misfit(
            "too_few_extruders",
            {"tools": job.tools, "extruders": extruders},
            f"it uses {job.tools} tools, and this profile has {count(extruders, 'extruder')}",
        )
    return None
