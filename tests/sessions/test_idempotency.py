"""The gateway's Idempotency-Key helper against real Redis: in-flight waits, 409, release, outage."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.errors import ApiError, api_error_response
from gateway.http import json_response
from gateway.idempotency import HEADER, REPLAYED, run_once
from services.common.keyspace import KeySpace
from services.common.redisutil import create_redis


class Counter:
    def __init__(self) -> None:
        self.runs = 0
        self.lookups = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.status = 201


@asynccontextmanager
async def _server(redis_url: str, prefix: str, counter: Counter,
                  wait_seconds: float = 5.0) -> AsyncIterator[httpx.AsyncClient]:
    client = create_redis(redis_url)
    space = KeySpace(prefix, "gateway-test")
    real_get = client.get

    async def counting_get(name: str) -> Any:
        # A duplicate reads the slot it could not claim: tests wait for that moment.
        counter.lookups += 1
        return await real_get(name)

    client.get = counting_get  # type: ignore[method-assign]

    async def handler(request: web.Request) -> web.Response:
        async def run() -> web.Response:
            counter.runs += 1
            number = counter.runs
            await counter.gate.wait()
            if counter.status >= 400:
                raise ApiError(counter.status, "unavailable", "try again")
            return json_response({"run": number}, counter.status)

        try:
            return await run_once(client, space, request, "user-1", run, wait_seconds=wait_seconds)
        except ApiError as exc:
            return api_error_response(exc)

    app = web.Application()
    app.router.add_post("/things", handler)
    server = TestServer(app)
    await server.start_server()
    try:
        async with httpx.AsyncClient(base_url=str(server.make_url("")), timeout=10) as http:
            yield http
    finally:
        await server.close()
        await client.aclose()


def _key() -> dict[str, str]:
    return {HEADER: secrets.token_hex(8)}


async def test_a_duplicate_waits_for_the_first_and_gets_its_answer(
        redis_url: str, redis_prefix: str) -> None:
    counter = Counter()
    counter.gate.clear()
    async with _server(redis_url, redis_prefix, counter) as http:
        key = _key()
        first = asyncio.create_task(http.post("/things", json={"a": 1}, headers=key))
        await _until(lambda: counter.runs == 1)
        second = asyncio.create_task(http.post("/things", json={"a": 1}, headers=key))
        await _until(lambda: counter.lookups >= 2)  # the duplicate is polling the pending slot
        counter.gate.set()
        one, two = await first, await second
    assert (one.status_code, two.status_code) == (201, 201)
    assert two.json() == one.json() == {"run": 1}
    assert two.headers[REPLAYED] == "true"
    assert counter.runs == 1


async def test_a_duplicate_still_in_flight_after_the_wait_is_a_conflict(
        redis_url: str, redis_prefix: str) -> None:
    counter = Counter()
    counter.gate.clear()
    async with _server(redis_url, redis_prefix, counter, wait_seconds=0.2) as http:
        key = _key()
        first = asyncio.create_task(http.post("/things", json={"a": 1}, headers=key))
        await _until(lambda: counter.runs == 1)
        duplicate = await http.post("/things", json={"a": 1}, headers=key)
        other_body = await http.post("/things", json={"a": 2}, headers=key)
        counter.gate.set()
        assert (await first).status_code == 201
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "conflict"
    assert other_body.status_code == 422
    assert counter.runs == 1


async def test_a_failed_first_attempt_releases_the_key(redis_url: str, redis_prefix: str) -> None:
    counter = Counter()
    counter.status = 503
    async with _server(redis_url, redis_prefix, counter) as http:
        key = _key()
        assert (await http.post("/things", json={}, headers=key)).status_code == 503
        counter.status = 201
        retried = await http.post("/things", json={}, headers=key)
    assert retried.status_code == 201
    assert REPLAYED not in retried.headers
    assert counter.runs == 2


async def test_json_bodies_compare_canonically(redis_url: str, redis_prefix: str) -> None:
    counter = Counter()
    async with _server(redis_url, redis_prefix, counter) as http:
        key = _key()
        await http.post("/things", content=b'{"a": 1, "b": 2}', headers=key)
        again = await http.post("/things", content=b'{"b":2,"a":1}', headers=key)
    assert again.headers[REPLAYED] == "true"
    assert counter.runs == 1


async def test_without_redis_requests_run_without_the_guarantee(redis_prefix: str) -> None:
    counter = Counter()
    async with _server("redis://127.0.0.1:1/0", redis_prefix, counter) as http:
        key = _key()
        replies = [await http.post("/things", json={}, headers=key) for _ in range(2)]
    assert [r.status_code for r in replies] == [201, 201]
    assert counter.runs == 2


async def test_keys_are_stored_under_the_prefix_for_a_day(redis_url: str, redis_prefix: str) -> None:
    counter = Counter()
    async with _server(redis_url, redis_prefix, counter) as http:
        await http.post("/things", json={}, headers=_key())
    client = Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{redis_prefix}gateway-test:idem:user-1:*")]
        assert keys
        assert 23 * 3600 < await client.ttl(keys[0]) <= 24 * 3600
    finally:
        await client.aclose()


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if check():
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)

