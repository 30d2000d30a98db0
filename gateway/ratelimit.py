"""Rate limits in Redis, shared by every gateway replica: per IP on auth routes, per user elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.errors import ApiError

log = logging.getLogger(__name__)

Key = tuple[str, str, int]


class RateLimiter:
    """Fixed one-minute windows counted in Redis.

    `exact=True` (auth routes, where brute force matters) does one INCR round
    trip per request. The default batches: hits are counted locally and
    flushed to Redis every `flush_interval` in one pipeline, which also reads
    back the totals of every replica. A replica therefore sees the others' hits
    at most one interval late — a small overshoot traded for taking a Redis
    round trip off every API request.

    When Redis is down the limiter lets requests through: an outage of the
    limiter must not become an outage of the API.
    """

    def __init__(self, redis: Redis, prefix: str, flush_interval: float = 0.05) -> None:
        self._redis = redis
        self._prefix = prefix
        self._interval = flush_interval
        self._pending: dict[Key, int] = {}
        self._known: dict[Key, int] = {}
        self._flusher: asyncio.Task[None] | None = None

    def _redis_key(self, key: Key) -> str:
        return f"{self._prefix}rl:{key[0]}:{key[1]}:{key[2]}"

    @staticmethod
    def _refuse(limit: int, now: float) -> ApiError:
        retry = max(1, int(60 - now % 60))
        return ApiError(429, "rate_limited", f"too many requests: limit is {limit} per minute",
                        retry_after=retry)

    async def hit(self, scope: str, who: str, limit: int, *, exact: bool = False) -> None:
        if limit <= 0:
            return
        now = time.time()
        key: Key = (scope, who, int(now // 60))
        if exact:
            await self._hit_exact(key, limit, now)
            return
        seen = self._known.get(key, 0) + self._pending.get(key, 0)
        if seen >= limit:
            raise self._refuse(limit, now)
        self._pending[key] = self._pending.get(key, 0) + 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())

    async def _hit_exact(self, key: Key, limit: int, now: float) -> None:
        name = self._redis_key(key)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(name)
                pipe.expire(name, 61)
                count, _ = await pipe.execute()
        except (RedisError, OSError):
            log.warning("rate limiter unavailable; allowing request", extra={"scope": key[0]})
            return
        if int(count) > limit:
            raise self._refuse(limit, now)

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self._interval)
        await self.flush()

    async def flush(self) -> None:
        """Push local counts to Redis and learn every replica's totals."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        current = int(time.time() // 60)
        keys = list(pending)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.incrby(self._redis_key(key), pending[key])
                    pipe.expire(self._redis_key(key), 61)
                results = await pipe.execute()
        except (RedisError, OSError):
            log.warning("rate limiter unavailable; counts for this interval dropped")
            return
        for index, key in enumerate(keys):
            self._known[key] = int(results[index * 2])
        # Forget windows that are over so memory stays bounded by active callers.
        for key in [k for k in self._known if k[2] < current]:
            del self._known[key]

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        with contextlib.suppress(Exception):
            await self.flush()
