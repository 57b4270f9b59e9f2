"""Schemathesis against the fleet's OpenAPI document, as the fleet serves it, on the WSGI app.

Every operation of ``/api/v1/openapi.json`` is called with generated requests, valid and invalid
(schemathesis' positive and negative modes), as a manager and as a member, with path parameters that
are random or name things that exist. Each response must be no server error, have a documented
status code and content type, and a body (and headers) that match the document.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fleet.api import create_app
from fleet.api.openapi import openapi_document
from fleet.config import FleetConfig
from fleet.gcode.generate import generate_box
from fleet.geometry import Box
from fleet.http_protocol import BrokerAddress
from fleet.models import NewPrinter, PrinterSpec, Role
from fleet.server import Fleet

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis 4.32+ needs Python 3.11 or newer")

from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
#: Examples per operation, role and kind of path parameters: the whole file stays well under a minute.
#: ``CROWDFAB_API_FUZZ_EXAMPLES=200`` searches longer.
EXAMPLES = int(os.environ.get("CROWDFAB_API_FUZZ_EXAMPLES", "25"))
OPERATIONS = sorted(
    f"{method.upper()} {path}" for path, methods in openapi_document()["paths"].items() for method in methods
)


@dataclass
class Lab:
    """A fleet with something in it: members, a printer, jobs; and the tokens to act as each role."""

    fleet: Fleet
    app: Any
    tokens: dict[str, str]
    known: dict[str, Any]


def make_lab(data_dir: Path) -> Lab:
    fleet = Fleet.open(FleetConfig(data_dir=data_dir))
    service = fleet.app
    service.enrollment.node_mqtt = BrokerAddress("fleet.lab", 18830, tls=False)
    manager, manager_token = service.members.add_member("ada", Role.MANAGER)
    member, member_token = service.members.add_member("bob", Role.MEMBER)
    other, _ = service.members.add_member("cy", Role.MEMBER)
    printer = service.printers.add_printer(
        manager,
        NewPrinter("lab-printer", "lab-printer", PrinterSpec(Box(0, 0, 0, 250, 210, 220))),
    )
    part = generate_box(10, 10, 0.6, origin=(40.0, 40.0)).encode()
    job = service.intake.submit_job(member, io.BytesIO(part), filename="part.gcode").jobs[0]
    service.intake.submit_job(other, io.BytesIO(part), filename="other.gcode")
    app = create_app(service, {"SECRET_KEY": "x" * 32})
    app.testing = False  # errors go through the fleet's handlers, as in production
    known = {"job_id": job.id, "member_id": other.id, "printer_id": printer.id}
    return Lab(fleet, app, {"manager": manager_token, "member": member_token}, known)


def run_operation(lab: Lab, role: str, label: str, fixed: bool) -> None:
    """Generated requests for one operation, each answered and checked; raises on the first finding."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", lab.app)
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    params = {k: v for k, v in lab.known.items() if "{" + k + "}" in path} if fixed else None
    strategies = [
        operation.as_strategy(mode, path_parameters=params)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    headers = {"Authorization": f"Bearer {lab.tokens[role]}"}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


@pytest.mark.parametrize("role", ["manager", "member"])
def test_every_operation_answers_as_documented(tmp_path: Path, role: str) -> None:
    findings: list[str] = []
    for n, label in enumerate(OPERATIONS):
        for fixed in (False, True):
            if fixed and "{" not in label:
                continue
            lab = make_lab(tmp_path / f"{n}-{fixed}")
            try:
                run_operation(lab, role, label, fixed)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # schemathesis' groups of failures too: all of them, to fix at once
                findings.append(f"{label} ({'known' if fixed else 'random'} ids): {exc}")
            finally:
                lab.fleet.close()
    assert not findings, "\n\n".join(findings)


BOX = '{"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 100, "max_y": 100, "max_z": 100}'
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/printers", '{"id": "p9", "name": "\\ud800", "volume": ' + BOX + "}", "name"),
        ("PUT", "/members/{me}/password", '{"password": "\\udfff\\udfff\\udfff\\udfff\\udfff"}', "password"),
        ("POST", "/jobs/{job}/cancel", '{"reason": "nul \\u0000 inside"}', "reason"),
        ("POST", "/printers", '{"id": "p9", "volume": {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": '
         + "1" * 400 + ', "max_y": 1, "max_z": 1}}', "volume.max_x"),
        ("PATCH", "/settings", '{"fair_share_half_life_s": Infinity}', None),
        ("POST", "/enroll-codes", '{"ttl_s": NaN}', None),
        ("POST", "/members", DEEP, None),
        ("POST", "/jobs/{job}/reject", "null", None),
    ],
)  # fmt: skip
def test_hostile_bodies_get_a_clear_documented_error(
    tmp_path: Path, method: str, path: str, body: str, field: str | None
) -> None:
    """What schemathesis does not send (it keeps to valid JSON text): each is a 422 naming the problem."""
    lab = make_lab(tmp_path / "fleet")
    try:
        client = lab.app.test_client()
        url = "/api/v1" + path.format(me=1, job=lab.known["job_id"])
        headers = {"Authorization": f"Bearer {lab.tokens['manager']}", "Content-Type": "application/json"}
        response = client.open(url, method=method, data=body, headers=headers)
        assert response.status_code == 422, response.get_data(as_text=True)[:300]
        answer = response.get_json()
        assert answer["error"] == "invalid" and answer["message"]
        assert answer.get("field") == field
        template = path.replace("{me}", "{member_id}").replace("{job}", "{job_id}")
        assert "422" in openapi_document()["paths"][template][method.lower()]["responses"]
    finally:
        lab.fleet.close()


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/" + "9" * 30,
        "/jobs/9223372036854775808/cancel",
        "/members/" + "1" * 25 + "/printers/lab-printer",
        "/jobs?member_id=" + "7" * 25,
        "/jobs?cursor=" + "9" * 25,
        "/jobs/mine?limit=" + "9" * 25,
    ],
)
def test_numbers_beyond_the_database_are_refused_not_crashed_on(tmp_path: Path, path: str) -> None:
    lab = make_lab(tmp_path / "fleet")
    try:
        client = lab.app.test_client()
        headers = {"Authorization": f"Bearer {lab.tokens['manager']}"}
        method = "POST" if path.endswith("/cancel") else "PUT" if "/printers/" in path else "GET"
        response = client.open("/api/v1" + path, method=method, headers=headers)
        assert response.status_code in (404, 422), response.get_data(as_text=True)[:300]
        assert response.get_json()["message"]
    finally:
        lab.fleet.close()
