"""API fixtures: every response the tests see is checked against the OpenAPI document."""

from __future__ import annotations

import re

import jsonschema
import pytest

from fleet.api.openapi import openapi_document

DOC = openapi_document()


def _resolve(schema: dict) -> dict:
    """Inline the components so jsonschema can follow the document's $refs."""
    return {**schema, "components": DOC["components"]}


def _template_for(path: str) -> str | None:
    rel = path.split("?", 1)[0][len("/api/v1") :]
    if rel in DOC["paths"]:  # a literal path (/jobs/mine) wins over a template (/jobs/{job_id})
        return rel
    for template in DOC["paths"]:
        if re.match("^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$", rel):
            return template
    return None


def check_against_document(method: str, path: str, response) -> None:
    template = _template_for(path)
    assert template is not None, f"{path} is not in the OpenAPI document"
    operation = DOC["paths"][template].get(method.lower())
    assert operation is not None, f"{method} {template} is not in the OpenAPI document"
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, (
        f"{method} {template} answered {response.status_code}, which is not documented"
    )
    content = documented.get("content", {}).get("application/json")
    if content and response.is_json:
        jsonschema.validate(response.get_json(), _resolve(content["schema"]))


class CheckedClient:
    """Wraps a test client; each response must be one the document describes."""

    def __init__(self, client) -> None:
        self.client = client
        self.token = client.token
        self.member_id = client.member_id

    def __getattr__(self, method: str):
        call = getattr(self.client, method)

        def wrapper(url: str, **kw):
            response = call(url, **kw)
            check_against_document(method, url, response)
            return response

        return wrapper


@pytest.fixture
def api(clients) -> dict[str, CheckedClient]:
    return {name: CheckedClient(c) for name, c in clients.items()}
