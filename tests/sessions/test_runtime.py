"""The background loops (notifications consumer, outbox relay) stop when cancelled, whatever Redis does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest
import redis.exceptions

from services.common.sessionevents import DomainEventConsumer
from services.sessions.cache import RedisGuard
from services.sessions.events import Publisher, run_outbox_relay
from services.sessions.notifications import ConsumerSettings, run_notifications
from services.sessions.repository import Repository
from tests.sessions.conftest import World


class Swallower:
    """A Redis call that, like redis-py mid-read, turns a cancellation into its own TimeoutError.

    Only the loop under test gets that behaviour; the service's own loops (the class is
    patched) just idle.
    """

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.target: asyncio.Task[None] | None = None

    async def __call__(self, *_: Any, **__: Any) -> Any:
        if asyncio.current_task() is not self.target:
            await asyncio.sleep(0.1)
            return []
        self.entered.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise redis.exceptions.TimeoutError("Timeout reading from redis") from None
        return []


async def _stops_when_cancelled(loop_coro: Awaitable[None], swallower: Swallower) -> None:
    task = asyncio.ensure_future(loop_coro)
    swallower.target = task
    await asyncio.wait_for(swallower.entered.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=3)


async def test_the_notifications_loop_stops_even_if_redis_swallows_the_cancel(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    swallower = Swallower()
    monkeypatch.setattr(DomainEventConsumer, "read", swallower)
    await _stops_when_cancelled(run_notifications(world.res, ConsumerSettings(block_ms=100)),
                                swallower)


async def test_the_outbox_relay_stops_even_if_redis_swallows_the_cancel(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    swallower = Swallower()
    monkeypatch.setattr(Publisher, "relay_once", swallower)
    publisher = Publisher(world.res.keys, RedisGuard(world.res.redis), Repository(world.res.pool))
    await _stops_when_cancelled(run_outbox_relay(publisher), swallower)
