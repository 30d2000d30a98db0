"""Helpers shared by the fault and security tests: a private platform, polling, error bodies."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from scripts.devdeps import PrivatePostgres, PrivateRedis
from scripts.platform import LocalPlatform, free_port
from tests.helpers.waiting import apoll, poll

# The waits live in tests/helpers/waiting.py; the fault tests import them from here too.
__all__ = ["FaultyWorld", "aget", "apoll", "assert_error", "poll", "private_world", "ready_check",
           "wait_all_ready"]


@dataclass
class FaultyWorld:
    """A whole platform whose PostgreSQL and Redis belong to this test module alone."""

    platform: LocalPlatform
    postgres: PrivatePostgres
    redis: PrivateRedis

    @property
    def url(self) -> str:
        return self.platform.url


@contextlib.contextmanager
def private_world(base_env: Mapping[str, str], root: Path, **extra: str) -> Iterator[FaultyWorld]:
    """Private servers on free ports with their data under `root`, and every process on them.

    Nothing is shared with other platforms of the test run: not the database, not Redis
    (so not the AI job queue or realtime channels either).
    """
    postgres = PrivatePostgres(free_port(), root / "postgres", database="tandem")
    redis = PrivateRedis(free_port(), root / "redis")
    postgres.start()
    try:
        redis.start()
        try:
            env = dict(base_env, DATABASE_URL=postgres.url, REDIS_URL=redis.url,
                       # Sign-ins and bursts of requests are the test's business, not the limiter's.
                       RATE_LIMIT_AUTH_PER_MINUTE="0", RATE_LIMIT_USER_PER_MINUTE="0",
                       REALTIME_RATE_PER_SECOND="0",
                       # Quick notice of an event whose publish was lost during an outage.
                       REALTIME_SEQ_CHECK_SECONDS="1")
            env.update(extra)
            platform = LocalPlatform.create(env)
            with platform:
                platform.wait_ready(90)
                yield FaultyWorld(platform, postgres, redis)
        finally:
            redis.stop()
    finally:
        postgres.stop()


async def aget(url: str, **kwargs: Any) -> httpx.Response:
    """One GET without blocking the event loop (tests mix HTTP with open WebSockets)."""
    async with httpx.AsyncClient(timeout=kwargs.pop("timeout", 5)) as client:
        return await client.get(url, **kwargs)


def ready_check(url: str, name: str, status: str) -> Callable[[], dict[str, Any] | None]:
    """A probe answering /ready's body once the check `name` has `status` ("up"/"down")."""

    def probe() -> dict[str, Any] | None:
        reply = httpx.get(url + "/ready", timeout=3)
        body: dict[str, Any] = reply.json()
        if body["checks"][name]["status"] != status:
            return None
        if status == "down" and reply.status_code != 503:
            return None
        return body

    return probe


def wait_all_ready(url: str, timeout: float = 30) -> float:
    """Seconds until /ready answers 200."""
    def probe() -> bool | None:
        return True if httpx.get(url + "/ready", timeout=3).status_code == 200 else None
    return poll(probe, timeout, "/ready 200")[1]


def assert_error(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """`reply` is the standard error body with this status and code word."""
    assert reply.status_code == status, f"{reply.status_code} {reply.text[:300]}"
    assert reply.headers["Content-Type"].startswith("application/json"), reply.headers
    error: dict[str, Any] = reply.json()["error"]
    assert error["code"] == code, error
    assert error["message"], error
    assert error["request_id"] == reply.headers["X-Request-Id"], error
    return error
