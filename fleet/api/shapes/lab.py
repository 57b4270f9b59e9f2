"""The lab as a whole: its settings and G-code rules, the fleet's metrics, liveness."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Optional

from pydantic import BeforeValidator, Field

from ... import lab
from ...economy.money import check_currency
from ...economy.periods import check_time_zone
from ...gcode import SafetyRules
from ...models import LabSettingsChanges
from .base import InputModel, Maybe, OutputModel


class MaterialLimits(OutputModel):
    hotend_max_c: float
    bed_max_c: float


class Rules(OutputModel):
    """The lab's G-code rules: what a file may not (or should not) do."""

    refused_commands: list[str]
    warning_commands: list[str]
    material_limits: dict[str, MaterialLimits] = Field(description="Material family → its temperature limits")
    max_hotend_c: float
    max_bed_c: float
    z_tolerance_mm: float
    max_line_length: int

    @classmethod
    def of(cls, rules: SafetyRules) -> Rules:
        return cls.model_validate(rules.to_dict())


class LabSettings(OutputModel):
    """The lab's settings and G-code rules."""

    approval_required: bool
    max_upload_bytes: int
    max_copies: int
    fair_share_half_life_s: float
    currency: str = Field(description="ISO 4217 code of the price list and the ledger")
    time_zone: str = Field(
        description="IANA time zone: quota periods, the ledger's months and the statistics' days follow it"
    )
    snapshot_max_bytes: int = Field(description="The largest photo of a plate a printer may send, bytes")
    snapshot_retention_days: int = Field(description="How many days the photos of plates are kept")
    rules: Rules

    @classmethod
    def of(cls, settings: lab.LabSettings) -> LabSettings:
        return cls.model_validate(settings.to_dict())


class SettingsChanges(InputModel):
    """``PATCH /settings``: a partial object changes only what it names (``rules`` too, option by option)."""

    noun: ClassVar[str] = "setting"
    messages: ClassVar[dict[str, str]] = {
        "approval_required": "approval_required must be true or false",
        "rules": "rules must be a JSON object",
    }

    # The checks in fleet.lab run first (the dashboard's form runs them too); Field's bounds document them.
    approval_required: Maybe[bool] = None
    max_upload_bytes: Maybe[
        Annotated[int, Field(ge=1, le=lab.MAX_UPLOAD_CEILING), BeforeValidator(lab.check_max_upload_bytes)]
    ] = None
    max_copies: Maybe[
        Annotated[int, Field(ge=1, le=lab.MAX_COPIES), BeforeValidator(lab.check_max_copies)]
    ] = None
    fair_share_half_life_s: Maybe[
        Annotated[
            float,
            Field(ge=lab.MIN_HALF_LIFE_S, le=lab.MAX_HALF_LIFE_S),
            BeforeValidator(lab.check_half_life),
        ]
    ] = None
    currency: Maybe[Annotated[str, BeforeValidator(check_currency)]] = Field(
        default=None, description="ISO 4217 code such as EUR, CHF or USD"
    )
    time_zone: Maybe[Annotated[str, BeforeValidator(check_time_zone)]] = Field(
        default=None, description="IANA time zone such as Europe/Paris"
    )
    snapshot_max_bytes: Maybe[
        Annotated[
            int,
            Field(ge=lab.MIN_SNAPSHOT_BYTES, le=lab.MAX_SNAPSHOT_BYTES),
            BeforeValidator(lab.check_snapshot_max_bytes),
        ]
    ] = None
    snapshot_retention_days: Maybe[
        Annotated[
            int,
            Field(ge=1, le=lab.MAX_SNAPSHOT_RETENTION_DAYS),
            BeforeValidator(lab.check_snapshot_retention_days),
        ]
    ] = None
    rules: Maybe[dict[str, Any]] = Field(
        default=None, description="Some of the rules' options (see Rules); the others are kept"
    )

    def value(self) -> LabSettingsChanges:
        return LabSettingsChanges(
            approval_required=self.approval_required,
            max_upload_bytes=self.max_upload_bytes,
            max_copies=self.max_copies,
            fair_share_half_life_s=self.fair_share_half_life_s,
            currency=self.currency,
            time_zone=self.time_zone,
            snapshot_max_bytes=self.snapshot_max_bytes,
            snapshot_retention_days=self.snapshot_retention_days,
            rules=self.rules,
        )


class Histogram(OutputModel):
    bounds_s: list[float]
    counts: list[int] = Field(description="One count per bound, then one for anything above the last")
    count: int
    sum_s: float


class Metrics(OutputModel):
    """The fleet's counters and latency histograms since it started."""

    at: float = Field(description="When this was read, epoch seconds")
    started_at: float
    counters: dict[str, int] = Field(
        description="By series: a figure's name, with its labels as name{label=value,...} when it has any"
    )
    histograms: dict[str, Histogram] = Field(description="By series, named as the counters are")


class Health(OutputModel):
    """This fleet process can serve (a process that cannot answers 503 with the parts that are down)."""

    status: str = Field(description='"ok"')
    database: str = Field(description='"up"')
    broker: Optional[str] = Field(description='"up", or null where this process links to no broker')
    duties: list[str] = Field(
        description="The once-only background duties this process carries out now (dispatch, sweeps ...)"
    )
