"""The sessions service's domain events as other services consume them: a consumer group each.

The sessions service writes a domain event to its outbox in the transaction of the
change and relays it to the Redis Stream `<REDIS_PREFIX>sessions:domain-events`
(services/sessions/events.py). A service that must act on those events (review and
ai purge a deleted session's data) reads the stream in a consumer group of its own:

- the group remembers how far it has read, so what was written while every replica
  of the service was down waits for it and is handled when one comes back;
- an entry is acknowledged only after its handler returned (committed), so a failure
  or a crash hands it over again: handlers must be idempotent;
- entries a stopped replica was handed and never acknowledged are claimed by a live
  one once they have been idle for `claim_idle_ms`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import redis.exceptions
from redis.asyncio import Redis

from services.common.config import Env
from services.common.domainevents import DomainEvent, domain_events_stream
from services.common.grpcserver import Resources
from services.common.redisutil import REDIS_ERRORS, stop_if_cancelled

__all__ = [
    "ConsumerSettings",
    "DomainEventConsumer",
    "Entry",
    "Handler",
    "PurgeSettings",
    "SessionPurge",
    "consume",
    "every",
    "migrated",
    "run_purge",
]

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]



# Raising leaves the entry pending for another attempt: a handler that can never succeed
# on an event (it is malformed for it) logs that and returns instead.
Handler = Callable[[DomainEvent], Awaitable[None]]



@dataclass(frozen=True, slots=True)
class ConsumerSettings:
    block_ms: int = 2000
    batch: int = 50
    # An entry pending this long belongs to a consumer that stopped: take it over.
    claim_idle_ms: int = 30_000
    claim_every_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class PurgeSettings:
    """How review and ai keep up with deleted sessions."""

    # The sweep deletes again what was written for a deleted session after its purge
    # (an import or a job under way at that moment), every this many seconds ...
    sweep_seconds: float = 60.0
    # ... for this long after the deletion arrived.
    keep_seconds: float = 3600.0
    consumer: ConsumerSettings = ConsumerSettings()

    @classmethod
    def from_env(cls, env: Env) -> PurgeSettings:
        return cls(sweep_seconds=env.float("SESSION_PURGE_SWEEP_SECONDS", 60.0, minimum=0.1))



def migrated(res: Resources) -> bool:
    """Whether the service's schema is ready (consumers wait for it)."""
    return res.health is not None and res.health.migrated


class DomainEventConsumer:
    """One member of a service's consumer group on the sessions domain-events stream."""

    def __init__(self, redis_client: Redis, stream: str, group: str, handler: Handler,
                 settings: ConsumerSettings, name: str | None = None) -> None:
        self._redis = redis_client
        self._stream = stream
        self._group = group
        self._handler = handler
        self._settings = settings
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"

    async def ensure_group(self) -> None:
        # From the start of the stream: a group made after an event still sees it.
        try:
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, start: str = ">") -> list[Entry]:
        """New entries (">", blocking up to block_ms), or this consumer's own pending ("0")."""
        reply: Any = await self._redis.xreadgroup(
            self._group, self.name, {self._stream: start}, count=self._settings.batch,
            block=self._settings.block_ms if start == ">" else None)
        entries = [entry for _, batch in reply or () for entry in batch]
        return await self._without_trimmed(entries)

    async def _without_trimmed(self, entries: Sequence[Any]) -> list[Entry]:
        """Entries trimmed from the stream while pending come back without fields: nothing
        can handle them, so acknowledge them instead of leaving them pending for ever."""
        gone = [entry[0] for entry in entries if entry and not entry[1]]
        if gone:
            await self._redis.xack(self._stream, self._group, *gone)
        return [entry for entry in entries if entry and entry[1]]

    async def claim_stale(self) -> list[Entry]:
        """Entries idle past claim_idle_ms in other consumers' pending lists, now ours."""
        claimed: list[Entry] = []
        start: bytes | str = "0-0"
        while True:
            reply: Any = await self._redis.xautoclaim(self._stream, self._group, self.name,
                                                      min_idle_time=self._settings.claim_idle_ms,
                                                      start_id=start, count=self._settings.batch)
            start, entries = reply[0], reply[1]
            claimed.extend(await self._without_trimmed(entries))
            if start in (b"0-0", "0-0") or not entries:
                return claimed

    async def handle(self, entries: Sequence[Entry]) -> None:
        """Run the handler on each entry in order, acknowledging each once it is done."""
        for entry_id, fields in entries:
            try:
                raw_id = fields.get(b"event_id")
                event = DomainEvent(id=(raw_id or entry_id).decode(), type=fields[b"type"].decode(),
                                    data=orjson.loads(fields[b"data"]))
                if not isinstance(event.data, dict):
                    raise TypeError("data is not an object")
            except (KeyError, ValueError, TypeError, UnicodeDecodeError):
                # A malformed entry would be handed over forever: log it and move on.
                log.error("dropping malformed domain event",
                          extra={"entry_id": entry_id.decode(), "group": self._group})
                await self._redis.xack(self._stream, self._group, entry_id)
                continue
            await self._handler(event)
            await self._redis.xack(self._stream, self._group, entry_id)

    async def run(self) -> None:
        await self.ensure_group()
        # What this consumer was handed before a failure and has not finished comes first.
        while pending := await self.read("0"):
            await self.handle(pending)
        loop = asyncio.get_running_loop()
        next_claim = 0.0
        while True:
            stop_if_cancelled()
            if loop.time() >= next_claim:
                await self.handle(await self.claim_stale())
                next_claim = loop.time() + self._settings.claim_every_seconds
            await self.handle(await self.read())


