"""Jobs: the record as each viewer may see it, its analysis, history and place in the queue; the
bodies and queries that act on jobs."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, ClassVar, Optional

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema

from ... import models
from ...app.intake import MAX_PLATE, plate_from_form
from ...errors import Invalid
from ...gcode import results
from ...scheduler import Explanation as Explained
from ...scheduler import WaitReason
from ...states import JobState
from .base import DEFAULT_PAGE as DEFAULT_PAGE  # the page sizes, also where job listings' users look
from .base import MAX_PAGE as MAX_PAGE
from .base import Box, IdCursor, InputModel, Maybe, OutputModel, PageLimit, Timestamp
from .economy import Cost


class Finding(OutputModel):
    line: int
    command: str
    severity: results.Severity
    rule: str
    message: str


class Thumbnail(OutputModel):
    """A preview the slicer embedded; ``data`` (base64) only where the whole analysis is sent."""

    width: int
    height: int
    format: str = Field(description="PNG, JPG or QOI")
    data: Optional[str] = Field(default=None, description="The image, base64")

    omittable: ClassVar[frozenset[str]] = frozenset({"data"})


class Slicer(OutputModel):
    name: str
    version: Optional[str]


class Analysis(OutputModel):
    """What the fleet read from a G-code file: the slicer's header and the moves.

    Every key has a default: a job stored by an older fleet may lack the newer ones.
    """

    slicer: Optional[Slicer] = None
    flavour: Optional[str] = None
    estimated_time_s: Optional[float] = Field(default=None, description="The slicer's own estimate")
    own_time_estimate_s: Optional[float] = Field(default=None, description="The fleet's, from the moves")
    best_time_s: Optional[float] = None
    filament_length_mm: Optional[float] = None
    filament_weight_g: Optional[float] = None
    material: Optional[str] = None
    nozzle_diameter: Optional[float] = None
    layer_height: Optional[float] = None
    filament_diameter: Optional[float] = None
    thumbnails: list[Thumbnail] = []
    bounds: Optional[Box] = Field(default=None, description="Every extruding move")
    model_bounds: Optional[Box] = Field(default=None, description="The model alone")
    line_count: Optional[int] = None
    size_bytes: Optional[int] = None
    findings: list[Finding] = []
    findings_suppressed: int = 0
    bed_temperature_c: Optional[float] = Field(
        default=None, description="The hottest bed the file asks for, °C; null: it never heats the bed"
    )
    tools: int = Field(default=1, description="Tools (extruders) the file uses: its highest T index + 1")
    chamber_temperature_c: Optional[float] = Field(
        default=None,
        description="The hottest chamber the file asks for (M141/M191), °C; null: it needs no heated chamber",
    )
    refused: bool = False
    estimated_cost: Maybe[Cost] = Field(
        default=None,
        description="What it should cost if it prints to the end, at today's prices (in the answers to "
        "an upload; a job's own is at /jobs/{job_id}/cost)",
    )

    omittable: ClassVar[frozenset[str]] = frozenset({"estimated_cost"})

    @classmethod
    def of(cls, analysis: results.Analysis) -> Analysis:
        """The whole analysis of an upload, thumbnails included."""
        return cls.model_validate(analysis.to_dict())

    @classmethod
    def stored(cls, data: dict[str, Any]) -> Analysis:
        """A job's stored analysis, thumbnails without their data (served by the thumbnail route)."""
        thumbs = data.get("thumbnails") or []
        return cls.model_validate(
            {**data, "thumbnails": [{k: v for k, v in t.items() if k != "data"} for t in thumbs]}
        )

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["thumbnails"] = [t.to_json() for t in self.thumbnails]  # without data where it is unset
        if self.estimated_cost is not None:
            data["estimated_cost"] = self.estimated_cost.to_json()
        return data


