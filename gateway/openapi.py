"""Route table that installs handlers and generates the OpenAPI 3.1 document from them."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {"type": "object", "required": ["field", "message"],
                              "properties": {"field": {"type": "string"},
                                             "message": {"type": "string"}}},
                },
            },
        }
    },
}

_STATUS_TEXT = {
    400: "Invalid request", 401: "Missing or invalid access token", 403: "Role not allowed",
    404: "Not found (or not a member)", 409: "Conflict", 410: "Gone", 412: "Stale version",
    413: "Body too large", 415: "Unsupported media type", 422: "Unprocessable", 429: "Rate limited",
    503: "Dependency unavailable",
}


@dataclass
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    status: int = 200
    # True: the table verifies the caller's access token before the handler runs (401
    # otherwise, as the document says) and hands it over as request[keys.AUTH].
    auth: bool = True
    # The token may also come as the `access_token` query parameter (WebSocket handshakes,
    # which browsers cannot give an Authorization header).
    token_in_query: bool = False
    request: type[BaseModel] | None = None
    response: type[BaseModel] | dict[str, Any] | None = None
    errors: tuple[int, ...] = ()
    query: tuple[tuple[str, dict[str, Any], str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"
    # Headers of the success answer, as OpenAPI header objects by name.
    response_headers: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class RouteTable:
    """Every HTTP route is added here once: the router and the OpenAPI document agree by construction."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def add(self, op: Operation) -> None:
        self.operations.append(op)

    def install(self, router: web.UrlDispatcher, guard: Guard) -> None:
        """Add every operation to the router; `auth=True` ones run `guard` first."""
        for op in self.operations:
            handler = _guarded(op, guard) if op.auth else op.handler
            router.add_route(op.method, op.path, handler, name=op.name or None)

    def document(self, title: str, version: str, server_url: str) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        components: dict[str, Any] = {
            "schemas": {"Error": _ERROR_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        }
        for op in self.operations:
            if op.method == "HEAD":
                continue
            # aiohttp patterns like {path:.+} become plain OpenAPI templates ({path}).
            template = re.sub(r"{(\w+):[^}]*}", r"{\1}", op.path)
            paths.setdefault(template, {})[op.method.lower()] = self._operation(op, components)
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version,
                     "description": "Tandem public API. Errors use the standard error body."},
            "servers": [{"url": server_url}],
            "paths": paths,
            "components": components,
        }

    def _operation(self, op: Operation, components: dict[str, Any]) -> dict[str, Any]:
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)(?::[^}]*)?}", op.path)
        ]
        params += [{"name": n, "in": "query", "required": False, "schema": s, "description": d}
                   for n, s, d in op.query]
        params += [{"name": n, "in": "header", "required": False, "schema": {"type": "string"},
                    "description": d} for n, d in op.headers]
        responses: dict[str, Any] = {}
        body: dict[str, Any] = {"description": op.summary}
        if op.response is not None:
            body["content"] = {op.content_type: {"schema": _schema_ref(op.response, components)}}
        if op.response_headers:
            body["headers"] = op.response_headers
        responses[str(op.status)] = body
        errors = set(op.errors) | ({401} if op.auth else set()) | {503}
        if op.request is not None:
            errors |= {400, 413}
        for status in sorted(errors):
            responses[str(status)] = {
                "description": _STATUS_TEXT.get(status, "Error"),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        out: dict[str, Any] = {
            "operationId": op.name or f"{op.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', op.path.lower()).strip('_')}",
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": params,
            "responses": responses,
        }
        if op.auth:
            out["security"] = [{"bearer": []}]
        if op.request is not None:
            out["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": _schema_ref(op.request, components)}}}
        out.update(op.extra)
        return out


# Refuses the request (raises the 401) unless its caller is verified; gateway/auth.py's guard.
Guard = Callable[[web.Request, Operation], Awaitable[None]]


def _guarded(op: Operation, guard: Guard) -> Handler:
    handler = op.handler

    async def run(request: web.Request) -> web.StreamResponse:
        await guard(request, op)
        return await handler(request)

    return run


def _schema_ref(model: type[BaseModel] | dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if isinstance(model, dict):
        return model
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components["schemas"][name] = definition
    components["schemas"][model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}
