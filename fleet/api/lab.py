"""/api/v1 for the lab as a whole: health, this document, metrics, who am I, the lab's settings."""

from __future__ import annotations

from flask import Response, jsonify

from ..app.health import DOWN
from ..errors import Unavailable
from .blueprint import PUBLIC, body, me, service, spec
from .shapes import lab as shape
from .shapes.members import Member

#: A JSON object, without a model: the document describes itself.
OBJECT = {"content": {"application/json": {"schema": {"type": "object"}}}}


@spec.route(
    "GET",
    "/health",
    "Whether this fleet process can serve: its database and its broker answer, and it is not stopping "
    "(for a load balancer's health check); 503, naming what is down, otherwise",
    shape.Health,
    security=PUBLIC,
    errors=(503,),
)
def health() -> Response:
    report = service().health.report()
    parts = {"database": report.database, "broker": report.broker}
    if report.status == "draining":
        raise Unavailable("this fleet process is stopping; another one serves", details=parts)
    if not report.ok:
        down = [name for name, state in parts.items() if state == DOWN]
        raise Unavailable(f"this fleet process cannot reach its {' and its '.join(down)}", details=parts)
    return jsonify(shape.Health.copied(report, duties=list(report.duties)).to_json())


@spec.route("GET", "/openapi.json", "This document", OBJECT, security=PUBLIC)
def openapi() -> Response:
    return jsonify(spec.document())


@spec.route(
    "GET",
    "/metrics",
    "The fleet's counters and latency histograms since it started (managers); see docs/operations.md",
    shape.Metrics,
    errors=(401, 403),
)
def metrics() -> Response:
    service().identity.require_manager(me())
    return jsonify(shape.Metrics.model_validate(service().metrics.snapshot()).to_json())


@spec.route("GET", "/me", "The member this token belongs to", Member, errors=(401,))
def whoami() -> Response:
    return jsonify(Member.of(me()).to_json())


@spec.route("GET", "/settings", "The lab's settings and G-code rules", shape.LabSettings, errors=(401,))
def get_settings() -> Response:
    return jsonify(shape.LabSettings.of(service().lab.settings()).to_json())


@spec.route(
    "PATCH",
    "/settings",
    "Change the lab's settings (managers); a partial object changes only what it names",
    shape.LabSettings,
    errors=(401, 403, 422),
    body=shape.SettingsChanges,
)
def update_settings() -> Response:
    service().identity.require_manager(me())  # who may, before what they sent
    changes = body(shape.SettingsChanges).value()
    return jsonify(shape.LabSettings.of(service().lab.update(me(), changes)).to_json())
