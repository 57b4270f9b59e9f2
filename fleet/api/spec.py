"""The OpenAPI 3.1 document of /api/v1, generated: each route declares its shapes where it is defined.

:meth:`ApiSpec.route` registers a view on the blueprint and records what it takes and answers (the
pydantic models of :mod:`fleet.api.shapes`, its error statuses); :meth:`ApiSpec.document` turns the
records into the document, the models' JSON Schemas becoming ``components.schemas``. Routes and
document cannot drift apart: a route is documented by being declared.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, TypeVar, Union

from flask import Blueprint
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .. import __version__
from ..http_protocol import API_PREFIX
from .shapes.base import Error, InputModel, OutputModel

JSON = "application/json"
REF = "#/components/schemas/{model}"
View = TypeVar("View", bound=Callable[..., Any])

#: What each error status means, wherever it is answered.
ERRORS = {
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

#: A response that is no JSON model: a file, an image, or nothing.
RawAnswer = dict[str, Any]
Answer = Union[type[OutputModel], RawAnswer, None]


@dataclass(frozen=True)
class Operation:
    """One method on one path, as the document describes it."""

    method: str
    rule: str
    view: str
    summary: str
    answer: Answer
    status: int = 200
    answer_text: str = "OK"
    errors: tuple[int, ...] = ()
    body: Optional[type[InputModel]] = None
    body_required: bool = True
    #: A multipart upload: a binary ``file`` field beside this model's fields.
    upload: Optional[type[InputModel]] = None
    query: Optional[type[InputModel]] = None
    headers: tuple[dict[str, Any], ...] = ()
    #: None: the document's default (a member's bearer token); [] for none.
    security: Optional[list[dict[str, list[str]]]] = None

    @property
    def path(self) -> str:
        """``/jobs/<int:job_id>`` as ``/jobs/{job_id}``."""
        return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", self.rule)

    def path_parameters(self) -> list[dict[str, Any]]:
        found = re.findall(r"<(?:([a-z]+):)?([a-z_]+)>", self.rule)
        return [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer" if kind else "string"},
            }
            for kind, name in found
        ]


@dataclass
class ApiSpec:
    """The operations of one blueprint, recorded as they are registered."""

    blueprint: Blueprint
    title: str
    description: str
    operations: list[Operation] = field(default_factory=list)
    #: The document, once built, with the number of operations it describes.
    _built: Optional[tuple[int, dict[str, Any]]] = field(default=None, repr=False)

    def route(
        self,
        method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"],
        rule: str,
        summary: str,
        answer: Answer,
        **details: Any,
    ) -> Callable[[View], View]:
        """Register the decorated view for ``method rule`` and document it (see :class:`Operation`)."""

        def register(view: View) -> View:
            self.blueprint.add_url_rule(rule, view_func=view, methods=[method])
            self.operations.append(Operation(method, rule, view.__name__, summary, answer, **details))
            return view

        return register

    def endpoints(self) -> set[str]:
        return {f"{self.blueprint.name}.{op.view}" for op in self.operations}

    def document(self) -> dict[str, Any]:
        """The OpenAPI document; built once (routes are all registered at import), a copy each call."""
        if self._built is None or self._built[0] != len(self.operations):
            self._built = (len(self.operations), self._build())
        return copy.deepcopy(self._built[1])

    def _build(self) -> dict[str, Any]:
        models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Error, "serialization")]
        for op in self.operations:
            if isinstance(op.answer, type):
                models.append((op.answer, "serialization"))
            models.extend((m, "validation") for m in (op.body, op.upload, op.query) if m is not None)
        refs, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
        schemas = defs.get("$defs", {})
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = self._operation(op, refs, schemas)
        for op in self.operations:  # inlined as parameters and form fields, never referenced
            for model in (op.upload, op.query):
                if model is not None:
                    schemas.pop(model.__name__, None)
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": __version__, "description": self.description},
            "servers": [{"url": API_PREFIX}],
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
                "schemas": schemas,
            },
            "paths": paths,
        }

    @staticmethod
    def _operation(
        op: Operation, refs: Mapping[tuple[Any, JsonSchemaMode], Any], schemas: dict[str, Any]
    ) -> dict[str, Any]:
        if isinstance(op.answer, type):
            answer: dict[str, Any] = {
                "description": op.answer_text,
                "content": {JSON: {"schema": refs[(op.answer, "serialization")]}},
            }
        else:
            answer = {"description": op.answer_text, **(op.answer or {})}
        codes = (*op.errors, 429) if 401 in op.errors else op.errors  # failed tokens are rate-limited
        error = {"content": {JSON: {"schema": refs[(Error, "serialization")]}}}
        responses = {str(op.status): answer, **{str(c): {"description": ERRORS[c], **error} for c in codes}}
        out: dict[str, Any] = {"summary": op.summary, "operationId": op.view, "responses": responses}
        parameters = op.path_parameters() + list(op.headers)
        if op.query is not None:
            parameters += query_parameters(schemas[op.query.__name__])
        if parameters:
            out["parameters"] = parameters
        if op.body is not None:
            out["requestBody"] = {
                "required": op.body_required,
                "content": {JSON: {"schema": refs[(op.body, "validation")]}},
            }
        if op.upload is not None:
            form = schemas[op.upload.__name__]
            out["requestBody"] = {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file", *form.get("required", [])],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                **form["properties"],
                            },
                        }
                    }
                },
            }
        if op.security is not None:
            out["security"] = op.security
        return out


def query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A query model's fields as OpenAPI query parameters."""
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema["properties"].items():
        prop = {k: v for k, v in prop.items() if k != "title" and not (k == "default" and v is None)}
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params
