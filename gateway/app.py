"""The gateway's application factory: resources in cleanup_ctx, middlewares, routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway import keys
from gateway.auth import guard, verifier_ctx
from gateway.config import GatewayConfig
from gateway.grpc_clients import Backends
from gateway.middlewares import hide_server_version, make_outer_middleware, remove_server_banner
from gateway.openapi import RouteTable
from gateway.ratelimit import RateLimiter
from gateway.realtime import routes as realtime
from gateway.routes import (
    ai,
    auth,
    documents,
    invitations,
    notifications,
    review,
    sessions,
    system,
    webapp,
)
from gateway.usercache import UserCache
from services.common.redisutil import create_redis

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"
API_TITLE = "Tandem API"


def build_routes() -> RouteTable:
    """Every route module contributes here; the table also generates /openapi.json."""
    table = RouteTable()
    system.add_routes(table)
    auth.add_routes(table)
    review.add_routes(table)
    sessions.add_routes(table)
    invitations.add_routes(table)
    notifications.add_routes(table)
    documents.add_routes(table)
    realtime.add_routes(table)
    ai.add_routes(table)
    return table


def openapi_document(server_url: str, table: RouteTable | None = None) -> dict[str, Any]:
    """The document /openapi.json serves (also written offline by `python -m gateway.openapi_dump`)."""
    return (table or build_routes()).document(API_TITLE, API_VERSION, server_url)


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG].common
    client = create_redis(config.redis_url)
    app[keys.REDIS] = client
    limiter = RateLimiter(client, config.redis_prefix + "gateway:")
    app[keys.LIMITER] = limiter
    yield
    await limiter.close()
    await client.aclose()


async def _backends_ctx(app: web.Application) -> AsyncIterator[None]:
    backends = Backends(app[keys.CONFIG].common)
    app[keys.BACKENDS] = backends
    yield
    await backends.close()


def create_app(config: GatewayConfig) -> web.Application:
    app = web.Application(
        middlewares=[make_outer_middleware(config.hsts, config.max_body_bytes, config.cors_origins)],
        client_max_size=config.max_body_bytes,
    )
    app[keys.CONFIG] = config
    # Opened at start-up in order and closed in reverse after `yield`.
    app.cleanup_ctx.extend([_redis_ctx, _backends_ctx, verifier_ctx, realtime.realtime_ctx])
    # Realtime clients are flushed and closed with 1012 once the listener has stopped.
    app.on_shutdown.append(realtime.drain)
    app[keys.JWKS_CACHE] = [None, 0.0]
    app[keys.USER_CACHE] = UserCache()
    app.on_response_prepare.append(remove_server_banner)
    hide_server_version()
    table = build_routes()
    table.install(app.router, guard)
    system.add_static(app)
    # The web client's pages and files, after every API route.
    webapp.add_routes(app, config.web_dist)
    app[keys.READINESS] = system.readiness_probe(app)
    app[keys.OPENAPI] = system.OpenApiDocument(
        lambda: openapi_document(config.public_url, table))
    return app
