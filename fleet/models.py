"""The fleet's records as typed values: what the store returns and the services pass around."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Generic, Optional, TypeVar, Union

from .geometry import Box
from .lending import Lending
from .states import JobState, PrinterState

T = TypeVar("T")


class Role(str, Enum):
    MEMBER = "member"
    MANAGER = "manager"


@dataclass(frozen=True)
class Member:
    id: int
    name: str
    role: Role
    #: None follows the lab's setting; True/False overrides it for this member.
    requires_approval: Optional[bool]
    active: bool
    created_at: float


@dataclass(frozen=True)
class Printer:
    id: str
    name: str
    state: PrinterState
    volume: Box
    nozzle_diameter: float
    material: Optional[str]
    #: A restricted printer takes jobs only from members a manager granted it to.
    restricted: bool
    current_job_id: Optional[int]
    last_seen: Optional[float]
    created_at: float
    #: From the printer profile; None where the node has not said. ``bed_shape`` is a
    #: :class:`fleet.protocol.BedShape` value ("rectangular" or "circular").
    bed_shape: Optional[str] = None
    heated_bed: Optional[bool] = None
    heated_chamber: Optional[bool] = None
    extruders: Optional[int] = None
    #: The owner's terms: when the printer is lent and which materials it takes; None: always, any.
    lending: Optional[Lending] = None


@dataclass(frozen=True)
class Job:
    id: int
    member_id: int
    state: JobState
    priority: int
    file_sha256: str
    #: For display only: files are stored by content hash, never under this name.
    filename: str
    size_bytes: int
    material: Optional[str]
    note: str
    analysis: dict[str, Any]
    printer_id: Optional[str]
    submitted_at: float
    updated_at: float
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    #: The colour asked for (a name such as "black"); None takes any colour of the material.
    colour: Optional[str] = None


@dataclass(frozen=True)
class JobEvent:
    id: int
    job_id: int
    at: float
    from_state: Optional[JobState]
    to_state: JobState
    #: Who did it: "member:3", "manager:1", "printer:mini-1", "system".
    actor: str
    reason: str
    data: dict[str, Any] = field(default_factory=dict)


class CodeRefusal(str, Enum):
    """Why a one-time code (an enrollment code, a link code) was not taken: each gets its own words."""

    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"

    @classmethod
    def of(cls, found: Optional[tuple[Optional[float], float]], now: float) -> CodeRefusal:
        """From the code's ``(used_at, expires_at)`` as stored (None: no such code): used before expired."""
        if found is None:
            return cls.UNKNOWN
        used_at, expires_at = found
        if used_at is not None:
            return cls.USED
        return cls.EXPIRED if expires_at <= now else cls.UNKNOWN


@dataclass(frozen=True)
class EnrollmentCode:
    """A one-time code a manager hands to whoever sets up a printer; only its hash is stored."""

    code_hash: str
    #: None when it was made at the console rather than by a member through the API.
    created_by: Optional[int]
    created_at: float
    expires_at: float
    used_at: Optional[float]
    used_by_printer: Optional[str]


@dataclass(frozen=True)
class PrinterCredentials:
    """How an enrolled printer signs in: to the broker (MQTT) and to the fleet's file endpoint (HTTP)."""

    printer_id: str
    #: Mosquitto's password-file format.
    mqtt_password_hash: str
    #: SHA-256 of the printer's HTTP token, hex.
    http_token_hash: str
    created_at: float
    revoked_at: Optional[float]

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class LiveStatus:
    """What a printer's node last reported, kept in memory for the API (not stored)."""

    node_state: str
    #: Heater name → (actual, target) in °C.
    temperatures: dict[str, tuple[Optional[float], Optional[float]]]
    #: 0-100, for the current job.
    progress: Optional[float]
    #: Expected end of the current job, epoch seconds.
    eta: Optional[float]
    job_id: Optional[int]
    #: When the fleet received it.
    last_seen: float
    message: str = ""


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a listing shows: each condition that is not None must hold."""

    states: Optional[frozenset[JobState]] = None
    member_id: Optional[int] = None
    #: Submitted at or after, epoch seconds.
    since: Optional[float] = None
    #: Submitted before, epoch seconds.
    until: Optional[float] = None


@dataclass(frozen=True)
class JobPage:
    """One page of a job listing in id order; ``next_after`` (its last id) asks for the next, or is None."""

    jobs: list[Job]
    next_after: Optional[int]


K = TypeVar("K", int, str)


@dataclass(frozen=True)
class Page(Generic[T, K]):
    """One page of a listing in key order; ``next_after`` (its last key) asks for the next, or is None."""

    items: list[T]
    next_after: Optional[K]


# -- what requests ask for, checked at the HTTP edge (fleet.api.shapes) and given to the service --


class Keep(Enum):
    """A partial update's "leave this as it is", where None is itself a value one may set."""

    KEEP = "keep"


KEEP = Keep.KEEP


def asked_changes(changes: Any, *, besides: Collection[str] = ()) -> dict[str, Any]:
    """The fields of a ``...Changes`` record that ask for a change, by name, but for those ``besides``.

    Each such field's default (None, or KEEP where None is a value) means "leave it"; any other value
    is asked for.
    """
    return {
        f.name: getattr(changes, f.name)
        for f in fields(changes)
        if f.name not in besides and getattr(changes, f.name) is not f.default
    }


@dataclass(frozen=True)
class PastJob:
    """A print that already happened, as a lab's history brings it in (see ``Store.record_past_jobs``)."""

    member_id: int
    printer_id: str
    #: Done, failed or cancelled.
    outcome: JobState
    file_sha256: str
    filename: str
    size_bytes: int
    material: Optional[str]
    analysis: Mapping[str, Any]
    submitted_at: float
    started_at: float
    finished_at: float


@dataclass(frozen=True)
class PrinterSpec:
    """What a printer can print, as a manager registers it or its node enrolls it."""

    volume: Box
    nozzle_diameter: float = 0.4
    #: Upper-case, such as PLA; None when no material is loaded.
    material: Optional[str] = None


@dataclass(frozen=True)
class NewPrinter:
    """A printer a manager registers by hand."""

    id: str
    name: str
    spec: PrinterSpec
    restricted: bool = False


@dataclass(frozen=True)
class PrinterChanges:
    """A printer's fields to change; None (KEEP for material, which may be cleared) leaves one as it is."""

    name: Optional[str] = None
    material: Union[Optional[str], Keep] = KEEP
    nozzle_diameter: Optional[float] = None
    volume: Optional[Box] = None
    restricted: Optional[bool] = None
    #: True takes the printer out of the pool, False puts it back.
    maintenance: Optional[bool] = None


@dataclass(frozen=True)
class MemberChanges:
    """A member's fields to change; None (KEEP for requires_approval: None follows the lab) keeps one."""

    role: Optional[Role] = None
    requires_approval: Union[Optional[bool], Keep] = KEEP
    active: Optional[bool] = None


@dataclass(frozen=True)
class LabSettingsChanges:
    """The lab settings to change; None leaves one as it is. ``rules`` names only the options to change."""

    approval_required: Optional[bool] = None
    max_upload_bytes: Optional[int] = None
    max_copies: Optional[int] = None
    fair_share_half_life_s: Optional[float] = None
    currency: Optional[str] = None
    time_zone: Optional[str] = None
    snapshot_max_bytes: Optional[int] = None
    snapshot_retention_days: Optional[int] = None
    rules: Optional[Mapping[str, Any]] = None
