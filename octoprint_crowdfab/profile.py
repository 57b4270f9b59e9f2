"""What the printer can do, read from OctoPrint's printer profile (a plain dict from its profile manager).

Every OctoPrint has a profile (width, depth, height, origin, round or rectangular bed, nozzle, heated bed
and chamber, extruders), so a fresh install needs no capability settings of its own: the plugin's
``volume`` and ``nozzle_diameter`` settings only override what the profile says.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Optional

from fleet.geometry import Box
from fleet.protocol import BedShape, Capabilities

log = logging.getLogger(__name__)


def _positive(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def profile_volume(volume: Any) -> Optional[Box]:
    """The build volume in G-code coordinates: from the front-left corner, around the centre, or the
    profile's custom bounding box when it has one; None when the profile gives no usable size."""
    if not isinstance(volume, dict):
        return None
    custom = volume.get("custom_box")
    if isinstance(custom, dict):
        keys = ("x_min", "y_min", "z_min", "x_max", "y_max", "z_max")
        values = [custom.get(key) for key in keys]
        numbers = [float(v) for v in values if not isinstance(v, bool) and isinstance(v, (int, float))]
        if len(numbers) == len(keys) and all(math.isfinite(n) for n in numbers):
            box = Box(*numbers)
            if min(box.size) > 0:
                return box
    width, depth, height = (_positive(volume.get(key)) for key in ("width", "depth", "height"))
    if width is None or depth is None or height is None:
        return None
    if volume.get("origin") == "center":
        return Box(-width / 2, -depth / 2, 0.0, width / 2, depth / 2, height)
    return Box.of_size(width, depth, height)


def capabilities_from_profile(
    profile: Any,
    *,
    material: Optional[str] = None,
    volume_override: Optional[Box] = None,
    nozzle_override: Optional[float] = None,
) -> Capabilities:
    """The printer's capabilities from an OctoPrint printer profile, with the plugin's overrides applied."""
    profile = profile if isinstance(profile, dict) else {}
    volume = profile.get("volume") if isinstance(profile.get("volume"), dict) else {}
    extruder = profile.get("extruder") if isinstance(profile.get("extruder"), dict) else {}
    shape = volume.get("formFactor")
    shapes = {s.value for s in BedShape}
    count = extruder.get("count")
    heated_bed = profile.get("heatedBed")
    heated_chamber = profile.get("heatedChamber")
    return Capabilities(
        volume=volume_override or profile_volume(volume),
        nozzle_diameter=nozzle_override or _positive(extruder.get("nozzleDiameter")),
        material=material,
        bed_shape=BedShape(shape) if shape in shapes else None,
        heated_bed=heated_bed if isinstance(heated_bed, bool) else None,
        heated_chamber=heated_chamber if isinstance(heated_chamber, bool) else None,
        extruders=count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else None,
    )
