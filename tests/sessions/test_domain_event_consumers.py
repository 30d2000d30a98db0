"""Other services' consumers of the sessions domain events: nothing handed out is lost.

Review and ai purge deleted sessions through `services.common.sessionevents`; these
tests hold its promises on a real Redis: an entry whose handler failed is handled
again, one a stopped consumer was handed is claimed by a live one, a malformed
entry is dropped instead of blocking the ones after it, and the loop stops when
cancelled even while Redis hangs in the middle of a call.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from services.common.domainevents import SESSION_DELETED, DomainEvent, deleted_session
from services.common.sessionevents import ConsumerSettings, DomainEventConsumer, consume
from tests.helpers.faults import Mode, tcp_fault
from tests.helpers.waiting import stopped_when_cancelled

FAST = ConsumerSettings(block_ms=100, claim_idle_ms=0, claim_every_seconds=0.05)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis_client = Redis.from_url(redis_url)
    try:
        yield redis_client
    finally:
        await redis_client.aclose()


@pytest.fixture
def stream(redis_prefix: str) -> str:
    return f"{redis_prefix}test:domain-events:{secrets.token_hex(4)}"


async def _deleted(client: Redis, stream: str) -> str:
    session_id = str(uuid.uuid4())
    await client.xadd(stream, {"event_id": str(uuid.uuid4()), "type": SESSION_DELETED,
                               "data": orjson.dumps({"session_id": session_id})})
    return session_id


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.02)


async def _pending(client: Redis, stream: str, group: str) -> int:
    summary: Any = await client.xpending(stream, group)
    return int(summary["pending"])


async def test_an_entry_whose_handler_failed_is_handled_again_and_bad_ones_do_not_block(
        client: Redis, stream: str) -> None:
    handled: list[str] = []
    failures = ["database unavailable"]

    async def handler(event: DomainEvent) -> None:
        if failures:
            raise RuntimeError(failures.pop())
        session_id = deleted_session(event)
        if session_id is not None:
            handled.append(session_id)

    consumer = DomainEventConsumer(client, stream, "purge", handler, FAST, name="one")
    await consumer.ensure_group()
    first = await _deleted(client, stream)
    await client.xadd(stream, {"type": SESSION_DELETED, "data": b"not json"})
    await client.xadd(stream, {"type": SESSION_DELETED, "data": orjson.dumps({"session_id": 7})})
    second = await _deleted(client, stream)
    with pytest.raises(RuntimeError):
        await consumer.handle(await consumer.read())
    # Nothing was acknowledged: the failed entry and the ones after it wait.
    assert handled == []
    assert await _pending(client, stream, "purge") == 4
    task = asyncio.create_task(consumer.run())
    try:
        await _until(lambda: _handled_all(client, stream, handled, [first, second]))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert handled == [first, second]


async def _handled_all(client: Redis, stream: str, handled: list[str], wanted: list[str]) -> bool:
    return handled == wanted and await _pending(client, stream, "purge") == 0


async def test_entries_a_stopped_consumer_was_handed_are_claimed_by_a_live_one(
        client: Redis, stream: str) -> None:
    handled: list[str] = []

    async def handler(event: DomainEvent) -> None:
        session_id = deleted_session(event)
        if session_id is not None:
            handled.append(session_id)

    stopped = DomainEventConsumer(client, stream, "purge", handler, FAST, name="stopped")
    await stopped.ensure_group()
    session_id = await _deleted(client, stream)
    assert len(await stopped.read()) == 1  # handed out, then the replica stopped
    alive = DomainEventConsumer(client, stream, "purge", handler, FAST, name="alive")
    task = asyncio.create_task(alive.run())
    try:
        await _until(lambda: _handled_all(client, stream, handled, [session_id]))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_group_created_after_the_deletion_still_sees_it(client: Redis,
                                                               stream: str) -> None:
    # The stream exists (sessions wrote to it) before this service ever started.
    session_id = await _deleted(client, stream)
    handled: list[str] = []

    async def handler(event: DomainEvent) -> None:
        found = deleted_session(event)
        if found is not None:
            handled.append(found)

    consumer = DomainEventConsumer(client, stream, "late", handler, FAST)
    await consumer.ensure_group()
    await consumer.handle(await consumer.read())
    assert handled == [session_id]


async def test_the_consumer_loop_stops_when_cancelled_while_redis_hangs_mid_call(
        redis_url: str, stream: str) -> None:
    async def handler(event: DomainEvent) -> None:
        raise AssertionError("nothing is read")

    with tcp_fault(redis_url, Mode.HANG) as fault:
        task = asyncio.create_task(consume(fault.url, stream, "purge", handler, FAST,
                                           lambda: True))
        try:
            await _until(lambda: _true(fault.hung_bytes > 0))  # a call is waiting for Redis
            await stopped_when_cancelled(task)
        finally:
            task.cancel()


async def _true(value: bool) -> bool:
    return value


async def test_an_entry_trimmed_while_pending_is_acknowledged_not_left_pending(
        client: Redis, stream: str) -> None:
    async def handler(event: DomainEvent) -> None:
        raise AssertionError("a trimmed entry has nothing to handle")

    consumer = DomainEventConsumer(client, stream, "purge", handler, FAST, name="one")
    await consumer.ensure_group()
    await _deleted(client, stream)
    (entry_id, _), = await consumer.read()
    await client.xdel(stream, entry_id)  # what MAXLEN trimming does to an old entry
    assert await consumer.read("0") == []
    assert await _pending(client, stream, "purge") == 0
