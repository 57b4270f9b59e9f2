"""Printers: the fleet's record, the node's live report, registering, changing and enrolling one."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Optional, Union

from pydantic import BeforeValidator, Field, WithJsonSchema

from ... import http_protocol as contract
from ... import models
from ...app.checks import check_material, check_nozzle, check_printer_id, check_printer_name
from ...errors import Invalid
from ...protocol import MAX_EXTRUDERS, PRINTER_ID_RE, BedShape, NodeState
from ...protocol import Capabilities as ReportedCapabilities
from ...states import PrinterState
from .base import Box, InputModel, Maybe, OutputModel, PageLimit, Timestamp, Volume

#: How long an enrollment code may live: a minute to thirty days.
MIN_CODE_TTL_S = 60.0
MAX_CODE_TTL_S = 30 * 86400.0


class Temperature(OutputModel):
    actual: Optional[float]
    target: Optional[float]


class LiveStatus(OutputModel):
    """What the printer's node last reported; only while the fleet has heard from it since it started."""

    node_state: NodeState = Field(
        description="The state as the node sees it (the printer's state is the fleet's view)"
    )
    temperatures: dict[str, Temperature] = Field(description="Heater name (tool0, bed …) → °C")
    progress: Optional[float] = Field(description="0-100, of the current job")
    eta: Optional[Timestamp] = Field(description="Expected end of the current job")
    job_id: Optional[int]
    last_seen: Timestamp
    message: str

    @classmethod
    def of(cls, live: models.LiveStatus) -> LiveStatus:
        return cls.copied(
            live,
            node_state=NodeState(live.node_state),
            temperatures={
                name: Temperature(actual=actual, target=target)
                for name, (actual, target) in live.temperatures.items()
            },
        )


class LendingWindow(OutputModel):
    days: list[str] = Field(description="mon … sun")
    start: str = Field(description="HH:MM, the owner's wall clock")
    end: str = Field(description="HH:MM; not after start: the next day")


class Lending(OutputModel):
    """A home printer's owner's terms: it takes fleet work only in these windows, for these materials."""

    time_zone: str = Field(description="Such as Europe/Paris")
    windows: list[LendingWindow]
    materials: Optional[list[str]] = Field(default=None, description="null: any material")


class Printer(OutputModel):
    id: str
    name: str
    state: PrinterState
    volume: Box
    nozzle_diameter: float
    material: Optional[str]
    restricted: bool
    current_job_id: Optional[int]
    last_seen: Optional[Timestamp]
    bed_shape: Optional[BedShape] = Field(
        description="From the printer profile; a circular bed reaches the circle inside the volume; "
        "null: not reported (rectangular assumed)"
    )
    heated_bed: Optional[bool] = Field(description="null: not reported (jobs that heat the bed may go)")
    heated_chamber: Optional[bool] = Field(description="null: not reported")
    extruders: Optional[int] = Field(description="null: not reported (jobs may use any number of tools)")
    lending: Optional[Lending] = Field(description="null: lent whenever idle, any material")
    live: Optional[LiveStatus] = Field(default=None, description="Only in answers that read it")

    omittable: ClassVar[frozenset[str]] = frozenset({"live"})

    @classmethod
    def of(cls, printer: models.Printer, live: Optional[models.LiveStatus] = None) -> Printer:
        extra = {} if live is None else {"live": LiveStatus.of(live)}
        shape = None if printer.bed_shape is None else BedShape(printer.bed_shape)
        lending = None if printer.lending is None else Lending.model_validate(printer.lending.to_json())
        return cls.copied(printer, volume=Box.of(printer.volume), bed_shape=shape, lending=lending, **extra)


class Printers(OutputModel):
    """One page of the printers in id order; ``next_cursor`` fetches the next (null on the last page)."""

    printers: list[Printer]
    next_cursor: Optional[str] = Field(description="Send as ?cursor= for the next page; null: no more")


def _printer_cursor(value: Any) -> Any:
    if not isinstance(value, str) or not PRINTER_ID_RE.match(value):
        raise Invalid("cursor must be the next_cursor of an earlier page, as it was sent", field="cursor")
    return value


class PrintersQuery(PageLimit):
    """Which page of the printers: ``limit`` printers after ``cursor`` (a printer id, in id order)."""

    cursor: Annotated[
        Optional[str],
        BeforeValidator(_printer_cursor),
        WithJsonSchema(
            {"type": "string", "pattern": PRINTER_ID_RE.pattern, "description": "From next_cursor"}
        ),
    ] = None


def _material(field: str) -> BeforeValidator:
    return BeforeValidator(lambda value: check_material(value, field))


