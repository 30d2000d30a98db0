"""Rate limits counted in real Redis, shared across gateway replicas, per client behind proxies."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.clientaddr import TrustedProxies, parse_networks
from gateway.config import GatewayConfig
from gateway.errors import ApiError
from gateway.grpc_clients import SERVICES
from gateway.ratelimit import RateLimiter
from scripts.platform import free_port
from services.common.config import ConfigError, Env


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


# --- the client address behind proxies (TRUSTED_PROXIES), through a real gateway --------

Gateway = Callable[..., AbstractAsyncContextManager["TestClient[web.Request, web.Application]"]]
LOGIN = "/api/v1/auth/github/login"


@pytest.fixture
def gateway(base_env: dict[str, str], prefix: str) -> Gateway:
    """An in-process gateway over the run's Redis with an auth limit of 2 a minute.

    The services point at a closed port: a request the limit lets through gets 503 from
    the login route, one it refuses gets 429 before any service is called. Its TCP peer
    (this test) is 127.0.0.1.
    """

    @asynccontextmanager
    async def start(**overrides: str) -> AsyncIterator[TestClient[web.Request, web.Application]]:
        closed = f"127.0.0.1:{free_port()}"
        env = {**base_env, "GATEWAY_PORT": "0", "REDIS_PREFIX": prefix,
               "RATE_LIMIT_AUTH_PER_MINUTE": "2",
               **{f"{s.upper()}_ADDR": closed for s in SERVICES}, **overrides}
        async with TestClient(TestServer(create_app(GatewayConfig.from_env(Env(env))))) as client:
            yield client

    return start


async def _statuses(client: TestClient[web.Request, web.Application], forwarded_for: list[str]) -> list[int]:
    """Login once per entry (its X-Forwarded-For), all inside one one-minute window."""
    left = 60 - time.time() % 60
    if left < 5:
        # Windows are fixed minutes: start in the next one rather than straddle the turn.
        await asyncio.sleep(left + 0.05)
    window = int(time.time() // 60)
    statuses = []
    for value in forwarded_for:
        reply = await client.get(LOGIN, headers={"X-Forwarded-For": value}, allow_redirects=False)
        statuses.append(reply.status)
        if reply.status == 429:
            assert (await reply.json())["error"]["code"] == "rate_limited"
    assert int(time.time() // 60) == window, "the requests took more than 5 s"
    return statuses


async def test_behind_a_trusted_proxy_each_client_has_its_own_sign_in_budget(gateway: Gateway) -> None:
    async with gateway(TRUSTED_PROXIES="127.0.0.1") as client:
        statuses = await _statuses(client, [
            "198.51.100.7", "198.51.100.7", "198.51.100.7",  # one client uses up its 2
            "198.51.100.8",                                  # another is not blocked by it
            "203.0.113.9, 198.51.100.7",  # a forged entry left of the proxy's buys nothing
        ])
    assert statuses == [503, 503, 429, 503, 429]


async def test_an_untrusted_peers_forwarded_for_is_ignored(gateway: Gateway) -> None:
    # Not a proxy of ours: X-Forwarded-For is whatever the client wrote, so it keys nothing.
    async with gateway(TRUSTED_PROXIES="10.0.0.0/8") as client:
        statuses = await _statuses(client, ["198.51.100.7", "198.51.100.8", "198.51.100.9"])
    assert statuses == [503, 503, 429]


def _proxies(*items: str) -> TrustedProxies:
    return TrustedProxies(parse_networks(items))


@pytest.mark.parametrize(("trusted", "peer", "forwarded_for", "client"), [
    # No trusted proxies (the default): the header is the client's word, never believed.
    ((), "198.51.100.7", ["203.0.113.1"], "198.51.100.7"),
    # Peer not trusted: the same.
    (("10.0.0.0/8",), "198.51.100.7", ["203.0.113.1"], "198.51.100.7"),
    # One trusted proxy: the entry it appended is the client.
    (("10.0.0.0/8",), "10.1.2.3", ["203.0.113.1"], "203.0.113.1"),
    # Entries left of the first untrusted one are the client's own forgery.
    (("10.0.0.0/8",), "10.1.2.3", ["1.1.1.1, 2.2.2.2, 203.0.113.1"], "203.0.113.1"),
    # A chain of trusted proxies is skipped from the right.
    (("10.0.0.0/8", "192.0.2.10"), "10.1.2.3", ["6.6.6.6, 203.0.113.1, 192.0.2.10, 10.9.9.9"],
     "203.0.113.1"),
    # Several header lines are one list in order.
    (("10.0.0.0/8",), "10.1.2.3", ["6.6.6.6", "203.0.113.1, 10.9.9.9"], "203.0.113.1"),
    # Everything trusted (a call from inside the cluster): the leftmost address.
    (("10.0.0.0/8",), "10.1.2.3", ["10.4.4.4, 10.5.5.5"], "10.4.4.4"),
    # A trusted peer without the header: the peer itself.
    (("10.0.0.0/8",), "10.1.2.3", [], "10.1.2.3"),
    # Garbage passed on by a trusted hop: the nearest hop known, never the garbage.
    (("10.0.0.0/8",), "10.1.2.3", ["evil, 10.5.5.5"], "10.5.5.5"),
    (("10.0.0.0/8",), "10.1.2.3", [""], "10.1.2.3"),
    # Ports and brackets as some proxies write them; IPv6; IPv4-mapped peers.
    (("10.0.0.0/8",), "10.1.2.3", ["203.0.113.1:4711"], "203.0.113.1"),
    (("2001:db8::/32",), "2001:db8::1", ["[2001:db8:ffff::2]:443, [2001:db9::5]:443, 2001:db8::7"],
     "2001:db9::5"),
    (("127.0.0.1",), "::ffff:127.0.0.1", ["203.0.113.1"], "203.0.113.1"),
    ((), "::ffff:198.51.100.7", [], "198.51.100.7"),
    ((), None, ["203.0.113.1"], "unknown"),
])
def test_client_address_walks_x_forwarded_for_through_trusted_proxies_only(
        trusted: tuple[str, ...], peer: str | None, forwarded_for: list[str], client: str) -> None:
    assert _proxies(*trusted).client(peer, forwarded_for) == client


@pytest.mark.parametrize("value", ["10.0.0.0/8, not-an-address", "10.0.0.1/8", "10.0.0.0/33"])
def test_a_bad_trusted_proxies_entry_stops_start_up_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        GatewayConfig.from_env(Env({"TANDEM_ENV": "development", "TRUSTED_PROXIES": value}))
    assert info.value.name == "TRUSTED_PROXIES"


def test_trusted_proxies_default_to_none() -> None:
    config = GatewayConfig.from_env(Env({"TANDEM_ENV": "development"}))
    assert not config.trusted_proxies
    assert config.trusted_proxies.client("198.51.100.7", ["203.0.113.1"]) == "198.51.100.7"
