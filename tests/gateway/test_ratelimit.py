"""Rate limits counted in real Redis, shared across gateway replicas."""

from __future__ import annotations

import secrets

import pytest
from redis.asyncio import Redis

from gateway.errors import ApiError
from gateway.ratelimit import RateLimiter


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return f"{redis_prefix}rl-{secrets.token_hex(4)}:"


async def test_batched_limit_refuses_beyond_the_limit_with_retry_after(redis_url: str, prefix: str) -> None:
    redis = Redis.from_url(redis_url)
    limiter = RateLimiter(redis, prefix, flush_interval=0.01)
    for _ in range(5):
        await limiter.hit("user", "u1", 5)
    with pytest.raises(ApiError) as info:
        await limiter.hit("user", "u1", 5)
    assert info.value.status == 429
    assert info.value.retry_after is not None
    assert 1 <= info.value.retry_after <= 60
    await limiter.hit("user", "u2", 5)  # another user has a budget of their own
    await limiter.close()
    await redis.aclose()


async def test_replicas_share_counts_through_redis(redis_url: str, prefix: str) -> None:
    redis = Redis.from_url(redis_url)
    first, second = RateLimiter(redis, prefix), RateLimiter(redis, prefix)
    for _ in range(4):
        await first.hit("user", "shared", 6)
    await first.flush()
    await second.hit("user", "shared", 6)
    await second.flush()  # learns the other replica's 4 hits along with its own
    await second.hit("user", "shared", 6)
    with pytest.raises(ApiError):
        await second.hit("user", "shared", 6)
    await first.close()
    await second.close()
    await redis.aclose()


async def test_exact_mode_counts_every_request_in_redis(redis_url: str, prefix: str) -> None:
    redis = Redis.from_url(redis_url)
    replicas = [RateLimiter(redis, prefix) for _ in range(3)]
    for limiter in replicas:
        await limiter.hit("ip", "10.0.0.1", 3, exact=True)
    with pytest.raises(ApiError):
        await replicas[0].hit("ip", "10.0.0.1", 3, exact=True)
    await redis.aclose()


async def test_redis_outage_lets_requests_through() -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = RateLimiter(dead, "x:")
    for _ in range(3):
        await limiter.hit("ip", "1.2.3.4", 1, exact=True)
        await limiter.hit("user", "u", 100)
    await limiter.flush()
    await dead.aclose()


async def test_zero_disables_the_limit(redis_url: str, prefix: str) -> None:
    limiter = RateLimiter(Redis.from_url(redis_url), prefix)
    for _ in range(100):
        await limiter.hit("user", "u", 0)
