"""What the scheduler is told (printers, jobs, parameters) and what a plan says (assignments, reasons)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from operator import attrgetter
from typing import TYPE_CHECKING

from ..economy.quotas import Hold
from ..errors import Invalid
from ..geometry import Box
from ..lending import Lending
from ..states import JobState, PrinterState

if TYPE_CHECKING:
    from .explain import Explanation

#: Field getters, read with map() over whole lists in the hot code (one C call a job, no tuple).
ID = attrgetter("id")
MEMBER = attrgetter("member_id")
PRIORITY = attrgetter("priority")
GROUP_PRIORITY = attrgetter("group_priority")
GRAMS = attrgetter("grams")
COST = attrgetter("cost_minor")
LIFTED = attrgetter("quota_lifted")
SECONDS = attrgetter("estimated_seconds")
SUBMITTED = attrgetter("submitted_at")
BOUNDS = attrgetter("bounds")
NOZZLE = attrgetter("nozzle_diameter")
MATERIAL = attrgetter("material")
HEATS_BED = attrgetter("heats_bed")
HEATS_CHAMBER = attrgetter("heats_chamber")
TOOLS = attrgetter("tools")
COLOUR = attrgetter("colour")


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
    #: A round bed reaches only the circle inscribed in the volume's box (centred), as on a delta.
    round_bed: bool = False
    #: False takes no job that heats the bed; None (not reported) is taken as heated.
    heated_bed: bool | None = None
    #: True takes a job that heats the chamber; False or None (not reported) takes none: a chamber
    #: is rare, and a job that needs one fails on a printer without it.
    heated_chamber: bool | None = None
    #: Tools the printer has; None (not reported) takes a job with any number.
    extruders: int | None = None
    #: A home printer's owner's terms: lent only in its windows, only the materials named.
    lending: Lending | None = None
    #: The loaded spool's colour name (compared without case); None matches no job that names one.
    colour: str | None = None
    #: Grams left on the loaded spool; None when the lab does not track this printer's spool.
    spool_grams: float | None = None


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
    #: The file heats the bed (M140/M190 above 0 °C): not for a printer whose bed is not heated.
    heats_bed: bool = False
    #: Tools (extruders) the file uses: its highest T index + 1.
    tools: int = 1
    #: Filament the job takes (the analysis's weight): weighed against a quota, and it goes only to a
    #: spool holding that much.
    grams: float = 0.0
    #: Its estimated cost in minor units (weighed against a cost quota).
    cost_minor: int = 0
    #: A manager lifted its member's quotas for this one job.
    quota_lifted: bool = False
    #: The member's membership group and what it adds to the job's priority (shown in explanations).
    group: str | None = None
    group_priority: int = 0
    #: The file heats the chamber (M141/M191 above 0 °C): only for a printer with a heated chamber.
    heats_chamber: bool = False
    #: None means any colour; compared without case.
    colour: str | None = None


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
    #: Printers could take it, but none has its material (and colour) loaded; a manager can load it.
    MATERIAL_NOT_LOADED = "material_not_loaded"
    #: Printers have its material and colour loaded, but no spool holds the grams it needs.
    LOW_SPOOL = "low_spool"
    #: No printer in the fleet could ever take it (too big, nozzle, not granted).
    NO_COMPATIBLE_PRINTER = "no_compatible_printer"
    #: The fleet has no printer at all yet: every job waits for the first to join.
    NO_PRINTER_YET = "no_printer_yet"
    #: Its member reached a quota (printer-hours, grams, cost or jobs at once); a manager can lift it.
    QUOTA = "quota"


@dataclass(frozen=True)
class Plan:
    #: (job_id, printer_id) pairs to dispatch now, in queue order.
    assignments: tuple[tuple[int, str], ...]
    #: One for every QUEUED, AWAITING_APPROVAL and SUBMITTED job passed in.
    explanations: Mapping[int, Explanation]
    #: Queued job ids in queue order.
    order: tuple[int, ...]
    #: Job id -> the quota that holds it (with ``explain=False``, only among the jobs looked at).
    holds: Mapping[int, Hold] = field(default_factory=dict)


#: The parameters a pass uses unless told otherwise.
DEFAULTS = SchedulerParams()
