"""The lab's safety rules for G-code files, and the scan that applies them line by line."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Optional

from ..errors import Invalid
from . import materials
from .results import Analysis, Finding, Severity

#: Why each command is refused by default. A file that is printed by a stranger on a shared printer
#: must not change what the next file finds: no persistent settings, no calibration, no firmware,
#: no network, no files on the printer, and nothing that defeats a safety limit.
REFUSED_BY_DEFAULT: Mapping[str, str] = MappingProxyType(
    {
        # EEPROM: M500 makes whatever the file changed permanent; M502 resets calibration at run time.
        # M501 (reload the saved settings) and M504 (validate the EEPROM) change nothing and stay allowed.
        "M500": "saves the settings to the printer's EEPROM",
        "M502": "factory reset of the firmware settings",
        "M997": "firmware update",
        # Calibration that the lab owns: a wrong value crashes the nozzle or ruins every later print.
        "M92": "changes the steps per mm",
        "M851": "changes the Z-probe offset",
        "M665": "changes the delta geometry",
        "M666": "changes the endstop adjustments",
        # Heater tuning: bad PID values overshoot; an autotune heats the printer unattended.
        "M301": "sets the hotend PID values",
        "M304": "sets the bed PID values",
        "M303": "runs a PID autotune",
        # Safety limits a file must not lift.
        "M211": "changes the software endstops",
        "M302": "allows cold extrusion",
        "M42": "switches a controller pin directly, bypassing the firmware's protections",
        "M43": "runs the pin debugger, which can toggle heater pins",
        # A stop from a file leaves the printer halted until someone resets it; M999 clears a real fault.
        "M112": "emergency stop",
        "M999": "restarts the firmware after a stop",
        # Network and identity (RepRapFirmware): a file must not reconfigure the lab's network.
        "M550": "sets the printer's name",
        "M551": "sets the printer's password",
        "M552": "changes the network interface",
        "M553": "sets the netmask",
        "M554": "sets the gateway",
        "M587": "stores a WiFi network",
        "M588": "forgets WiFi networks",
        "M589": "configures the WiFi access point",
        # Files on the printer belong to the lab: no writing, deleting, or starting another file.
        "M28": "writes a file to the printer's storage",
        "M29": "writes a file to the printer's storage",
        "M30": "deletes a file on the printer's storage",
        "M32": "starts another file from the printer's storage",
        # Klipper's equivalents of the above.
        "SAVE_CONFIG": "rewrites the printer's configuration file",
        "FIRMWARE_RESTART": "restarts the firmware",
        "RESTART": "restarts the printer's host software",
    }
)

#: Commands that stop and wait for a person: fine when the member is there, so a warning.
WARNING_BY_DEFAULT: Mapping[str, str] = MappingProxyType(
    {
        "M0": "waits for a person to press the button",
        "M1": "waits for a person to press the button",
        "M25": "pauses the print",
        "M125": "parks the head and pauses",
        "M226": "pauses the print",
        "M600": "filament change, a person must swap the filament",
        "M601": "pauses the print",
    }
)

HOTEND_COMMANDS = frozenset({"M104", "M109"})
BED_COMMANDS = frozenset({"M140", "M190"})
#: Set (M141) or wait for (M191) the chamber's temperature: the job needs a heated chamber.
CHAMBER_COMMANDS = frozenset({"M141", "M191"})

_COMMAND_RE = re.compile(r"^(?:[GMT]\d+(?:\.\d+)?|[A-Z_][A-Z0-9_]*)$")


@dataclass(frozen=True)
class MaterialLimits:
    """The hottest a material should be printed: hotend and bed, °C."""

    hotend_max_c: float
    bed_max_c: float

    def to_dict(self) -> dict[str, float]:
        return {"hotend_max_c": self.hotend_max_c, "bed_max_c": self.bed_max_c}


DEFAULT_MATERIAL_LIMITS: Mapping[str, MaterialLimits] = MappingProxyType(
    {
        "PLA": MaterialLimits(240, 70),
        "PETG": MaterialLimits(260, 90),
        "PET": MaterialLimits(260, 90),
        "ABS": MaterialLimits(270, 110),
        "ASA": MaterialLimits(275, 110),
        "HIPS": MaterialLimits(260, 110),
        "TPU": MaterialLimits(250, 70),
        "FLEX": MaterialLimits(250, 70),
        "PVA": MaterialLimits(225, 70),
        "PC": MaterialLimits(300, 120),
        "PA": MaterialLimits(290, 100),
        "NYLON": MaterialLimits(290, 100),
        "PP": MaterialLimits(260, 100),
    }
)


def normalise_command(name: str) -> str:
    """ "m0500 " → "M500", "g01" → "G1"; extended (Klipper) commands are upper-cased."""
    name = name.strip().upper()
    if len(name) > 1 and name[0] in "GMT" and name[1].isdigit():
        number, dot, fraction = name[1:].partition(".")
        if number.isdigit():
            return f"{name[0]}{number.lstrip('0') or '0'}{dot}{fraction}"  # int() refuses 4300+ digits
    return name


@dataclass(frozen=True)
class SafetyRules:
    """The lab's adjustable rules. Build from JSON with :meth:`from_dict`, which names a bad option."""

    refused_commands: frozenset[str] = frozenset(REFUSED_BY_DEFAULT)
    warning_commands: frozenset[str] = frozenset(WARNING_BY_DEFAULT)
    material_limits: Mapping[str, MaterialLimits] = field(default_factory=lambda: DEFAULT_MATERIAL_LIMITS)
    #: Above these a file is refused whatever the material.
    max_hotend_c: float = 300.0
    max_bed_c: float = 120.0
    #: Moves this far below Z 0 pass without a warning (first-layer squish, probe offsets).
    z_tolerance_mm: float = 0.05
    #: A longer line is not G-code (thumbnails come in lines of well under 100 characters).
    max_line_length: int = 64 * 1024

    def limits_for(self, material: Optional[str]) -> Optional[tuple[str, MaterialLimits]]:
        """The material family and its limits, or None when the material is unknown to the lab."""
        key = materials.family(material, self.material_limits)
        return None if key is None else (key, self.material_limits[key])

    def describe(self, command: str) -> str:
        return (
            REFUSED_BY_DEFAULT.get(command)
            or WARNING_BY_DEFAULT.get(command)
            or (
                "a command this lab does not allow"
                if command in self.refused_commands
                else "a command this lab wants a person to see"
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "refused_commands": sorted(self.refused_commands),
            "warning_commands": sorted(self.warning_commands),
            "material_limits": {name: lim.to_dict() for name, lim in sorted(self.material_limits.items())},
            "max_hotend_c": self.max_hotend_c,
            "max_bed_c": self.max_bed_c,
            "z_tolerance_mm": self.z_tolerance_mm,
            "max_line_length": self.max_line_length,
        }

    @classmethod
    def from_dict(cls, data: Any) -> SafetyRules:
        """Parse rules from JSON. Options left out keep their defaults.

        ``refused_commands`` / ``warning_commands`` replace the lists; ``also_refuse`` and ``allow``
        add to and remove from them. ``material_limits`` is merged over the built-in table
        (``null`` for a material removes it).
        """
        if not isinstance(data, dict):
            raise Invalid("rules must be a JSON object", field="rules")
        known = set(cls().to_dict()) | {"also_refuse", "allow"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise Invalid(
                f"unknown rule option {unknown[0]!r}; known options: {', '.join(sorted(known))}",
                field=unknown[0],
            )
        refused = _commands(data, "refused_commands", frozenset(REFUSED_BY_DEFAULT))
        warning = _commands(data, "warning_commands", frozenset(WARNING_BY_DEFAULT))
        refused = (refused | _commands(data, "also_refuse", frozenset())) - _commands(
            data, "allow", frozenset()
        )
        warning = warning - refused
        return cls(
            refused_commands=refused,
            warning_commands=warning,
            material_limits=_material_limits(data.get("material_limits")),
            max_hotend_c=_number(data, "max_hotend_c", 300.0, 1, 500),
            max_bed_c=_number(data, "max_bed_c", 120.0, 1, 200),
            z_tolerance_mm=_number(data, "z_tolerance_mm", 0.05, 0, 5),
            max_line_length=int(
                _number(data, "max_line_length", 64 * 1024, 256, 16 * 1024 * 1024, whole=True)
            ),
        )


DEFAULT_RULES = SafetyRules()


def _commands(data: dict[str, Any], option: str, default: frozenset[str]) -> frozenset[str]:
    if option not in data:
        return default
    value = data[option]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise Invalid(f'{option} must be a list of G-code commands such as "M502"', field=option)
    result = set()
    for item in value:
        name = normalise_command(item)
        if not _COMMAND_RE.match(name):
            raise Invalid(
                f'{option}: {item!r} is not a G-code command (e.g. "M502" or "SAVE_CONFIG")', field=option
            )
        result.add(name)
    return frozenset(result)


def _number(
    data: dict[str, Any], option: str, default: float, low: float, high: float, whole: bool = False
) -> float:
    if option not in data:
        return float(default)
    value = data[option]
    kind = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        what = "a whole number" if whole else "a number"
        raise Invalid(f"{option} must be {what} from {low:g} to {high:g}", field=option)
    return float(value)


def _material_limits(value: Any) -> Mapping[str, MaterialLimits]:
    if value is None:
        return DEFAULT_MATERIAL_LIMITS
    if not isinstance(value, dict):
        raise Invalid(
            'material_limits must be an object such as {"PLA": {"hotend_max_c": 240}}',
            field="material_limits",
        )
    table = dict(DEFAULT_MATERIAL_LIMITS)
    for raw_name, limits in value.items():
        name = materials.normalise(str(raw_name))
        where = f"material_limits.{raw_name}"
        if name is None:
            raise Invalid("material_limits: a material name must not be empty", field="material_limits")
        if limits is None:
            table.pop(name, None)
            continue
        if not isinstance(limits, dict) or set(limits) - {"hotend_max_c", "bed_max_c"}:
            raise Invalid(f"{where} must be an object with hotend_max_c and bed_max_c", field=where)
        base = table.get(name, MaterialLimits(240, 70))
        try:
            table[name] = MaterialLimits(
                hotend_max_c=_number(limits, "hotend_max_c", base.hotend_max_c, 1, 500),
                bed_max_c=_number(limits, "bed_max_c", base.bed_max_c, 1, 200),
            )
        except Invalid as exc:
            raise Invalid(f"{where}.{exc.message}", field=f"{where}.{exc.field}") from exc
    return MappingProxyType(table)


class SafetyScan:
    """Collects findings while a file streams past; temperatures are judged at the end, once the
    material is known (PrusaSlicer writes it in the footer)."""

    #: Each rule keeps its first findings; the rest are only counted (memory stays flat).
    PER_RULE = 20

    def __init__(self, rules: SafetyRules) -> None:
        self.rules = rules
        self.refused = rules.refused_commands
        self.warned = rules.warning_commands
        self.z_floor = -rules.z_tolerance_mm
        self._findings: list[Finding] = []
        self._per_rule: dict[str, int] = {}
        self.suppressed = 0
        # First line of each distinct temperature asked for, per heater, judged in finish().
        self._temperatures: dict[tuple[str, float], tuple[int, str]] = {}
        #: The hottest bed the file asks for, °C (0: it never heats the bed); the scheduler keeps such
        #: a job from a printer without a heated bed.
        self.bed_max_c = 0.0
        #: The hottest chamber the file asks for, °C (0: none); such a job goes only to a printer whose
        #: profile has a heated chamber.
        self.chamber_max_c = 0.0

    def add(self, line: int, command: str, severity: Severity, rule: str, message: str) -> None:
        count = self._per_rule.get(rule, 0) + 1
        self._per_rule[rule] = count
        if count > self.PER_RULE:
            self.suppressed += 1
        else:
            self._findings.append(Finding(line, command, severity, rule, message))

    def command(self, line: int, command: str, params: Mapping[str, float]) -> None:
        """Check one command that is not a plain G0/G1 move."""
        if command in self.refused:
            self.add(
                line,
                command,
                Severity.REFUSE,
                "refused-command",
                f"{command} ({self.rules.describe(command)}) is not allowed on a community printer",
            )
        elif command in self.warned:
            self.add(
                line,
                command,
                Severity.WARNING,
                "needs-person",
                f"{command} ({self.rules.describe(command)}) stops the print until a person "
                "at the printer acts",
            )
        if command in HOTEND_COMMANDS:
            self._temperature(line, command, "hotend", params, self.rules.max_hotend_c)
        elif command in BED_COMMANDS:
            self._temperature(line, command, "bed", params, self.rules.max_bed_c)
        elif command in CHAMBER_COMMANDS:
            value = params.get("S", params.get("R"))
            if value is not None and 0 < value < math.inf and value > self.chamber_max_c:
                self.chamber_max_c = value

    def _temperature(
        self, line: int, command: str, heater: str, params: Mapping[str, float], cap: float
    ) -> None:
        value = params.get("S", params.get("R"))
        if value is None or value <= 0:
            return
        # A request past any float (a long run of digits) is refused below: the hottest bed kept is finite.
        if heater == "bed" and value > self.bed_max_c and math.isfinite(value):
            self.bed_max_c = value
        if value > cap:
            self.add(
                line,
                command,
                Severity.REFUSE,
                f"{heater}-temperature-absolute",
                f"{command} asks for a {heater} temperature of {value:g} °C, above this lab's absolute "
                f"limit of {cap:g} °C",
            )
        key = (heater, value)
        if key not in self._temperatures and len(self._temperatures) < 1000:
            self._temperatures[key] = (line, command)

    def z_below(self, line: int, command: str, z: float) -> None:
        self.add(
            line,
            command,
            Severity.WARNING,
            "below-bed",
            f"{command} moves the nozzle to Z {z:.3f} mm, below the bed (the lab allows "
            f"{self.rules.z_tolerance_mm:g} mm): check the start G-code and the Z offset",
        )

    def finish(self, material: Optional[str]) -> tuple[Finding, ...]:
        """All findings in line order, with the temperature warnings for ``material``."""
        limits = self.rules.limits_for(material)
        if limits is not None:
            family, lim = limits
            for (heater, value), (line, command) in sorted(
                self._temperatures.items(), key=lambda kv: kv[1][0]
            ):
                top = lim.hotend_max_c if heater == "hotend" else lim.bed_max_c
                absolute = self.rules.max_hotend_c if heater == "hotend" else self.rules.max_bed_c
                if top < value <= absolute:
                    self.add(
                        line,
                        command,
                        Severity.WARNING,
                        f"{heater}-temperature-material",
                        f"{command} asks for a {heater} temperature of {value:g} °C, above the {top:g} °C "
                        f"this lab allows for {family}: check the material and the slicer profile",
                    )
        return tuple(sorted(self._findings, key=lambda f: f.line))


def refusal_message(analysis: Analysis) -> str:
    """One sentence listing the refused findings ("line 7: M502 (...) is not allowed ..."); "" if none."""
    refused = [f for f in analysis.findings if f.severity is Severity.REFUSE]
    return "; ".join(f"line {f.line}: {f.message}" for f in refused)
