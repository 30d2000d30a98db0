"""Operational routes: liveness, readiness, metrics, OpenAPI and its Swagger UI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway import keys
from gateway.grpc_clients import SERVICES
from gateway.openapi import Operation, RouteTable
from services.common.metrics import DEPENDENCY_UP, exposition


class OpenApiDocument:
    """/openapi.json, made on its first request and kept: building it (the JSON Schema of every
    model) takes about 25 ms and leaves the process about 0.7 MB larger, which an idle gateway
    that nobody asks for its documentation need not carry."""

    def __init__(self, build: Callable[[], dict[str, Any]]) -> None:
        self._build = build
        self._body: bytes | None = None

    def body(self) -> bytes:
        if self._body is None:
            self._body = orjson.dumps(self._build())
        return self._body



_DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tandem API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png" sizes="32x32"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/swagger-ui-standalone-preset.js"></script>
<script src="/docs/static/init.js"></script>
</body></html>
"""
# Inline scripts would need a looser Content-Security-Policy; a static file keeps it strict.
# validatorUrl null: by default Swagger UI sends the document's URL to validator.swagger.io
# for a badge, a call to the internet that /docs must not need (nor leak the URL to).
_DOCS_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout",
  validatorUrl: null});
"""

READY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"enum": ["ready", "not_ready"]},
        "checks": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["status"],
            "properties": {"status": {"enum": ["up", "down"]}, "reason": {"type": "string"},
                           "latency_ms": {"type": "number"}}}},
    },
}


async def health(_: web.Request) -> web.Response:
    # Liveness only: touches no dependency, so a database outage never restarts pods.
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def _timed(name: str, coro: Any) -> tuple[str, dict[str, Any]]:
    start = time.perf_counter()
    ok, reason = await coro
    check: dict[str, Any] = {"status": "up" if ok else "down",
                             "latency_ms": round((time.perf_counter() - start) * 1000, 2)}
    if reason:
        check["reason"] = reason
    return name, check


async def _redis_check(app: web.Application, timeout: float) -> tuple[bool, str | None]:
    try:
        async with asyncio.timeout(timeout):
            await app[keys.REDIS].ping()
        return True, None
    except TimeoutError:
        return False, f"no answer within {timeout:g}s"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"[:200]


# /ready answers from a check at most this old: probes from every replica's kubelet,
# load balancers and anyone on the internet share one round of four gRPC health calls
# and a Redis PING instead of each paying for (and multiplying) its own.
READY_FRESH_SECONDS = 0.5


class ReadinessProbe:
    """The aggregated readiness check, run at most once per READY_FRESH_SECONDS.

    Requests arriving while a check runs wait for that same check (it runs in its own
    task, so a client that hangs up does not cancel it for the others).
    """

    def __init__(self, check: Callable[[], Awaitable[tuple[int, bytes]]],
                 fresh_seconds: float = READY_FRESH_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._check = check
        self._fresh = fresh_seconds
        self._clock = clock
        self._last: tuple[float, int, bytes] | None = None
        self._running: asyncio.Task[tuple[int, bytes]] | None = None

    async def answer(self) -> tuple[int, bytes]:
        last = self._last
        if last is not None and self._clock() - last[0] < self._fresh:
            return last[1], last[2]
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run(), name="ready-check")
        return await asyncio.shield(self._running)

    async def _run(self) -> tuple[int, bytes]:
        status, body = await self._check()
        self._last = (self._clock(), status, body)
        return status, body




def readiness_probe(app: web.Application) -> ReadinessProbe:
    async def check() -> tuple[int, bytes]:
        timeout = app[keys.CONFIG].ready_timeout
        backends = app[keys.BACKENDS]
        results = await asyncio.gather(
            _timed("redis", _redis_check(app, timeout)),
            *(_timed(name, backends.check_health(name, timeout)) for name in SERVICES),
        )
        checks = dict(results)
        DEPENDENCY_UP.labels("redis").set(1 if checks["redis"]["status"] == "up" else 0)
        for name in SERVICES:
            DEPENDENCY_UP.labels(name).set(1 if checks[name]["status"] == "up" else 0)
        all_up = all(c["status"] == "up" for c in checks.values())
        body = {"status": "ready" if all_up else "not_ready", "checks": checks}
        return (200 if all_up else 503), orjson.dumps(body)

    return ReadinessProbe(check)


async def ready(request: web.Request) -> web.Response:
    status, body = await request.app[keys.READINESS].answer()
    return web.Response(status=status, body=body, content_type="application/json")


async def metrics(_: web.Request) -> web.Response:
    return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[keys.OPENAPI].body(), content_type="application/json")


async def docs(_: web.Request) -> web.Response:
    return web.Response(text=_DOCS_HTML, content_type="text/html")


async def docs_init(_: web.Request) -> web.Response:
    return web.Response(text=_DOCS_INIT, content_type="application/javascript")


def add_routes(table: RouteTable) -> None:
    text = {"type": "string"}
    table.add(Operation("GET", "/health", health, "Liveness: the process is up", "system",
                        auth=False, response={"type": "object", "properties": {"status": {"const": "ok"}}}))
    table.add(Operation("GET", "/ready", ready, "Readiness of every dependency", "system",
                        auth=False, response=READY_SCHEMA, errors=(503,),
                        extra={"responses": {
                            "200": {"description": "All dependencies up",
                                    "content": {"application/json": {"schema": READY_SCHEMA}}},
                            "503": {"description": "Something is down; checks name it",
                                    "content": {"application/json": {"schema": READY_SCHEMA}}}}}))
    table.add(Operation("GET", "/metrics", metrics, "Prometheus metrics", "system", auth=False,
                        response=text, content_type="text/plain"))
    table.add(Operation("GET", "/openapi.json", openapi, "This OpenAPI document", "system",
                        auth=False, response={"type": "object"}))
    table.add(Operation("GET", "/docs", docs, "Swagger UI", "system", auth=False, response=text,
                        content_type="text/html"))
    table.add(Operation("GET", "/docs/static/init.js", docs_init, "Swagger UI start-up script",
                        "system", auth=False, response=text, content_type="application/javascript"))


# Swagger UI 5 (it reads OpenAPI 3.1), vendored from npm's swagger-ui-dist: see its README.md.
SWAGGER_UI_DIR = Path(__file__).resolve().parent.parent / "static" / "swagger-ui"
_DOCS_ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
                          "favicon-32x32.png", "favicon-16x16.png"})


def _docs_asset_path(name: str) -> Path | None:
    """The Swagger UI file `name` (percent-decoded, so it may hold "/"), or None: only the
    assets the page loads, never the folder's other files."""
    if name not in _DOCS_ASSETS:
        return None
    path = SWAGGER_UI_DIR / name
    return path if path.is_file() else None


async def docs_asset(request: web.Request) -> web.StreamResponse:
    # Off the event loop, as aiohttp's own static files: resolving touches the disk.
    path = await asyncio.to_thread(_docs_asset_path, request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound
    return web.FileResponse(path)


def add_static(app: web.Application) -> None:
    """Swagger UI assets ship in the repository: /docs works with no internet."""
    app.router.add_get("/docs/static/{name}", docs_asset, name="docs-static")