class Explanation(OutputModel):
    """Why a waiting job stands where it does."""

    position: Optional[int] = Field(description="1-based place in the queue")
    reason: WaitReason
    message: str
    estimated_start: Optional[Timestamp]
    compatible_printers: list[str]

    @classmethod
    def of(cls, explanation: Optional[Explained]) -> Optional[Explanation]:
        if explanation is None:
            return None
        return cls(
            position=explanation.position,
            reason=explanation.reason,
            message=explanation.message,
            estimated_start=explanation.estimated_start,
            compatible_printers=list(explanation.compatible_printers),
        )


class Event(OutputModel):
    """One step of a job's history."""

    at: Timestamp
    from_state: Optional[JobState] = Field(alias="from")
    to: JobState
    actor: str = Field(description='Who: "member:3", "manager:1", "printer:mini-1", "system"')
    reason: str

    @classmethod
    def of(cls, event: models.JobEvent) -> Event:
        return cls.model_validate(
            {
                "at": event.at,
                "from": event.from_state,
                "to": event.to_state,
                "actor": event.actor,
                "reason": event.reason,
            }
        )


class Job(OutputModel):
    """A job as the viewer may see it: another member's omits filename, note, size, hash and analysis."""

    id: int
    member_id: int
    member_name: Maybe[str] = Field(default=None, description="In the queue")
    state: JobState
    priority: int
    material: Optional[str]
    colour: Optional[str] = Field(default=None, description="The colour asked for; null: any colour")
    printer_id: Optional[str]
    submitted_at: Timestamp
    updated_at: Timestamp
    started_at: Optional[Timestamp]
    finished_at: Optional[Timestamp]
    estimated_time_s: Optional[float]
    filename: Maybe[str] = None
    note: Maybe[str] = None
    size_bytes: Maybe[int] = None
    file_sha256: Maybe[str] = None
    analysis: Maybe[Analysis] = None
    explanation: Optional[Explanation] = Field(default=None, description="Waiting jobs, in the queue")
    history: Maybe[list[Event]] = Field(
        default=None,
        description="In the answer for one job: the first page of its history, oldest first",
    )
    history_next_cursor: Optional[str] = Field(
        default=None,
        description="With history: the cursor for GET /jobs/{id}/history's next page; null: that was all",
    )

    omittable: ClassVar[frozenset[str]] = frozenset(
        {
            "member_name",
            "filename",
            "note",
            "size_bytes",
            "file_sha256",
            "analysis",
            "explanation",
            "history",
            "history_next_cursor",
        }
    )

    @classmethod
    def of(cls, job: models.Job, viewer: models.Member, **extra: Any) -> Job:
        """``job`` as ``viewer`` sees it; ``extra`` sets member_name, explanation or history."""
        analysis = Analysis.stored(job.analysis)
        fields: dict[str, Any] = dict(
            id=job.id,
            member_id=job.member_id,
            state=job.state,
            priority=job.priority,
            material=job.material,
            colour=job.colour,
            printer_id=job.printer_id,
            submitted_at=job.submitted_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            estimated_time_s=analysis.estimated_time_s or analysis.own_time_estimate_s,
            **extra,
        )
        if viewer.role is models.Role.MANAGER or viewer.id == job.member_id:
            fields.update(
                filename=job.filename,
                note=job.note,
                size_bytes=job.size_bytes,
                file_sha256=job.file_sha256,
                analysis=analysis,
            )
        return cls(**fields)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        if self.analysis is not None:
            data["analysis"] = self.analysis.to_json()
        return data


class Jobs(OutputModel):
    """One page of a listing, oldest first; ``next_cursor`` fetches the next (null on the last page)."""

    jobs: list[Job]
    next_cursor: Optional[str] = Field(description="Send as ?cursor= for the next page; null: no more")

    def to_json(self) -> dict[str, Any]:
        return {"jobs": [j.to_json() for j in self.jobs], "next_cursor": self.next_cursor}


class History(OutputModel):
    """One page of a job's history, oldest first; ``next_cursor`` fetches the next (null on the last)."""

    events: list[Event]
    next_cursor: Optional[str] = Field(description="Send as ?cursor= for the next page; null: no more")


