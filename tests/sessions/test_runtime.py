"""The background loops (notifications consumer, outbox relay) ride out a Redis that is down or
stuck, lose nothing, recover by themselves, and stop when cancelled even mid-call.

Redis really fails here: the loops are pointed at a port (tests/helpers/faults.py) that is
closed, hangs, or forwards to the real Redis.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import psycopg
import pytest
from redis.asyncio import Redis

from services.common.channels import RealtimeChannels
from services.common.db import create_pool, load_migrations, migrate
from services.common.domainevents import domain_events_stream
from services.common.grpcserver import Pool
from services.common.redisutil import create_redis
from services.common.sessionevents import ConsumerSettings
from services.sessions.cache import RedisGuard
from services.sessions.events import Publisher, run_outbox_relay
from services.sessions.notifications import run_notifications
from services.sessions.repository import SessionsRepository
from tests.helpers.faults import Mode, TcpFault, tcp_fault
from tests.helpers.waiting import stopped_when_cancelled
from tests.sessions.conftest import World, eventually


async def _hung_call_in_flight(fault: TcpFault) -> bool:
    return fault.hung_bytes > 0


def _until(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return predicate()
    return check


async def test_the_notifications_loop_waits_out_a_closed_redis_catches_up_and_stops_mid_call(
        world: World, redis_url: str) -> None:
    session = await world.create()
    # A prefix of its own: the service's own consumer does not read this stream.
    prefix = f"{world.res.config.redis_prefix}fault-{secrets.token_hex(4)}:"
    stream = domain_events_stream(prefix)
    with tcp_fault(redis_url, Mode.CLOSED) as fault:
        res = dataclasses.replace(world.res, config=dataclasses.replace(
            world.res.config, redis_url=fault.url, redis_prefix=prefix))
        loop = asyncio.create_task(run_notifications(res, ConsumerSettings(block_ms=100)))
        real = Redis.from_url(redis_url)
        try:
            # Written while the loop cannot reach Redis, as the outbox relay would write it.
            event_id = str(uuid.uuid4())
            await real.xadd(stream, {"event_id": event_id, "type": "member.removed",
                                           "data": orjson.dumps({
                                               "session_id": session.id, "session_title": "t",
                                               "user_id": world.editor.user_id,
                                               "actor_id": world.owner.user_id})})
            fault.set(Mode.FORWARD)

            async def delivered() -> list[dict[str, object]]:
                return await world.sql("SELECT recipient_id::text AS who, kind FROM notifications "
                                       "WHERE event_id = %s", event_id)

            rows = await eventually(delivered, timeout=30)
            assert rows == [{"who": world.editor.user_id, "kind": "member.removed"}]
            assert not loop.done(), "the loop keeps consuming after it caught up"

            # Now Redis gets stuck mid-call: the loop still stops when the service does.
            fault.set(Mode.HANG)
            await eventually(lambda: _hung_call_in_flight(fault), timeout=30)
            await stopped_when_cancelled(loop)
        finally:
            loop.cancel()
            await real.aclose()


@pytest.fixture
async def own_outbox(database_url: str) -> AsyncIterator[Pool]:
    """The sessions schema in a schema of its own: the service's relay never sees its outbox."""
    schema = f"sessions_fault_{secrets.token_hex(4)}"
    await migrate(database_url, schema, load_migrations("services.sessions.migrations"))
    pool = create_pool(database_url, schema, 1, 2, "test-outbox")
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE'.encode())


async def _stale_outbox_row(pool: Pool) -> str:
    """A domain event its request could not publish (Redis was down when it committed)."""
    async with SessionsRepository(pool).transaction() as tx:
        event = await tx.add_outbox("session.ended", {"session_id": str(uuid.uuid4())})
        await tx.conn.execute(b"UPDATE outbox SET created_at = now() - interval '1 minute' "
                              b"WHERE id = %s", (event.outbox_id,))
    return event.event_id


async def _outbox_ids(pool: Pool) -> list[str]:
    async with pool.connection() as conn:
        cur = await conn.execute(b"SELECT event_id::text AS id FROM outbox ORDER BY id")
        return [row["id"] for row in await cur.fetchall()]


async def test_the_outbox_relay_keeps_rows_while_redis_is_stuck_relays_them_after_and_stops_mid_call(
        own_outbox: Pool, redis_url: str, redis_prefix: str) -> None:
    prefix = f"{redis_prefix}fault-{secrets.token_hex(4)}:"
    stream = domain_events_stream(prefix)
    first = await _stale_outbox_row(own_outbox)
    with tcp_fault(redis_url, Mode.HANG) as fault:
        client = create_redis(fault.url)
        publisher = Publisher(RealtimeChannels(prefix), stream, RedisGuard(client),
                              SessionsRepository(own_outbox))
        relay = asyncio.create_task(run_outbox_relay(publisher, interval=0.05))
        real = Redis.from_url(redis_url)
        try:
            # Stuck long enough for the client to give up (socket timeout) and try again.
            await eventually(_until(lambda: fault.accepted >= 2), timeout=30)
            assert not relay.done()
            assert await _outbox_ids(own_outbox) == [first], "nothing is dropped while stuck"

            fault.set(Mode.FORWARD)

            async def relayed() -> bool:
                return not await _outbox_ids(own_outbox)

            await eventually(relayed, timeout=30)
            entries = await real.xrange(stream)
            assert [fields[b"event_id"].decode() for _, fields in entries] == [first]

            # Stuck again with a row to relay: the relay is mid-XADD when the service stops.
            fault.set(Mode.HANG)
            second = await _stale_outbox_row(own_outbox)
            await eventually(lambda: _hung_call_in_flight(fault), timeout=30)
            await stopped_when_cancelled(relay)
            assert await _outbox_ids(own_outbox) == [second], "a cancelled relay keeps the row"
        finally:
            relay.cancel()
            await client.aclose()
            await real.aclose()
