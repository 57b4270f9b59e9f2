"""The API's JSON shapes for the fleet's records."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Optional

from ..app.enrollment import Enrollment
from ..errors import Invalid
from ..models import Job, JobEvent, LiveStatus, Member, Printer, Role
from ..scheduler import Explanation


def parse_json_object(data: bytes) -> dict[str, Any]:
    """A request body as a JSON object, refusing what would fail past the edge with a clear error.

    JSON allows, and Python's parser takes, what the fleet cannot keep or send back: ``NaN`` and
    ``Infinity`` (no JSON number), unpaired surrogates and NUL characters in strings (no database
    stores them), and nesting deep enough to exhaust the parser.
    """
    try:
        body = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise Invalid("the request body must be UTF-8 JSON") from None
    except RecursionError:
        raise Invalid("the request body is nested too deeply") from None
    except ValueError as exc:
        raise Invalid(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Invalid("the request body must be a JSON object")
    pending: list[tuple[str, Any]] = [("", body)]
    while pending:  # a loop, not recursion: the parser took the nesting, so must this
        where, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, f"a key in {where}" if where else "a key")
                pending.append((f"{where}.{key}" if where else key, item))
        elif isinstance(value, list):
            pending.extend((f"{where}[{n}]", item) for n, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, where)
    return body


def _no_constant(name: str) -> Any:
    raise Invalid(f"the request body holds {name}, which is not a JSON number")


def _check_text(text: str, where: str) -> None:
    """Names the field, never echoes the text: it may be a password."""
    if "\0" in text:
        raise Invalid(f"{where} must not hold a NUL character", field=where)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(
            f"{where} is not valid Unicode text (it holds an unpaired surrogate)", field=where
        ) from None


def iso(ts: Optional[float]) -> Optional[str]:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def member_json(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "role": member.role.value,
        "requires_approval": member.requires_approval,
        "active": member.active,
        "created_at": iso(member.created_at),
    }


def printer_json(printer: Printer, live: Optional[LiveStatus] = None) -> dict[str, Any]:
    body = {
        "id": printer.id,
        "name": printer.name,
        "state": printer.state.value,
        "volume": printer.volume.to_dict(),
        "nozzle_diameter": printer.nozzle_diameter,
        "material": printer.material,
        "restricted": printer.restricted,
        "current_job_id": printer.current_job_id,
        "last_seen": iso(printer.last_seen),
    }
    if live is not None:
        body["live"] = live_json(live)
    return body


def live_json(live: LiveStatus) -> dict[str, Any]:
    return {
        "node_state": live.node_state,
        "temperatures": {
            name: {"actual": actual, "target": target} for name, (actual, target) in live.temperatures.items()
        },
        "progress": live.progress,
        "eta": iso(live.eta),
        "job_id": live.job_id,
        "last_seen": iso(live.last_seen),
        "message": live.message,
    }


def enrollment_json(enrollment: Enrollment) -> dict[str, Any]:
    return {
        "printer_id": enrollment.printer.id,
        "token": enrollment.token,
        "mqtt": {
            "host": enrollment.mqtt.host,
            "port": enrollment.mqtt.port,
            "username": enrollment.mqtt_username,
            "password": enrollment.mqtt_password,
            "tls": enrollment.mqtt.tls,
        },
    }


def analysis_summary(analysis: dict[str, Any]) -> dict[str, Any]:
    """The analysis without thumbnail data (served separately), for listings."""
    summary = dict(analysis)
    thumbs = summary.pop("thumbnails", None) or []
    summary["thumbnails"] = [{k: v for k, v in t.items() if k != "data"} for t in thumbs]
    return summary


def job_json(job: Job, viewer: Member, *, member_name: Optional[str] = None) -> dict[str, Any]:
    """A job as ``viewer`` may see it: other members' file names and notes are private."""
    own = viewer.role is Role.MANAGER or viewer.id == job.member_id
    body: dict[str, Any] = {
        "id": job.id,
        "member_id": job.member_id,
        "state": job.state.value,
        "priority": job.priority,
        "material": job.material,
        "printer_id": job.printer_id,
        "submitted_at": iso(job.submitted_at),
        "updated_at": iso(job.updated_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "estimated_time_s": job.analysis.get("estimated_time_s") or job.analysis.get("own_time_estimate_s"),
    }
    if member_name is not None:
        body["member_name"] = member_name
    if own:
        body.update(
            filename=job.filename,
            note=job.note,
            size_bytes=job.size_bytes,
            file_sha256=job.file_sha256,
            analysis=analysis_summary(job.analysis),
        )
    return body


def event_json(event: JobEvent) -> dict[str, Any]:
    return {
        "at": iso(event.at),
        "from": event.from_state.value if event.from_state else None,
        "to": event.to_state.value,
        "actor": event.actor,
        "reason": event.reason,
    }


def explanation_json(explanation: Optional[Explanation]) -> Optional[dict[str, Any]]:
    if explanation is None:
        return None
    return {
        "position": explanation.position,
        "reason": explanation.reason.value,
        "message": explanation.message,
        "estimated_start": iso(explanation.estimated_start),
        "compatible_printers": list(explanation.compatible_printers),
    }
