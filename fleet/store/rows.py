"""Conversions between table rows and the records of :mod:`fleet.models`."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Row

from ..geometry import Box
from ..models import EnrollmentCode, Job, JobEvent, Member, Printer, PrinterCredentials, Role
from ..states import JobState, PrinterState


def dumps(value: Any) -> str:
    """Compact, stable JSON for a TEXT column."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def member(row: Row[Any]) -> Member:
    return Member(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        requires_approval=None if row.requires_approval is None else bool(row.requires_approval),
        active=bool(row.active),
        created_at=row.created_at,
    )


def printer(row: Row[Any]) -> Printer:
    return Printer(
        id=row.id,
        name=row.name,
        state=PrinterState(row.state),
        volume=Box(row.min_x, row.min_y, row.min_z, row.max_x, row.max_y, row.max_z),
        nozzle_diameter=row.nozzle_diameter,
        material=row.material,
        restricted=bool(row.restricted),
        current_job_id=row.current_job_id,
        last_seen=row.last_seen,
        created_at=row.created_at,
    )


def job(row: Row[Any]) -> Job:
    return Job(
        id=row.id,
        member_id=row.member_id,
        state=JobState(row.state),
        priority=row.priority,
        file_sha256=row.file_sha256,
        filename=row.filename,
        size_bytes=row.size_bytes,
        material=row.material,
        note=row.note,
        analysis=json.loads(row.analysis),
        printer_id=row.printer_id,
        submitted_at=row.submitted_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def event(row: Row[Any]) -> JobEvent:
    return JobEvent(
        id=row.id,
        job_id=row.job_id,
        at=row.at,
        from_state=None if row.from_state is None else JobState(row.from_state),
        to_state=JobState(row.to_state),
        actor=row.actor,
        reason=row.reason,
        data=json.loads(row.data),
    )


def volume_columns(box: Box) -> dict[str, float]:
    """A build volume as the printers table's min_x ... max_z columns."""
    return {key: float(value) for key, value in box.to_dict().items()}


def enrollment_code(row: Row[Any]) -> EnrollmentCode:
    return EnrollmentCode(
        code_hash=row.code_hash,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        used_by_printer=row.used_by_printer,
    )


def credentials(row: Row[Any]) -> PrinterCredentials:
    return PrinterCredentials(
        printer_id=row.printer_id,
        mqtt_password_hash=row.mqtt_password_hash,
        http_token_hash=row.http_token_hash,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
