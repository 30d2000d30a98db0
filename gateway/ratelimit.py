"""Rate limits in Redis, shared by every gateway replica: per IP on auth routes, per user elsewhere."""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.errors import ApiError

log = logging.getLogger(__name__)


class RateLimiter:
    """Fixed one-minute windows (INCR + EXPIRE in one round trip).

    When Redis is down the limiter lets requests through: an outage of the
    limiter must not become an outage of the API.
    """

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def hit(self, scope: str, who: str, limit: int) -> None:
        if limit <= 0:
            return
        now = time.time()
        window = int(now // 60)
        key = f"{self._prefix}rl:{scope}:{who}:{window}"
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, 61)
                count, _ = await pipe.execute()
        except (RedisError, OSError):
            log.warning("rate limiter unavailable; allowing request", extra={"scope": scope})
            return
        if int(count) > limit:
            retry = max(1, int(60 - now % 60))
            raise ApiError(429, "rate_limited",
                           f"too many requests: limit is {limit} per minute", retry_after=retry)
