"""Spools of filament: what one is, the checks of what people say about one, and what a job takes from it.

Pure (no I/O): the store keeps spools, the services decide who may load one where, and these rules say
what is a valid spool and how many grams a job used. Grams are floats (the analysis gives them to the
hundredth); a spool's own price is exact, in integer minor units of the lab's currency per kilogram.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Optional

from .errors import Invalid
from .gcode.materials import DENSITY_G_CM3, family, normalise
from .models import Job, LiveStatus
from .states import JobState

#: The material families the lab knows; a spool's material is one of them or a variant ("PLA+", "PETG-CF").
KNOWN_MATERIALS: tuple[str, ...] = tuple(sorted(DENSITY_G_CM3))
#: A spool weighs no more than this (a 10 kg spool is already a large one).
MAX_GRAMS = 100_000.0
#: A price per kilogram above this (in minor units: 1,000,000.00) is a typing mistake.
MAX_PRICE_PER_KG = 100_000_000
DIAMETERS_MM = (1.75, 2.85, 3.0)
#: A job that leaves its spool with less than this (it had at least this before) makes the spool
#: "run low": the managers who chose to hear of it are told (notification ``spool_low``).
LOW_GRAMS = 100.0

_COLOUR_NAME_RE = re.compile(r"^[^\W_][\w \-]{0,31}$")
_HEX_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
_TEXT_RE = re.compile(r"^[^\x00-\x1f\x7f]{0,80}$")


@dataclass(frozen=True)
class Spool:
    id: int
    #: Upper-case, such as PLA or PETG-CF; always of a known family.
    material: str
    #: What people call the colour ("black", "galaxy blue"); compared without case.
    colour_name: str
    #: The colour as ``#rrggbb`` (lower case), for the dashboard's swatch.
    colour_hex: str
    diameter_mm: float
    vendor: str
    #: Filament on a full spool, grams (without the spool itself).
    net_grams: float
    #: Filament left, grams: never negative, never more than ``net_grams``.
    remaining_grams: float
    #: Price of a kilogram of this filament, in minor units of the lab's currency (cents), exact.
    price_per_kg: int
    #: The printer it is loaded on; None when it is on a shelf.
    printer_id: Optional[str]
    #: Where it is stored when not loaded, such as "shelf B2" (free text).
    shelf: str
    created_at: float
    updated_at: float

    @property
    def label(self) -> str:
        """'black PETG' as a member reads it."""
        return f"{self.colour_name} {self.material}"


def check_spool_material(value: Any, field: str = "material") -> str:
    """A known material, upper-case ("pla+" → "PLA+"); an unknown one is refused, naming the known ones."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{field} is required: a material such as PLA or PETG", field=field)
    name = normalise(value)
    if name is None or len(name) > 32 or family(name, KNOWN_MATERIALS) is None:
        raise Invalid(
            f"unknown material {value.strip()[:32]!r}: a spool is one of {', '.join(KNOWN_MATERIALS)} "
            "(or a variant of one, such as PLA+ or PETG-CF)",
            field=field,
            key="unknown_material",
        )
    return name


def check_colour_name(value: Any, field: str = "colour_name") -> str:
    if not isinstance(value, str) or not _COLOUR_NAME_RE.match(value.strip()):
        raise Invalid(
            f"{field} must be a colour's name such as black or galaxy blue (letters, digits, spaces, "
            "'-'; up to 32)",
            field=field,
            key="colour_name",
        )
    return value.strip()


def check_colour_hex(value: Any, field: str = "colour_hex") -> str:
    if not isinstance(value, str) or not _HEX_RE.match(value.strip()):
        raise Invalid(f"{field} must be a colour as #rrggbb, such as #1a1a1a", field=field, key="colour_hex")
    return value.strip().lower()


def check_grams(value: Any, field: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= MAX_GRAMS
    ):
        raise Invalid(f"{field} must be a number of grams from 0 to {MAX_GRAMS:g}", field=field, key="grams")
    return float(value)


def check_price_per_kg(value: Any, field: str = "price_per_kg") -> int:
    """An exact price: an integer number of minor units (cents); a float is refused, not rounded."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRICE_PER_KG:
        raise Invalid(
            f"{field} must be a whole number of minor units (cents) from 0 to {MAX_PRICE_PER_KG}, "
            "such as 2490 for 24.90 a kilogram",
            field=field,
            key="price_per_kg",
        )
    return value


def check_diameter(value: Any, field: str = "diameter_mm") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) not in DIAMETERS_MM:
        raise Invalid(f"{field} must be one of {', '.join(f'{d:g}' for d in DIAMETERS_MM)} (mm)", field=field)
    return float(value)


def check_text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or not _TEXT_RE.match(value.strip()):
        raise Invalid(f"{field} must be text of at most 80 characters", field=field)
    return value.strip()


def check_remaining(remaining: float, net: float) -> float:
    if remaining > net:
        raise Invalid(
            f"remaining_grams ({remaining:g}) cannot be more than net_grams ({net:g})",
            field="remaining_grams",
        )
    return remaining


def printed_share(progress: Optional[float]) -> Optional[float]:
    """A printer's reported progress (0-100) as the share of the job printed (0-1); None if unknown."""
    if progress is None or not math.isfinite(progress):
        return None
    return min(1.0, max(0.0, progress / 100.0))


def printed_so_far(job: Job, live: Optional[LiveStatus], now: float) -> Optional[float]:
    """The share of a job printed (0-1): the progress its printer last reported for it, else the time
    it has printed over its estimate; 0 for a job that never started; None when nobody can tell."""
    if live is not None and live.job_id == job.id and live.progress is not None:
        return printed_share(live.progress)
    if job.started_at is None:
        return 0.0
    estimate = job.analysis.get("estimated_time_s") or job.analysis.get("own_time_estimate_s")
    if isinstance(estimate, (int, float)) and estimate > 0:
        return min(1.0, max(0.0, (now - job.started_at) / float(estimate)))
    return None


def used_grams(weight_g: Optional[float], outcome: JobState, share: Optional[float]) -> float:
    """Grams a job took from its spool: all of the analysis's weight when done, the share printed
    so far when it failed or was cancelled (nothing when nobody knows how far it got)."""
    if weight_g is None or not math.isfinite(weight_g) or weight_g <= 0:
        return 0.0
    if outcome is JobState.DONE:
        return weight_g
    if share is None or not math.isfinite(share):
        return 0.0
    return weight_g * min(1.0, max(0.0, share))


def after_use(remaining: float, used: float) -> float:
    """What is left on a spool after ``used`` grams: never negative, never more than before."""
    if not math.isfinite(used) or used <= 0:
        return remaining
    # Kept to the hundredth, as the analysis gives grams; rounding never gives a spool grams back.
    return max(0.0, min(remaining, round(remaining - used, 2)))


def runs_low(before: float, after: float) -> bool:
    """Whether a use took a spool from at least :data:`LOW_GRAMS` to below it."""
    return after < LOW_GRAMS <= before


def colour_words(material: Optional[str], colour: Optional[str]) -> str:
    """'black PETG', 'PETG', 'black filament'."""
    if colour and material:
        return f"{colour} {material}"
    return material or (f"{colour} filament" if colour else "filament")
