"""What an analysis of a G-code file finds: typed, frozen, and JSON round-trippable."""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any, Optional

from ..errors import Invalid
from ..geometry import Box


class Severity(str, Enum):
    #: The file must not be printed on a community printer.
    REFUSE = "refuse"
    #: The file may be printed, but a person should look first (or be there).
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One thing the safety scan noticed, at a 1-based line of the file."""

    line: int
    command: str
    severity: Severity
    rule: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "severity": self.severity.value}

    @classmethod
    def from_dict(cls, data: Any) -> Finding:
        if not isinstance(data, dict):
            raise Invalid("a finding must be an object", field="findings")
        try:
            return cls(
                line=int(data["line"]),
                command=str(data["command"]),
                severity=Severity(data["severity"]),
                rule=str(data["rule"]),
                message=str(data["message"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise Invalid(f"malformed finding: {exc}", field="findings") from exc


@dataclass(frozen=True)
class Thumbnail:
    """A preview image the slicer embedded in the file; ``format`` is PNG, JPG or QOI."""

    width: int
    height: int
    format: str
    data: bytes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "data": base64.b64encode(self.data).decode("ascii")}

    @classmethod
    def from_dict(cls, data: Any) -> Thumbnail:
        if not isinstance(data, dict):
            raise Invalid("a thumbnail must be an object", field="thumbnails")
        try:
            return cls(
                width=int(data["width"]),
                height=int(data["height"]),
                format=str(data["format"]),
                data=base64.b64decode(data["data"], validate=True),
            )
        except (KeyError, ValueError, TypeError, binascii.Error) as exc:
            raise Invalid(f"malformed thumbnail: {exc}", field="thumbnails") from exc


@dataclass(frozen=True)
class Slicer:
    """The program that wrote the file, as its header names it."""

    name: str
    version: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name


@dataclass(frozen=True)
class Analysis:
    """Everything the intake learned about one G-code file.

    ``bounds`` covers every extruding move (as OctoPrint's ``printing_area`` does, but with the
    real lowest Z); ``model_bounds`` covers the model alone, see :mod:`fleet.gcode.analysis`.
    ``estimated_time_s`` is the slicer's own figure when the file carries one;
    ``own_time_estimate_s`` is always ours, computed from the moves.
    """

    slicer: Optional[Slicer]
    flavour: Optional[str]
    estimated_time_s: Optional[float]
    own_time_estimate_s: float
    filament_length_mm: float
    filament_weight_g: float
    material: Optional[str]
    nozzle_diameter: Optional[float]
    layer_height: Optional[float]
    filament_diameter: float
    thumbnails: tuple[Thumbnail, ...]
    bounds: Optional[Box]
    model_bounds: Optional[Box]
    line_count: int
    size_bytes: int
    findings: tuple[Finding, ...]
    #: Findings left out because one rule fired too often (each rule keeps its first few).
    findings_suppressed: int = 0
    #: The hottest bed the file asks for (M140/M190), °C; None when it never heats the bed.
    bed_temperature_c: Optional[float] = None
    #: How many tools (extruders) the file uses: its highest T index + 1.
    tools: int = 1
    #: The hottest chamber the file asks for (M141/M191), °C; None when it never heats a chamber.
    chamber_temperature_c: Optional[float] = None

    @property
    def refused(self) -> bool:
        return any(f.severity is Severity.REFUSE for f in self.findings)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def best_time_s(self) -> float:
        """The slicer's estimate when there is one, else ours."""
        return self.estimated_time_s if self.estimated_time_s is not None else self.own_time_estimate_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "slicer": None
            if self.slicer is None
            else {"name": self.slicer.name, "version": self.slicer.version},
            "flavour": self.flavour,
            "estimated_time_s": self.estimated_time_s,
            "own_time_estimate_s": self.own_time_estimate_s,
            "best_time_s": self.best_time_s,
            "filament_length_mm": self.filament_length_mm,
            "filament_weight_g": self.filament_weight_g,
            "material": self.material,
            "nozzle_diameter": self.nozzle_diameter,
            "layer_height": self.layer_height,
            "filament_diameter": self.filament_diameter,
            "thumbnails": [t.to_dict() for t in self.thumbnails],
            "bounds": None if self.bounds is None else self.bounds.to_dict(),
            "model_bounds": None if self.model_bounds is None else self.model_bounds.to_dict(),
            "line_count": self.line_count,
            "size_bytes": self.size_bytes,
            "findings": [f.to_dict() for f in self.findings],
            "findings_suppressed": self.findings_suppressed,
            "bed_temperature_c": self.bed_temperature_c,
            "tools": self.tools,
            "chamber_temperature_c": self.chamber_temperature_c,
            "refused": self.refused,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Analysis:
        """Rebuild an analysis stored as JSON; derived keys (``refused``, ``best_time_s``) are ignored."""
        if not isinstance(data, dict):
            raise Invalid("an analysis must be an object", field="analysis")
        slicer = data.get("slicer")
        try:
            return cls(
                slicer=None if not slicer else Slicer(str(slicer["name"]), _opt_str(slicer.get("version"))),
                flavour=_opt_str(data.get("flavour")),
                estimated_time_s=_opt_float(data.get("estimated_time_s")),
                own_time_estimate_s=float(data["own_time_estimate_s"]),
                filament_length_mm=float(data["filament_length_mm"]),
                filament_weight_g=float(data["filament_weight_g"]),
                material=_opt_str(data.get("material")),
                nozzle_diameter=_opt_float(data.get("nozzle_diameter")),
                layer_height=_opt_float(data.get("layer_height")),
                filament_diameter=float(data["filament_diameter"]),
                thumbnails=tuple(Thumbnail.from_dict(t) for t in data.get("thumbnails") or ()),
                bounds=None if data.get("bounds") is None else Box.from_dict(data["bounds"], "bounds"),
                model_bounds=(
                    None
                    if data.get("model_bounds") is None
                    else Box.from_dict(data["model_bounds"], "model_bounds")
                ),
                line_count=int(data["line_count"]),
                size_bytes=int(data["size_bytes"]),
                findings=tuple(Finding.from_dict(f) for f in data.get("findings") or ()),
                findings_suppressed=int(data.get("findings_suppressed") or 0),
                bed_temperature_c=_opt_float(data.get("bed_temperature_c")),
                tools=int(data.get("tools") or 1),
                chamber_temperature_c=_opt_float(data.get("chamber_temperature_c")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise Invalid(f"malformed analysis: {exc}", field="analysis") from exc


def _opt_str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def _opt_float(value: Any) -> Optional[float]:
    return None if value is None else float(value)