async def consume(redis_url: str, stream: str, group: str, handler: Handler,
                  settings: ConsumerSettings, is_ready: Callable[[], bool]) -> None:
    """Background job: consume for as long as the service runs, through any outage.

    A dedicated client: XREADGROUP blocks longer than the shared client's socket
    timeout allows. Until `is_ready()` (the schema is migrated) nothing is read;
    Redis or database trouble pauses the loop, which resumes by itself.
    """
    client = Redis.from_url(redis_url, socket_timeout=settings.block_ms / 1000 + 5,
                            socket_connect_timeout=1.0, decode_responses=False)
    consumer = DomainEventConsumer(client, stream, group, handler, settings)
    loop = asyncio.get_running_loop()
    delay = 0.5
    try:
        while True:
            if not is_ready():
                await asyncio.sleep(0.1)
                continue
            started = loop.time()
            try:
                await consumer.run()
            except REDIS_ERRORS as exc:
                stop_if_cancelled()
                log.warning("%s consumer waits for redis: %s", group, type(exc).__name__)
            except Exception as exc:  # database trouble: the entry stays pending
                stop_if_cancelled()
                log.warning("%s consumer failed: %s", group, type(exc).__name__)
            # Back off while failures repeat; a loop that ran fine for a while starts over.
            delay = 0.5 if loop.time() - started > 30 else min(delay * 2, 10.0)
            await asyncio.sleep(delay)
    finally:
        await client.aclose()


async def every(interval: float, job: Callable[[], Awaitable[object]], what: str,
                is_ready: Callable[[], bool]) -> None:
    """Background job: run `job` every `interval` seconds once ready; failures wait a round."""
    while True:
        await asyncio.sleep(interval)
        if not is_ready():
            continue
        try:
            await job()
        except Exception as exc:
            stop_if_cancelled()
            log.warning("%s failed: %s", what, type(exc).__name__)


class SessionPurge(Protocol):
    """What review and ai do with deleted sessions: purge on the event, and sweep again."""

    async def handle(self, event: DomainEvent) -> None: ...

    async def sweep(self) -> None: ...


async def run_purge(res: Resources, group: str, purge: SessionPurge,
                    settings: PurgeSettings) -> None:
    """Background job: the `group` consumer and the sweep, for as long as the service runs."""
    await asyncio.gather(
        consume(res.config.redis_url, domain_events_stream(res.config.redis_prefix), group,
                purge.handle, settings.consumer, lambda: migrated(res)),
        every(settings.sweep_seconds, purge.sweep, "deleted-session sweep",
              lambda: migrated(res)))
