"""Dependency failures turn the platform not-ready (naming the culprit) and it recovers alone."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.devdeps import PrivateRedis, find_free_port
from scripts.platform import LocalPlatform

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _poll(url: str, until: Callable[[httpx.Response], bool], timeout: float) -> tuple[httpx.Response, float]:
    """Poll `url` until `until(reply)`; return the reply and how long it took."""
    start = time.monotonic()
    last: httpx.Response | None = None
    while time.monotonic() - start < timeout:
        try:
            last = httpx.get(url, timeout=2.0)
            if until(last):
                return last, time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout}s; last answer: "
                         f"{last.status_code if last else None} {last.text if last else ''}")


def _down(name: str) -> Callable[[httpx.Response], bool]:
    def check(reply: httpx.Response) -> bool:
        body: dict[str, Any] = reply.json()
        return reply.status_code == 503 and body["checks"][name]["status"] == "down"
    return check


@pytest.fixture
def own_platform(base_env: dict[str, str]) -> Iterator[LocalPlatform]:
    plat = LocalPlatform.create(base_env, github_standin=False, openai_standin=False)
    with plat:
        plat.wait_ready(90)
        yield plat


def test_killed_service_is_named_in_ready_and_recovers(own_platform: LocalPlatform) -> None:
    ready = own_platform.url + "/ready"
    own_platform.stop("sessions", timeout=5)
    # Within 5 s (the poll's deadline): a health interval of 0.5 s plus a check, with room.
    reply, _ = _poll(ready, _down("sessions"), timeout=5)
    body = reply.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["sessions"]["reason"]
    assert body["checks"]["auth"]["status"] == "up"
    assert httpx.get(own_platform.url + "/health").status_code == 200
    own_platform.start(["sessions"])
    _poll(ready, lambda r: r.status_code == 200, timeout=30)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(port=find_free_port(57000), data_dir=tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_redis_outage_turns_ready_503_within_5s_and_recovers(
        base_env: dict[str, str], private_redis: PrivateRedis) -> None:
    env = dict(base_env, REDIS_URL=private_redis.url)
    plat = LocalPlatform.create(env, github_standin=False, openai_standin=False)
    with plat:
        plat.wait_ready(90)
        ready = plat.url + "/ready"
        private_redis.stop()
        reply, _ = _poll(ready, _down("redis"), timeout=5)
        assert "reason" in reply.json()["checks"]["redis"]
        # Services depend on Redis too: their health follows within the same bound.
        _poll(ready, _down("sessions"), timeout=5)
        assert httpx.get(plat.url + "/health").status_code == 200
        private_redis.start()
        _poll(ready, lambda r: r.status_code == 200, timeout=30)
