"""Typed application keys: every shared resource the gateway holds."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from gateway.config import GatewayConfig
from gateway.grpc_clients import Backends
from gateway.ratelimit import RateLimiter
from gateway.realtime.config import RealtimeConfig
from gateway.realtime.hub import Hub
from gateway.usercache import UserCache

CONFIG = web.AppKey("config", GatewayConfig)
REDIS = web.AppKey("redis", Redis)
BACKENDS = web.AppKey("backends", Backends)
LIMITER = web.AppKey("limiter", RateLimiter)
REALTIME = web.AppKey("realtime", RealtimeConfig)
HUB = web.AppKey("hub", Hub)
# [document, loaded_at]: the JWKS served at /.well-known/jwks.json, cached briefly.
JWKS_CACHE = web.AppKey("jwks_cache", list)
USER_CACHE = web.AppKey("user_cache", UserCache)
