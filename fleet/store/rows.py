"""Conversions between table rows and the records of :mod:`fleet.models`."""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any, TypeVar, cast

from sqlalchemy.engine import Row

from ..geometry import Box
from ..lending import decode_lending
from ..models import EnrollmentCode, Job, JobEvent, Member, Printer, PrinterCredentials, Role
from ..states import JobState, PrinterState

R = TypeVar("R")


def dumps(value: Any) -> str:
    """Compact, stable JSON for a TEXT column."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@functools.cache
def _field_names(record: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(record))


def _record(record: type[R], row: Row[Any], **converted: Any) -> R:
    """A ``record`` from the ``row``'s columns of its fields' names, but for the ``converted`` ones.

    The tables' columns are named after the records' fields; only what a column stores differently
    (an enum's value, a 0/1 flag, JSON text) is spelled out by the caller.
    """
    copied = {name: getattr(row, name) for name in _field_names(cast(type, record)) if name not in converted}
    return record(**copied, **converted)


def member(row: Row[Any]) -> Member:
    return _record(
        Member,
        row,
        role=Role(row.role),
        requires_approval=None if row.requires_approval is None else bool(row.requires_approval),
        active=bool(row.active),
    )


def printer(row: Row[Any]) -> Printer:
    return _record(
        Printer,
        row,
        state=PrinterState(row.state),
        volume=Box(row.min_x, row.min_y, row.min_z, row.max_x, row.max_y, row.max_z),
        restricted=bool(row.restricted),
        heated_bed=None if row.heated_bed is None else bool(row.heated_bed),
        heated_chamber=None if row.heated_chamber is None else bool(row.heated_chamber),
        lending=None if row.lending is None else decode_lending(json.loads(row.lending)),
    )


def job(row: Row[Any]) -> Job:
    return _record(Job, row, state=JobState(row.state), analysis=json.loads(row.analysis))


def event(row: Row[Any]) -> JobEvent:
    return _record(
        JobEvent,
        row,
        from_state=None if row.from_state is None else JobState(row.from_state),
        to_state=JobState(row.to_state),
        data=json.loads(row.data),
    )


def volume_columns(box: Box) -> dict[str, float]:
    """A build volume as the printers table's min_x ... max_z columns."""
    return {key: float(value) for key, value in box.to_dict().items()}


def enrollment_code(row: Row[Any]) -> EnrollmentCode:
    return _record(EnrollmentCode, row)


def credentials(row: Row[Any]) -> PrinterCredentials:
    return _record(PrinterCredentials, row)
