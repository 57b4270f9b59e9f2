"""The OpenAPI 3 document of /api/v1, served at /api/v1/openapi.json; tests check it against the routes."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..lab import MAX_HALF_LIFE_S
from ..protocol import NodeState
from ..states import JobState, PrinterState

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def errors(*codes: int) -> dict[str, Any]:
    texts = {
        401: "No valid API token",
        403: "Not allowed for this member",
        404: "No such resource",
        409: "Not possible in the current state",
        413: "Upload larger than the lab's limit",
        422: "Invalid input; the message names the field, line or command",
        429: "Too many failed tokens or enrollment codes from this address; Retry-After says when to retry",
        503: "The fleet cannot do this now (no link to the printers, no broker); the message says why",
        507: "The fleet's disk is full; nothing of the upload was kept, and the same upload works once "
        "a manager frees space",
    }
    if 401 in codes:  # wherever a token or code is checked, failed ones are rate-limited
        codes = (*codes, 429)
    return {str(c): {"description": texts[c], "content": {JSON: {"schema": ref("Error")}}} for c in codes}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema}}}


def op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses, **extra}


def path_param(name: str, kind: str = "integer") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


#: The IETF httpapi draft's header: a retry of a submission whose answer was lost queues nothing twice.
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "A fresh random value (a UUID, say) for each new submission; 1 to 128 printable ASCII "
        'characters, bare or as a quoted string ("…"). Keys are per member and kept for 24 hours. '
        "Sending the same key with the same request again answers 201 with the jobs the first "
        "request made, creating nothing; the same key with another file, copies, material or note "
        "is refused with 422."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 130},
}

NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_NUM = {"type": ["number", "null"]}
NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

BOX = {
    "type": "object",
    "required": ["min_x", "min_y", "min_z", "max_x", "max_y", "max_z"],
    "properties": {k: {"type": "number"} for k in ("min_x", "min_y", "min_z", "max_x", "max_y", "max_z")},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string", "description": "What was wrong and what to do"},
            "field": {"type": "string"},
            "details": {},
        },
    },
    "Box": BOX,
    "Metrics": {
        "type": "object",
        "required": ["at", "started_at", "counters", "histograms"],
        "properties": {
            "at": {"type": "number", "description": "When this was read, epoch seconds"},
            "started_at": {"type": "number"},
            "counters": {"type": "object", "additionalProperties": {"type": "integer"}},
            "histograms": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["bounds_s", "counts", "count", "sum_s"],
                    "properties": {
                        "bounds_s": {"type": "array", "items": {"type": "number"}},
                        "counts": {
                            "type": "array",
                            "items": {"type": "integer"},
                            "description": "One count per bound, then one for anything above the last",
                        },
                        "count": {"type": "integer"},
                        "sum_s": {"type": "number"},
                    },
                },
            },
        },
    },
    "Member": {
        "type": "object",
        "required": ["id", "name", "role", "active"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "role": {"type": "string", "enum": ["member", "manager"]},
            "requires_approval": {"type": ["boolean", "null"]},
            "active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "Printer": {
        "type": "object",
        "required": ["id", "name", "state", "volume", "nozzle_diameter"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "state": {"type": "string", "enum": [s.value for s in PrinterState]},
            "volume": ref("Box"),
            "nozzle_diameter": {"type": "number"},
            "material": NULLABLE_STR,
            "restricted": {"type": "boolean"},
            "current_job_id": NULLABLE_INT,
            "last_seen": NULLABLE_TIME,
            "live": ref("LiveStatus"),
        },
    },
    "LiveStatus": {
        "type": "object",
        "description": "What the printer's node last reported; only while the fleet has heard from it since "
        "it started.",
        "required": ["node_state", "temperatures", "last_seen"],
        "properties": {
            "node_state": {
                "type": "string",
                "enum": [s.value for s in NodeState],
                "description": "The state as the node sees it (the printer's state is the fleet's view)",
            },
            "temperatures": {
                "type": "object",
                "description": "Heater name (tool0, bed …) → °C",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"actual": NULLABLE_NUM, "target": NULLABLE_NUM},
                },
            },
            "progress": {**NULLABLE_NUM, "description": "0-100, of the current job"},
            "eta": {**NULLABLE_TIME, "description": "Expected end of the current job"},
            "job_id": NULLABLE_INT,
            "last_seen": {"type": "string", "format": "date-time"},
            "message": {"type": "string"},
        },
    },
    "Enrollment": {
        "type": "object",
        "description": "A new printer's secrets, shown only this once: the node keeps them.",
        "required": ["printer_id", "token", "mqtt"],
        "properties": {
            "printer_id": {"type": "string"},
            "token": {"type": "string", "description": "The printer's HTTP token (job file downloads)"},
            "mqtt": {
                "type": "object",
                "required": ["host", "port", "username", "password", "tls"],
                "properties": {
                    "host": {"type": "string"},
                    "port": {"type": "integer"},
                    "username": {"type": "string", "description": "The printer id"},
                    "password": {"type": "string"},
                    "tls": {"type": "boolean"},
                },
            },
        },
    },
    "Finding": {
        "type": "object",
        "required": ["line", "command", "severity", "message"],
        "properties": {
            "line": {"type": "integer"},
            "command": {"type": "string"},
            "severity": {"type": "string"},
            "rule": {"type": "string"},
            "message": {"type": "string"},
        },
    },
    "Analysis": {
        "type": "object",
        "description": "What the fleet read from a G-code file: the slicer's header and the moves.",
        "properties": {
            "slicer": {"type": ["object", "null"]},
            "flavour": NULLABLE_STR,
            "estimated_time_s": NULLABLE_NUM,
            "own_time_estimate_s": NULLABLE_NUM,
            "filament_length_mm": NULLABLE_NUM,
            "filament_weight_g": NULLABLE_NUM,
            "material": NULLABLE_STR,
            "nozzle_diameter": NULLABLE_NUM,
            "layer_height": NULLABLE_NUM,
            "bounds": {"oneOf": [ref("Box"), {"type": "null"}]},
            "model_bounds": {"oneOf": [ref("Box"), {"type": "null"}]},
            "thumbnails": {"type": "array", "items": {"type": "object"}},
            "findings": {"type": "array", "items": ref("Finding")},
        },
    },
    "Explanation": {
        "type": "object",
        "required": ["reason", "message"],
        "properties": {
            "position": NULLABLE_INT,
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "estimated_start": NULLABLE_TIME,
            "compatible_printers": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "member_id", "state", "priority", "submitted_at"],
        "description": "Another member's job omits filename, note and analysis.",
        "properties": {
            "id": {"type": "integer"},
            "member_id": {"type": "integer"},
            "member_name": {"type": "string"},
            "state": {"type": "string", "enum": [s.value for s in JobState]},
            "priority": {"type": "integer"},
            "material": NULLABLE_STR,
            "printer_id": NULLABLE_STR,
            "submitted_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "started_at": NULLABLE_TIME,
            "finished_at": NULLABLE_TIME,
            "estimated_time_s": NULLABLE_NUM,
            "filename": {"type": "string"},
            "note": {"type": "string"},
            "size_bytes": {"type": "integer"},
            "file_sha256": {"type": "string"},
            "analysis": ref("Analysis"),
            "explanation": {"oneOf": [ref("Explanation"), {"type": "null"}]},
            "history": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "at": {"type": "string"},
                        "from": NULLABLE_STR,
                        "to": {"type": "string"},
                        "actor": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                },
            },
        },
    },
    "LabSettings": {
        "type": "object",
        "properties": {
            "approval_required": {"type": "boolean"},
            "max_upload_bytes": {"type": "integer"},
            "max_copies": {"type": "integer"},
            "fair_share_half_life_s": {"type": "number", "minimum": 3600, "maximum": MAX_HALF_LIFE_S},
            "rules": {"type": "object"},
        },
    },
}

JOB_ID = [path_param("job_id")]
PRINTER_ID = [path_param("printer_id", "string")]
MEMBER_ID = [path_param("member_id")]
JOBS = {"type": "object", "properties": {"jobs": {"type": "array", "items": ref("Job")}}}
STATE_QUERY = {
    "name": "state",
    "in": "query",
    "required": False,
    "description": "Comma-separated job states",
    "schema": {"type": "string"},
}
UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "copies": {"type": "integer", "minimum": 1, "default": 1},
                    "material": {"type": "string"},
                    "note": {"type": "string", "maxLength": 500},
                },
            }
        }
    },
}
#: An optional body with the reason a person gives; a body that is not a JSON object is a 422.
REASON = {
    "required": False,
    "content": {JSON: {"schema": {"type": "object", "properties": {"reason": {"type": "string"}}}}},
}
GRANTS = ok({"type": "object", "properties": {"printers": {"type": "array", "items": {"type": "string"}}}})

PATHS: dict[str, Any] = {
    "/health": {"get": op("Liveness", {"200": ok({"type": "object"})}, security=[])},
    "/openapi.json": {"get": op("This document", {"200": ok({"type": "object"})}, security=[])},
    "/metrics": {
        "get": op(
            "The fleet's counters and latency histograms since it started (managers); see docs/operations.md",
            {"200": ok(ref("Metrics")), **errors(401, 403)},
        )
    },
    "/me": {"get": op("The member this token belongs to", {"200": ok(ref("Member")), **errors(401)})},
    "/jobs": {
        "get": op(
            "Jobs (managers: all, or one member's with member_id; members: their own member_id)",
            {"200": ok(JOBS), **errors(401, 403, 422)},
            parameters=[
                STATE_QUERY,
                {"name": "member_id", "in": "query", "required": False, "schema": {"type": "integer"}},
            ],
        ),
        "post": op(
            "Submit a G-code file: analysed, checked against the lab's rules, queued (one job per copy)",
            {
                "201": ok(
                    {
                        "type": "object",
                        "required": ["jobs", "analysis"],
                        "properties": {
                            "jobs": {"type": "array", "items": ref("Job")},
                            "analysis": ref("Analysis"),
                        },
                    },
                    "Created; or, for a repeat of an earlier request's Idempotency-Key, that request's "
                    "jobs (nothing is created)",
                ),
                **errors(401, 413, 422, 507),
            },
            requestBody=UPLOAD,
            parameters=[IDEMPOTENCY_KEY],
        ),
    },
    "/analyze": {
        "post": op(
            "Analyse a G-code file without queuing it",
            {"200": ok(ref("Analysis")), **errors(401, 413, 422, 507)},
            requestBody=UPLOAD,
        )
    },
    "/jobs/mine": {
        "get": op(
            "My jobs, waiting ones with their explanation",
            {"200": ok(JOBS), **errors(401, 422)},
            parameters=[STATE_QUERY],
        )
    },
    "/queue": {
        "get": op(
            "Every waiting job in queue order, each with why it stands where it does",
            {
                "200": ok(
                    {"type": "object", "properties": {"queue": {"type": "array", "items": ref("Job")}}}
                ),
                **errors(401),
            },
        )
    },
    "/jobs/{job_id}": {
        "get": op(
            "A job with its history", {"200": ok(ref("Job")), **errors(401, 403, 404)}, parameters=JOB_ID
        )
    },
    "/jobs/{job_id}/thumbnail": {
        "get": op(
            "The file's largest embedded thumbnail",
            {
                "200": {"description": "The image", "content": {"image/png": {}, "image/jpeg": {}}},
                **errors(401, 403, 404),
            },
            parameters=JOB_ID,
        )
    },
    "/jobs/{job_id}/cancel": {
        "post": op(
            "Cancel a job (members: their own; managers: any)",
            {"200": ok(ref("Job")), **errors(401, 403, 404, 409, 422)},
            parameters=JOB_ID,
            requestBody=REASON,
        )
    },
    "/jobs/{job_id}/pause": {
        "post": op(
            "Ask the printer to pause a printing job (its member, or managers); the job becomes paused "
            "when the printer reports it",
            {"202": ok(ref("Job"), "Sent to the printer"), **errors(401, 403, 404, 409, 503)},
            parameters=JOB_ID,
        )
    },
    "/jobs/{job_id}/resume": {
        "post": op(
            "Ask the printer to resume a paused job (its member, or managers)",
            {"202": ok(ref("Job"), "Sent to the printer"), **errors(401, 403, 404, 409, 503)},
            parameters=JOB_ID,
        )
    },
    "/jobs/{job_id}/approve": {
        "post": op(
            "Approve a job awaiting approval (managers)",
            {"200": ok(ref("Job")), **errors(401, 403, 404, 409)},
            parameters=JOB_ID,
        )
    },
    "/jobs/{job_id}/reject": {
        "post": op(
            "Reject a job awaiting approval (managers)",
            {"200": ok(ref("Job")), **errors(401, 403, 404, 409, 422)},
            parameters=JOB_ID,
            requestBody=REASON,
        )
    },
    "/jobs/{job_id}/priority": {
        "put": op(
            "Set a waiting job's priority, -100 to 100 (managers)",
            {"200": ok(ref("Job")), **errors(401, 403, 404, 409, 422)},
            parameters=JOB_ID,
            requestBody=body(
                {"type": "object", "required": ["priority"], "properties": {"priority": {"type": "integer"}}}
            ),
        )
    },
    "/printers": {
        "get": op(
            "All printers",
            {
                "200": ok(
                    {"type": "object", "properties": {"printers": {"type": "array", "items": ref("Printer")}}}
                ),
                **errors(401),
            },
        ),
        "post": op(
            "Register a printer (managers)",
            {"201": ok(ref("Printer"), "Created"), **errors(401, 403, 409, 422)},
            requestBody=body(
                {
                    "type": "object",
                    "required": ["id", "volume"],
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"type": "string"},
                        "volume": ref("Box"),
                        "nozzle_diameter": {"type": "number"},
                        "material": {"type": "string"},
                        "restricted": {"type": "boolean"},
                    },
                }
            ),
        ),
    },
    "/printers/{printer_id}": {
        "get": op("A printer", {"200": ok(ref("Printer")), **errors(401, 404)}, parameters=PRINTER_ID),
        "patch": op(
            "Change a printer: name, material, nozzle, volume, restricted, maintenance (managers)",
            {"200": ok(ref("Printer")), **errors(401, 403, 404, 409, 422)},
            parameters=PRINTER_ID,
            requestBody=body({"type": "object"}),
        ),
    },
    "/printers/{printer_id}/bed-cleared": {
        "post": op(
            "Confirm the printer's plate is clear (a manager, or the member whose print was on it)",
            {"200": ok(ref("Printer")), **errors(401, 403, 404, 409)},
            parameters=PRINTER_ID,
        )
    },
    "/printers/{printer_id}/revoke": {
        "post": op(
            "Revoke an enrolled printer's credentials (managers): it can no longer connect or download; "
            "a job it held becomes unknown and the printer goes into maintenance",
            {"200": ok(ref("Printer")), **errors(401, 403, 404, 409)},
            parameters=PRINTER_ID,
        )
    },
    "/printers/{printer_id}/jobs/{job_id}/file": {
        "get": op(
            "Download a dispatched job's G-code (printer token only; only the printer the job is on)",
            {
                "200": {
                    "description": "The file, as uploaded",
                    "headers": {
                        "X-Content-SHA256": {
                            "description": "SHA-256 of the body, lowercase hex",
                            "schema": {"type": "string"},
                        },
                        "Content-Length": {"schema": {"type": "integer"}},
                    },
                    "content": {
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                    },
                },
                **errors(401, 403, 404),
            },
            parameters=PRINTER_ID + JOB_ID,
            security=[{"printerToken": []}],
        )
    },
    "/enroll-codes": {
        "post": op(
            "Make a single-use code for enrolling one printer (managers); only its hash is kept",
            {
                "201": ok(
                    {
                        "type": "object",
                        "required": ["code", "expires_at"],
                        "properties": {
                            "code": {"type": "string", "description": "Such as 7KQP-M2XD-9HWC"},
                            "expires_at": {"type": "string", "format": "date-time"},
                        },
                    },
                    "Created",
                ),
                **errors(401, 403, 422),
            },
            requestBody={
                "required": False,
                "content": {
                    JSON: {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "ttl_s": {"type": "number", "minimum": 60, "default": 86400},
                            },
                        }
                    }
                },
            },
        )
    },
    "/printers/enroll": {
        "post": op(
            "Enroll a printer with a manager's code (no member token: the code is the proof)",
            {"201": ok(ref("Enrollment"), "Enrolled"), **errors(401, 422, 503)},
            security=[],
            requestBody=body(
                {
                    "type": "object",
                    "required": ["code", "name", "capabilities"],
                    "properties": {
                        "code": {"type": "string"},
                        "name": {"type": "string", "maxLength": 80},
                        "capabilities": {
                            "type": "object",
                            "required": ["volume"],
                            "properties": {
                                "volume": ref("Box"),
                                "nozzle_diameter": {"type": "number"},
                                "material": NULLABLE_STR,
                            },
                        },
                    },
                }
            ),
        )
    },
    "/members": {
        "get": op(
            "All members (managers)",
            {
                "200": ok(
                    {"type": "object", "properties": {"members": {"type": "array", "items": ref("Member")}}}
                ),
                **errors(401, 403),
            },
        ),
        "post": op(
            "Add a member (managers); the response holds its API token, shown only this once",
            {"201": ok(ref("Member"), "Created"), **errors(401, 403, 409, 422)},
            requestBody=body(
                {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "role": {"type": "string", "enum": ["member", "manager"]},
                        "requires_approval": {"type": ["boolean", "null"]},
                    },
                }
            ),
        ),
    },
    "/members/{member_id}": {
        "get": op(
            "A member and the printers granted to it (itself, or managers)",
            {"200": ok(ref("Member")), **errors(401, 403, 404)},
            parameters=MEMBER_ID,
        ),
        "patch": op(
            "Change a member's role, approval setting or active flag (managers)",
            {"200": ok(ref("Member")), **errors(401, 403, 404, 409, 422)},
            parameters=MEMBER_ID,
            requestBody=body({"type": "object"}),
        ),
    },
    "/members/{member_id}/token": {
        "post": op(
            "Revoke a member's tokens and issue a new one (itself, or managers)",
            {
                "200": ok({"type": "object", "properties": {"token": {"type": "string"}}}),
                **errors(401, 403, 404),
            },
            parameters=MEMBER_ID,
        )
    },
    "/members/{member_id}/password": {
        "put": op(
            "Set the password a member signs in to the dashboard with (itself, or managers)",
            {
                "204": {"description": "The password is set; the member's other dashboard sessions end"},
                **errors(401, 403, 404, 422),
            },
            parameters=MEMBER_ID,
            requestBody=body(
                {
                    "type": "object",
                    "required": ["password"],
                    "properties": {"password": {"type": "string", "minLength": 8, "maxLength": 1024}},
                }
            ),
        )
    },
    "/members/{member_id}/printers/{printer_id}": {
        "put": op(
            "Grant a printer to a member (managers)",
            {"200": GRANTS, **errors(401, 403, 404)},
            parameters=MEMBER_ID + PRINTER_ID,
        ),
        "delete": op(
            "Withdraw a printer from a member (managers)",
            {"200": GRANTS, **errors(401, 403, 404)},
            parameters=MEMBER_ID + PRINTER_ID,
        ),
    },
    "/settings": {
        "get": op("The lab's settings and G-code rules", {"200": ok(ref("LabSettings")), **errors(401)}),
        "patch": op(
            "Change the lab's settings (managers); a partial object changes only what it names",
            {"200": ok(ref("LabSettings")), **errors(401, 403, 422)},
            requestBody=body(ref("LabSettings")),
        ),
    },
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CrowdFab fleet API",
            "version": __version__,
            "description": "The community print queue: submit G-code, follow the queue, manage printers.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A member's API token"},
                "printerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An enrolled printer's token (from POST /printers/enroll)",
                },
            },
            "schemas": SCHEMAS,
        },
        "paths": PATHS,
    }
