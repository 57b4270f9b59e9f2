"""Axis-aligned boxes: a printer's build volume and the space a print occupies."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from .errors import Invalid


@dataclass(frozen=True)
class Box:
    min_x: float
    min_y: float
    min_z: float
    max_x: float
    max_y: float
    max_z: float

    @classmethod
    def of_size(cls, x: float, y: float, z: float) -> Box:
        """A build volume from the origin: what most printers' ``bed_shape`` describes."""
        return cls(0.0, 0.0, 0.0, float(x), float(y), float(z))

    def contains(self, other: Box, tolerance: float = 0.0) -> bool:
        """True when ``other`` lies inside this box (with ``tolerance`` mm of slack on every side)."""
        return (
            other.min_x >= self.min_x - tolerance
            and other.min_y >= self.min_y - tolerance
            and other.min_z >= self.min_z - tolerance
            and other.max_x <= self.max_x + tolerance
            and other.max_y <= self.max_y + tolerance
            and other.max_z <= self.max_z + tolerance
        )

    @property
    def size(self) -> tuple[float, float, float]:
        return (self.max_x - self.min_x, self.max_y - self.min_y, self.max_z - self.min_z)

    @property
    def print_size(self) -> tuple[float, float, float]:
        """The size of a print whose moves this box holds: width, depth, and height from the bed up.

        A print stands on the bed (z = 0): its lowest move is at the first layer's Z, the top of a
        layer the nozzle lays below it, so the part is as tall as its highest move's Z (a single-layer
        part as tall as its one layer, never 0 mm). A box reaching below the bed counts from its bottom.
        """
        return (self.max_x - self.min_x, self.max_y - self.min_y, self.max_z - min(self.min_z, 0.0))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, field: str = "box") -> Box:
        """Parse a box from JSON, naming ``field`` in the error when it is malformed."""
        keys = ("min_x", "min_y", "min_z", "max_x", "max_y", "max_z")
        if not isinstance(data, dict):
            raise Invalid(f"{field} must be an object with {', '.join(keys)}", field=field)
        values = []
        for key in keys:
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise Invalid(f"{field}.{key} must be a number", field=f"{field}.{key}")
            try:
                number = float(value)
            except OverflowError:  # an integer beyond any float
                number = math.inf
            if not math.isfinite(number):
                raise Invalid(f"{field}.{key} must be a finite number", field=f"{field}.{key}")
            values.append(number)
        box = cls(*values)
        if box.min_x > box.max_x or box.min_y > box.max_y or box.min_z > box.max_z:
            raise Invalid(f"{field}: each min must not exceed its max", field=field)
        return box
