"""Checks of the values people and printers send, each naming the field that is wrong.

Each lives here once: the API's request models (:mod:`fleet.api.shapes`) run them as validators,
and the dashboard's forms and the MQTT ingest call them where they build the same typed values.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from ..errors import Invalid
from ..geometry import Box
from ..protocol import PRINTER_ID_RE as PRINTER_ID_RE  # the MQTT contract's, where topics are built

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MATERIAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 +._-]{0,31}$")


def check_material(value: Any, field: str = "material") -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not MATERIAL_RE.match(value.strip()):
        raise Invalid(
            f"{field} must be a material name such as PLA, PETG or ABS (letters, digits, up to 32)",
            field=field,
            key="material_name",
        )
    return value.strip().upper()


def check_volume(value: Any) -> Box:
    if value is None:
        raise Invalid("volume is required: the build volume's min_x … max_z in mm", field="volume")
    box = Box.from_dict(value, "volume")
    if min(box.size) <= 0:
        raise Invalid("volume must have a positive size on every axis", field="volume")
    return box


def check_nozzle(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.05 <= value <= 3.0:
        raise Invalid("nozzle_diameter must be a number of mm from 0.05 to 3", field="nozzle_diameter")
    return float(value)


def check_printer_name(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 80:
        raise Invalid("name must be text of 1 to 80 characters", field="name")
    return value.strip()


def check_printer_id(value: Any) -> str:
    if not isinstance(value, str) or not PRINTER_ID_RE.match(value):
        raise Invalid(
            "id must be 1-48 lowercase letters, digits or '-', starting with a letter or digit", field="id"
        )
    return value


def check_member_name(value: Any) -> str:
    """A member's name: what they sign in with, so no spaces or slashes."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise Invalid(
            "name must be 1-64 characters: letters, digits, '.', '_', '@' or '-', starting with a letter "
            "or digit",
            field="name",
        )
    return value