def _flag(field: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if not isinstance(value, bool):
            raise Invalid(f"{field} must be true or false", field=field)
        return value

    return BeforeValidator(check)


# The checks in fleet.app.checks run first; Field's bounds and patterns document them.
PrinterName = Annotated[str, Field(min_length=1, max_length=80), BeforeValidator(check_printer_name)]
PrinterId = Annotated[str, Field(pattern=PRINTER_ID_RE.pattern), BeforeValidator(check_printer_id)]
Nozzle = Annotated[float, Field(ge=0.05, le=3.0, description="mm"), BeforeValidator(check_nozzle)]
Material = Annotated[
    Optional[str], Field(description="Such as PLA, PETG or ABS; stored upper-case"), _material("material")
]


class NewPrinter(InputModel):
    """``POST /printers``: a printer a manager registers by hand."""

    noun: ClassVar[str] = "printer field"

    id: PrinterId
    name: Maybe[PrinterName] = Field(default=None, description="The id when absent")
    volume: Volume
    nozzle_diameter: Nozzle = 0.4
    material: Material = None
    restricted: Annotated[bool, _flag("restricted")] = False

    def value(self) -> models.NewPrinter:
        spec = models.PrinterSpec(self.volume.to_box(), self.nozzle_diameter, self.material)
        return models.NewPrinter(self.id, self.name or self.id, spec, self.restricted)


class PrinterChanges(InputModel):
    """``PATCH /printers/{id}``: only the fields named change; ``maintenance`` takes it out of the pool."""

    noun: ClassVar[str] = "printer field"

    name: Maybe[PrinterName] = None
    material: Material = None
    nozzle_diameter: Maybe[Nozzle] = None
    volume: Maybe[Volume] = None
    restricted: Maybe[Annotated[bool, _flag("restricted")]] = None
    maintenance: Maybe[Annotated[bool, _flag("maintenance")]] = None

    def value(self) -> models.PrinterChanges:
        return models.PrinterChanges(
            name=self.name,
            material=self.material if "material" in self.model_fields_set else models.KEEP,
            nozzle_diameter=self.nozzle_diameter,
            volume=None if self.volume is None else self.volume.to_box(),
            restricted=self.restricted,
            maintenance=self.maintenance,
        )


def _bed_shape(value: Any) -> Any:
    if value is not None and value not in {shape.value for shape in BedShape}:
        raise Invalid(
            f"capabilities.bed_shape must be one of: {', '.join(shape.value for shape in BedShape)}",
            field="capabilities.bed_shape",
        )
    return None if value is None else BedShape(value)


def _optional_flag(field: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if value is not None and not isinstance(value, bool):
            raise Invalid(f"{field} must be true, false or null", field=field)
        return value

    return BeforeValidator(check)


def _extruders(value: Any) -> Any:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_EXTRUDERS
    ):
        raise Invalid(
            f"capabilities.extruders must be a whole number from 1 to {MAX_EXTRUDERS}",
            field="capabilities.extruders",
        )
    return value


class Capabilities(InputModel):
    """What an enrolling node says its printer can do; the profile's keys are optional."""

    noun: ClassVar[str] = "capability"

    volume: Volume
    nozzle_diameter: Nozzle = 0.4
    material: Annotated[Optional[str], _material("capabilities.material")] = None
    bed_shape: Annotated[Optional[BedShape], BeforeValidator(_bed_shape)] = None
    heated_bed: Annotated[Optional[bool], _optional_flag("capabilities.heated_bed")] = None
    heated_chamber: Annotated[Optional[bool], _optional_flag("capabilities.heated_chamber")] = None
    extruders: Annotated[Optional[int], Field(ge=1, le=MAX_EXTRUDERS), BeforeValidator(_extruders)] = None

    def value(self) -> ReportedCapabilities:
        return ReportedCapabilities(
            self.volume.to_box(),
            self.nozzle_diameter,
            self.material,
            bed_shape=self.bed_shape,
            heated_bed=self.heated_bed,
            heated_chamber=self.heated_chamber,
            extruders=self.extruders,
        )


def _capabilities(value: Any) -> Any:
    if not isinstance(value, dict):
        raise Invalid(
            "capabilities must be an object with volume, nozzle_diameter and material (and optionally "
            "bed_shape, heated_bed, heated_chamber, extruders)",
            field="capabilities",
        )
    unknown = sorted(set(value) - set(Capabilities.model_fields))
    if unknown:
        raise Invalid(f"unknown capability: {unknown[0]}", field=f"capabilities.{unknown[0]}")
    return Capabilities.parse(value)


class Enroll(InputModel):
    """``POST /printers/enroll``: a node spends a manager's code (checked last: the code is the proof).

    Checks what the node sends and produces the contract's :class:`~fleet.http_protocol.EnrollRequest`.
    """

    name: PrinterName
    capabilities: Annotated[Capabilities, BeforeValidator(_capabilities)]
    code: str = Field(description="The code a manager made, such as 7KQP-M2XD-9HWC")

    def value(self) -> contract.EnrollRequest:
        return contract.EnrollRequest(self.code, self.name, self.capabilities.value())


class MqttLogin(OutputModel):
    host: str
    port: int
    username: str = Field(description="The printer id")
    password: str
    tls: bool


class EnrollmentAnswer(OutputModel):
    """A new printer's secrets, shown only this once: the node keeps them.

    Documents :class:`fleet.http_protocol.EnrollmentAnswer`, whose ``to_json()`` is the route's body.
    """

    printer_id: str
    token: str = Field(description="The printer's HTTP token (job file downloads)")
    mqtt: MqttLogin


class NewEnrollCode(InputModel):
    """``POST /enroll-codes``: how long the code lives."""

    messages: ClassVar[dict[str, str]] = {"ttl_s": "ttl_s must be from 60 seconds to 30 days"}

    ttl_s: float = Field(default=86400.0, ge=MIN_CODE_TTL_S, le=MAX_CODE_TTL_S)


class EnrollCode(OutputModel):
    code: str = Field(description="Such as 7KQP-M2XD-9HWC")
    expires_at: Timestamp


class UnfitJob(OutputModel):
    job_id: int
    reason: str = Field(
        description="What the job needs that this printer's profile lacks; no names (English)"
    )
    key: str = Field(
        description="The reason as a stable key for a translation: too_small, round_bed, no_heated_bed, "
        "no_heated_chamber, too_few_extruders"
    )
    params: dict[str, Union[str, int]] = Field(
        description="The values the key's text names (needed, have, tools, extruders)"
    )


class UnfitJobs(OutputModel):
    """Waiting jobs no printer can take and this printer cannot either (for its owner, in OctoPrint)."""

    jobs: list[UnfitJob]
