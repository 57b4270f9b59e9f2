"""The API's JSON for the fleet's records, for callers outside the API (the CLI's local mode).

The shapes themselves are the models of :mod:`fleet.api.shapes`; these functions only write them.
"""

from __future__ import annotations

from typing import Any, Optional

from ..models import Job, LiveStatus, Member
from ..scheduler import Explanation
from .shapes.base import iso, parse_json_object
from .shapes.jobs import Explanation as ExplanationShape
from .shapes.jobs import Job as JobShape
from .shapes.printers import LiveStatus as LiveStatusShape

__all__ = ["explanation_json", "iso", "job_json", "live_json", "parse_json_object"]


def job_json(job: Job, viewer: Member, *, member_name: Optional[str] = None) -> dict[str, Any]:
    """A job as ``viewer`` may see it: other members' file names and notes are private."""
    extra = {} if member_name is None else {"member_name": member_name}
    return JobShape.of(job, viewer, **extra).to_json()


def explanation_json(explanation: Optional[Explanation]) -> Optional[dict[str, Any]]:
    shape = ExplanationShape.of(explanation)
    return None if shape is None else shape.to_json()


def live_json(live: LiveStatus) -> dict[str, Any]:
    return LiveStatusShape.of(live).to_json()
