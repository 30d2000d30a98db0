"""Typed application and request keys: every shared resource the gateway holds, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from redis.asyncio import Redis

from gateway.config import GatewayConfig
from gateway.grpc_clients import Backends
from gateway.ratelimit import RateLimiter
from gateway.realtime.config import RealtimeConfig
from gateway.realtime.hub import Hub
from gateway.usercache import UserCache
from services.common.identity import TokenVerifier

if TYPE_CHECKING:
    # These modules import this one: their types are named for the type checker only.
    from gateway.auth import Auth
    from gateway.routes.system import OpenApiDocument, ReadinessProbe

CONFIG = web.AppKey("config", GatewayConfig)
REDIS = web.AppKey("redis", Redis)
BACKENDS = web.AppKey("backends", Backends)
LIMITER = web.AppKey("limiter", RateLimiter)
REALTIME = web.AppKey("realtime", RealtimeConfig)
HUB = web.AppKey("hub", Hub)
# [document, loaded_at]: the JWKS served at /.well-known/jwks.json, cached briefly.
JWKS_CACHE = web.AppKey("jwks_cache", list)
USER_CACHE = web.AppKey("user_cache", UserCache)
VERIFIER = web.AppKey("verifier", TokenVerifier)
OPENAPI: web.AppKey[OpenApiDocument] = web.AppKey("openapi")
READINESS: web.AppKey[ReadinessProbe] = web.AppKey("readiness")

# The verified caller of an `auth=True` operation, set by the route table before the handler.
AUTH: web.RequestKey[Auth] = web.RequestKey("auth")