class Queue(OutputModel):
    queue: list[Job]

    def to_json(self) -> dict[str, Any]:
        return {"queue": [j.to_json() for j in self.queue]}


class SubmissionAnswer(OutputModel):
    jobs: list[Job]
    analysis: Analysis

    def to_json(self) -> dict[str, Any]:
        return {"jobs": [j.to_json() for j in self.jobs], "analysis": self.analysis.to_json()}


class Reason(InputModel):
    """The reason a person gives for cancelling or rejecting; the body is optional."""

    reason: str = ""


class Priority(InputModel):
    messages: ClassVar[dict[str, str]] = {
        "priority": "priority must be a whole number from -100 to 100 (0 is normal)",
    }

    priority: int = Field(ge=-100, le=100, description="0 is normal; higher goes first")


STATES = "|".join(s.value for s in JobState)


def _states(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    try:
        return frozenset(JobState(s) for s in value.split(","))
    except ValueError:
        allowed = ", ".join(s.value for s in JobState)
        raise Invalid(f"state must be one or more of: {allowed}", field="state") from None


def _moment(field: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None:
            raise Invalid(f"{field} must be an ISO 8601 date-time, such as 2026-01-31T18:00:00Z", field=field)
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()

    return BeforeValidator(check)


class MyJobsQuery(PageLimit):
    """The query of a job listing: filters, and which page."""

    state: Annotated[
        Optional[frozenset[JobState]],
        BeforeValidator(_states),
        WithJsonSchema(
            {"type": "string", "pattern": f"^({STATES})(,({STATES}))*$", "description": "Comma-separated"}
        ),
    ] = None
    since: Annotated[
        Optional[float],
        _moment("since"),
        WithJsonSchema({"type": "string", "format": "date-time", "description": "Submitted at or after"}),
    ] = None
    until: Annotated[
        Optional[float],
        _moment("until"),
        WithJsonSchema({"type": "string", "format": "date-time", "description": "Submitted before"}),
    ] = None
    cursor: IdCursor = None

    def job_filter(self, member_id: Optional[int]) -> models.JobFilter:
        return models.JobFilter(states=self.state, member_id=member_id, since=self.since, until=self.until)


class JobsQuery(MyJobsQuery):
    messages: ClassVar[dict[str, str]] = {
        **MyJobsQuery.messages,
        "member_id": "member_id must be a whole number of at most 18 digits",
    }

    member_id: Maybe[Annotated[int, Field(gt=-(10**18), lt=10**18)]] = Field(
        default=None, description="Managers: any member; members: their own"
    )


def _whole_copies(value: Any) -> Any:
    if value == "":
        return 1
    text = value.strip() if isinstance(value, str) else ""
    digits = text[1:] if text.startswith("-") else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise Invalid("copies must be a whole number", field="copies")
    return int(text)


class AnalyzeForm(InputModel):
    """The form fields beside the file of ``POST /analyze``."""

    model_config = ConfigDict(strict=False, extra="ignore", frozen=True)

    material: Maybe[str] = Field(default=None, description="Overrides the file's; such as PLA")
    plate: Annotated[
        Optional[int],
        BeforeValidator(plate_from_form),
        WithJsonSchema(
            {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_PLATE,
                "description": "For a sliced 3MF file (.gcode.3mf) with several plates: the plate to "
                "print. Without it such a file is refused with 422, its details.plates naming the plates",
            }
        ),
    ] = None


class SubmitForm(AnalyzeForm):
    """The form fields beside the file of ``POST /jobs``; the lab's rules check the values."""

    copies: Annotated[
        int,
        BeforeValidator(_whole_copies),
        WithJsonSchema({"type": "integer", "minimum": 1, "default": 1, "description": "One job each"}),
    ] = 1
    note: str = Field(default="", description="For the lab's managers; at most 500 characters")
    colour: Maybe[str] = Field(
        default=None,
        description="A colour's name such as black: the job goes only to a printer with a spool of "
        "that colour (and its material) loaded; absent: any colour",
    )
