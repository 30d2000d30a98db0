"""Redis through redis.asyncio, with every key under the service's prefix."""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(url: str) -> Redis:
    """A client with short timeouts, so an outage fails calls fast instead of hanging."""
    return Redis.from_url(
        url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        health_check_interval=15,
        max_connections=256,
        decode_responses=False,
    )


class KeySpace:
    """Builds keys under `<REDIS_PREFIX><service>:` so services and test runs never collide."""

    __slots__ = ("prefix",)

    def __init__(self, global_prefix: str, service: str) -> None:
        self.prefix = f"{global_prefix}{service}:"

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)
