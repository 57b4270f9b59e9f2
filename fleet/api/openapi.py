"""The OpenAPI 3 document of /api/v1, served at /api/v1/openapi.json; generated from the routes."""

from __future__ import annotations

from typing import Any

from .routes import spec


def openapi_document() -> dict[str, Any]:
    return spec.document()
