"""Strings PostgreSQL, protobuf or JSON cannot hold, in every string field of every request body
of the OpenAPI document: answered with a 4xx and the standard body, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.security.conftest import REPO, Stage

pytestmark = pytest.mark.e2e

# NUL: PostgreSQL text cannot store it (a 500 in the review service before the fix).
# A lone surrogate cannot be encoded as UTF-8 (protobuf strings must be).
HOSTILE = {"nul": '"a\\u0000b"', "lone-surrogate": '"a\\ud800b"', "bidi-and-controls": '"a\\u202e\\u0007b"'}
# Operations that change or end the stage's session for good are left to the permission matrix.
SKIP = {"POST /api/v1/sessions/{id}/end", "DELETE /api/v1/sessions/{id}"}


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = document["components"]["schemas"][name]
    return schema


def _plain(schema: dict[str, Any], document: dict[str, Any]) -> Any:
    """A simple valid value for a (resolved) property schema."""
    schema = _resolve(schema, document)
    options = schema.get("anyOf") or [schema]
    schema = next((o for o in options if o.get("type") != "null"), options[0])
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "array":
        return []
    if kind == "object":
        return {}
    if kind == "boolean":
        return False
    return "x" * max(1, schema.get("minLength", 1))


def _string_fields(schema: dict[str, Any], document: dict[str, Any]) -> Iterator[tuple[str, bool]]:
    """(property, is_list) for each string or list-of-strings property."""
    for name, prop in schema.get("properties", {}).items():
        options = _resolve(prop, document).get("anyOf") or [_resolve(prop, document)]
        for raw_option in options:
            option = _resolve(raw_option, document)
            if option.get("type") == "string":
                yield name, False
                break
            items = _resolve(option.get("items", {}), document)
            if option.get("type") == "array" and items.get("type") == "string":
                yield name, True
                break


def cases(document: dict[str, Any], real: dict[str, Any]) -> Iterator[tuple[str, str, bytes]]:
    """(operation, case name, raw JSON body): one hostile string field, the rest valid."""
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            key = f"{method.upper()} {template}"
            body = operation.get("requestBody")
            if body is None or key in SKIP:
                continue
            schema = _resolve(body["content"]["application/json"]["schema"], document)
            required = {name: real.get(name, _plain(prop, document))
                        for name, prop in schema.get("properties", {}).items()
                        if name in schema.get("required", [])}
            for field, is_list in _string_fields(schema, document):
                for label, literal in HOSTILE.items():
                    fields = [f'"{k}": {json.dumps(v)}' for k, v in required.items() if k != field]
                    value = f"[{literal}]" if is_list else literal
                    raw = "{" + ", ".join([*fields, f'"{field}": {value}']) + "}"
                    yield key, f"{key} {field} {label}", raw.encode()


def test_hostile_strings_in_every_field_never_cause_a_server_error(
        stage: Stage, openapi: dict[str, Any]) -> None:
    tried = 0
    with httpx.Client(base_url=stage.url, timeout=30) as api:
        # Valid values where a made-up one would be refused before the hostile field is read.
        real = {"path": stage.path, "line": 1, "repo": REPO, "user_id": stage.crew.viewer.user_id}
        for key, name, raw in cases(openapi, real):
            method, template = key.split(" ", 1)
            reply = api.request(method, stage.fill(template), content=raw, headers={
                **stage.crew.owner.headers, "Content-Type": "application/json"})
            tried += 1
            assert reply.status_code < 500, (name, reply.text)
            if reply.status_code >= 400:
                error = reply.json()["error"]
                assert error["code"], name
                assert error["request_id"] == reply.headers["X-Request-Id"], name
    assert tried > 40
