"""The API's shapes: what a body becomes (typed values for the service), what it may not be, and how
the OpenAPI document describes them."""

from __future__ import annotations

from typing import Any

import pytest

from fleet import models
from fleet.api.openapi import openapi_document
from fleet.api.shapes import jobs, lab, members, printers
from fleet.errors import Invalid
from fleet.geometry import Box
from fleet.http_protocol import EnrollRequest
from fleet.protocol import Capabilities

VOLUME = {"min_x": 0, "min_y": -4, "min_z": 0, "max_x": 180, "max_y": 180, "max_z": 180}
BOX = Box(0.0, -4.0, 0.0, 180.0, 180.0, 180.0)
SPEC = models.PrinterSpec(BOX, 0.4, None)


@pytest.mark.parametrize(
    ("shape", "body", "value"),
    [
        (printers.NewPrinter, {"id": "mini", "volume": VOLUME}, models.NewPrinter("mini", "mini", SPEC)),
        (
            printers.NewPrinter,
            {"id": "mk4", "name": " MK4 ", "volume": VOLUME, "material": "petg", "restricted": True},
            models.NewPrinter("mk4", "MK4", models.PrinterSpec(BOX, 0.4, "PETG"), True),
        ),
        (printers.PrinterChanges, {}, models.PrinterChanges()),
        (printers.PrinterChanges, {"material": None}, models.PrinterChanges(material=None)),
        (
            printers.PrinterChanges,
            {"volume": VOLUME, "nozzle_diameter": 0.6, "maintenance": True},
            models.PrinterChanges(volume=BOX, nozzle_diameter=0.6, maintenance=True),
        ),
        (
            printers.Enroll,
            {"name": "Prusa MK4", "code": "7KQP-M2XD-9HWC", "capabilities": {"volume": VOLUME}},
            EnrollRequest("7KQP-M2XD-9HWC", "Prusa MK4", Capabilities(BOX, 0.4, None)),
        ),
        (members.MemberChanges, {}, models.MemberChanges()),
        (members.MemberChanges, {"requires_approval": None}, models.MemberChanges(requires_approval=None)),
        (
            members.MemberChanges,
            {"role": "manager", "active": False},
            models.MemberChanges(role=models.Role.MANAGER, active=False),
        ),
        (
            lab.SettingsChanges,
            {"max_copies": 5, "rules": {"max_bed_c": 100}},
            models.LabSettingsChanges(max_copies=5, rules={"max_bed_c": 100}),
        ),
    ],
)
def test_a_body_becomes_the_typed_value_the_service_takes(shape: Any, body: dict, value: object) -> None:
    assert shape.parse(body).value() == value


@pytest.mark.parametrize(
    ("shape", "body", "field", "says"),
    [
        (printers.PrinterChanges, {"restricted": "yes"}, "restricted", "true or false"),
        (printers.PrinterChanges, {"colour": "red"}, "colour", "unknown printer field"),
        (printers.PrinterChanges, {"name": None}, "name", "null"),
        (printers.PrinterChanges, {"name": "  "}, "name", "1 to 80"),
        (printers.PrinterChanges, {"volume": None}, "volume", "null"),
        (printers.NewPrinter, {"volume": VOLUME}, "id", "required"),
        (printers.Enroll, {"name": "x", "code": "c", "capabilities": {"volume": VOLUME, "x": 1}},
         "capabilities.x", "unknown capability"),
        (members.MemberChanges, {"active": None}, "active", "null"),
        (members.MemberChanges, {"active": 1}, "active", "true or false"),
        (members.NewMember, {"name": "carol", "role": "owner"}, "role", "'member' or 'manager'"),
        (lab.SettingsChanges, {"max_copies": 5.0}, "max_copies", "whole number"),
        (lab.SettingsChanges, {"approval_required": "true"}, "approval_required", "true or false"),
        (jobs.Priority, {"priority": True}, "priority", "-100 to 100"),
        (jobs.Reason, {"reason": 7}, "reason", "string"),
    ],
)  # fmt: skip
def test_a_wrong_body_is_refused_naming_the_field(shape: Any, body: dict, field: str, says: str) -> None:
    with pytest.raises(Invalid) as refused:
        shape.parse(body)
    assert refused.value.field == field and says in refused.value.message
    assert refused.value.status == 422


def test_fields_one_may_leave_out_are_never_null_in_the_document() -> None:
    schemas = openapi_document()["components"]["schemas"]
    for name, prop in (
        ("PrinterChanges", "volume"),
        ("MemberChanges", "active"),
        ("SettingsChanges", "max_copies"),
        ("Job", "filename"),
        ("Job", "analysis"),
    ):
        described = schemas[name]["properties"][prop]
        assert "null" not in str(described), (name, prop, described)
    # and those that may be null say so
    assert {"type": "null"} in schemas["MemberChanges"]["properties"]["requires_approval"]["anyOf"]
    assert {"type": "null"} in schemas["Printer"]["properties"]["material"]["anyOf"]


def test_times_are_iso_8601_in_utc_on_the_wire() -> None:
    code = printers.EnrollCode(code="7KQP", expires_at=1_767_225_600.5)
    assert code.to_json() == {"code": "7KQP", "expires_at": "2026-01-01T00:00:00Z"}
    assert code.expires_at == 1_767_225_600.5  # epoch seconds inside the fleet
