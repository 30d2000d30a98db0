"""Gateway-test fixtures: an in-process gateway in front of in-process services (auth always)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.grpc_clients import SERVICES
from scripts.platform import free_port
from services.common.config import Env

Client = TestClient[web.Request, web.Application]
Gateway = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def gateway(stack: Callable[..., AbstractAsyncContextManager[Any]],
            base_env: dict[str, str]) -> Gateway:
    """`async with gateway("sessions", services={...}, PUBLIC_URL=...) as client`: the named
    services (auth always) run in-process with `services` added to their environment, the
    others' addresses are a closed port; keyword settings are the gateway's own."""

    @asynccontextmanager
    async def start(*names: str, services: dict[str, str] | None = None,
                    **overrides: str) -> AsyncIterator[Client]:
        async with stack(*names, **(services or {})) as running:
            closed = f"127.0.0.1:{free_port()}"
            env = {**base_env, **running.env, "GATEWAY_PORT": "0",
                   **{f"{s.upper()}_ADDR": closed for s in SERVICES if s not in running.runtimes},
                   **{f"{s.upper()}_ADDR": running.addr(s) for s in running.runtimes},
                   **overrides}
            app = create_app(GatewayConfig.from_env(Env(env)))
            async with TestClient(TestServer(app)) as client:
                yield client

    return start
