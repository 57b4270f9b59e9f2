"""Filament materials: densities for weight estimates, and how names like "PLA+" map onto a family."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Optional

#: g/cm³, typical datasheet values; used only when the file's header gives no density.
DENSITY_G_CM3: dict[str, float] = {
    "PLA": 1.24,
    "PETG": 1.27,
    "PET": 1.27,
    "ABS": 1.04,
    "ASA": 1.07,
    "TPU": 1.21,
    "FLEX": 1.21,
    "HIPS": 1.04,
    "PVA": 1.23,
    "PC": 1.20,
    "PA": 1.14,
    "NYLON": 1.14,
    "PP": 0.90,
}

#: When the material is unknown the weight is still estimated, as if it were PLA (the commonest).
DEFAULT_DENSITY_G_CM3 = 1.24
DEFAULT_FILAMENT_DIAMETER_MM = 1.75


def normalise(material: Optional[str]) -> Optional[str]:
    """Upper-case a material name and take the first of a multi-extruder list ("PLA;PETG" → "PLA")."""
    if material is None:
        return None
    for sep in ";,":
        material = material.split(sep, 1)[0]
    material = material.strip().strip('"').strip().upper()
    return material or None


def family(material: Optional[str], known: Iterable[str]) -> Optional[str]:
    """The entry of ``known`` that ``material`` belongs to: exact, else the longest prefix.

    "PETG-CF" belongs to "PETG", "PLA+" to "PLA".
    """
    name = normalise(material)
    if name is None:
        return None
    keys = sorted(known, key=len, reverse=True)
    if name in keys:
        return name
    for key in keys:
        if name.startswith(key):
            return key
    return None


def density(material: Optional[str]) -> float:
    key = family(material, DENSITY_G_CM3)
    return DENSITY_G_CM3[key] if key is not None else DEFAULT_DENSITY_G_CM3


def weight_g(length_mm: float, diameter_mm: float, density_g_cm3: float) -> float:
    """Weight of ``length_mm`` of filament: cross-section times length times density."""
    radius = diameter_mm / 2.0
    volume_cm3 = math.pi * radius * radius * length_mm / 1000.0  # "**" would raise on an absurd diameter
    return volume_cm3 * density_g_cm3
