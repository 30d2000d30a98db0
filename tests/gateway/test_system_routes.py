"""The gateway's Swagger UI assets and OpenAPI document, in-process over the run's Redis.

These routes need no service: the backends point at a closed port.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.grpc_clients import SERVICES
from gateway.routes.system import ReadinessProbe
from scripts.platform import free_port
from services.common.config import Env


@pytest.fixture
async def client(base_env: dict[str, str]) -> AsyncIterator[TestClient[TestServer]]:
    closed = f"127.0.0.1:{free_port()}"
    env = {**base_env, "GATEWAY_PORT": "0", **{f"{s.upper()}_ADDR": closed for s in SERVICES}}
    app = create_app(GatewayConfig.from_env(Env(env)))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_swagger_ui_assets_are_the_vendored_swagger_ui_5(client: TestClient[TestServer]) -> None:
    css = await client.get("/docs/static/swagger-ui.css")
    assert css.status == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert b"swagger-ui" in await css.read()
    bundle = await client.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.status == 200
    # Swagger UI reads OpenAPI 3.1 (what /openapi.json is) only from major version 5 on.
    version = re.search(rb'PACKAGE_VERSION:"(\d+)\.', await bundle.read())
    assert version is not None
    assert int(version.group(1)) >= 5
    preset = await client.head("/docs/static/swagger-ui-standalone-preset.js")
    assert preset.status == 200
    # The start-up script is the gateway's own route, not a file of the package.
    init = await client.get("/docs/static/init.js")
    assert 'url: "/openapi.json"' in await init.text()


@pytest.mark.parametrize("name", [
    "nope.js", "..", "%2e%2e", "%00", "..%2f__init__.py", "..%2F..%2F__init__.py",
    "..%2f..%2fswagger_ui_bundle%2f__init__.py", "README.md", "LICENSE", "..%2f..%2fserver.py",
])
async def test_nothing_outside_the_assets_folder_is_served(client: TestClient[TestServer],
                                                           name: str) -> None:
    reply = await client.get(f"/docs/static/{name}")
    assert reply.status == 404
    assert (await reply.json())["error"]["code"] == "not_found"


async def test_openapi_document_is_made_once_on_first_request(client: TestClient[TestServer]) -> None:
    first = await client.get("/openapi.json")
    assert first.status == 200
    body = await first.read()
    document = orjson.loads(body)
    assert document["openapi"] == "3.1.0"
    assert "/api/v1/sessions" in document["paths"]
    assert "MessageIn" in document["components"]["schemas"]
    assert await (await client.get("/openapi.json")).read() == body

class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_readiness_is_checked_once_for_concurrent_probes_and_reused_while_fresh() -> None:
    calls = 0
    release = asyncio.Event()

    async def check() -> tuple[int, bytes]:
        nonlocal calls
        calls += 1
        await release.wait()
        return (200 if calls == 1 else 503), f"check {calls}".encode()

    clock = _Clock()
    probe = ReadinessProbe(check, fresh_seconds=0.5, clock=clock)
    waiting = [asyncio.create_task(probe.answer()) for _ in range(20)]
    await asyncio.sleep(0)
    # A prober that hangs up does not cancel the check the others wait for.
    waiting[0].cancel()
    release.set()
    answers = await asyncio.gather(*waiting[1:])
    assert calls == 1
    assert set(answers) == {(200, b"check 1")}
    clock.now += 0.4
    assert await probe.answer() == (200, b"check 1")
    assert calls == 1
    clock.now += 0.2  # older than fresh_seconds: checked again, and a change shows
    assert await probe.answer() == (503, b"check 2")
    assert calls == 2
