"""Typed application keys: every shared resource the gateway holds."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from gateway.config import GatewayConfig
from gateway.grpc_clients import Backends

CONFIG = web.AppKey("config", GatewayConfig)
REDIS = web.AppKey("redis", Redis)
BACKENDS = web.AppKey("backends", Backends)
