"""/api/v1 for the lab as a whole: liveness, this document, metrics, who am I, the lab's settings."""

from __future__ import annotations

from flask import Response, jsonify

from .blueprint import PUBLIC, body, me, service, spec
from .shapes import lab as shape
from .shapes.members import Member

#: A JSON object, without a model: the document describes itself.
OBJECT = {"content": {"application/json": {"schema": {"type": "object"}}}}


@spec.route("GET", "/health", "Liveness", shape.Health, security=PUBLIC)
def health() -> Response:
    return jsonify(shape.Health(status="ok").to_json())


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
