"""Publishing after commit: realtime envelopes and document frames on Redis pub/sub, domain
events on a Redis Stream.

The wire formats are contracts of the kit, spoken by other processes too: the channels and
the envelope in services/common/channels.py, the document frames in
services/common/docframes.py, the domain-events stream in services/common/domainevents.py
(read here by the notifications consumer group, and by review and ai). A failed publish
never fails the write it describes: realtime clients refill gaps from ListEvents, gateways
resync documents from the database, and domain events stay in the outbox table until the
relay gets them onto the stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from services.common.channels import RealtimeChannels
from services.common.channels import envelope as realtime_envelope
from services.common.docframes import update_frame
from services.common.redisutil import REDIS_ERRORS, stop_if_cancelled
from services.common.timeconv import datetime_rfc3339
from services.sessions.cache import RedisGuard
from services.sessions.domain import Event, OutboxEvent
from services.sessions.repository import SessionsRepository

log = logging.getLogger(__name__)

STREAM_MAXLEN = 100_000
# Rows younger than this are still being published by the request that wrote them.
RELAY_AFTER_SECONDS = 5.0
RELAY_INTERVAL_SECONDS = 2.0


def envelope(event: Event) -> dict[str, Any]:
    """The JSON object realtime clients receive for an event (replayed or live)."""
    return realtime_envelope(event.type, event.session_id, datetime_rfc3339(event.at),
                             event.payload, event.seq)


class Publisher:
    """Publishes committed changes; Redis trouble is logged, never raised."""

    def __init__(self, channels: RealtimeChannels, stream: str, guard: RedisGuard,
                 repo: SessionsRepository) -> None:
        self._channels = channels
        self._stream = stream
        self._guard = guard
        self._repo = repo

    async def publish(self, events: Sequence[Event]) -> None:
        if not events or not self._guard.available:
            return
        try:
            if len(events) == 1:
                event = events[0]
                await self._guard.redis.publish(self._channels.events(event.session_id),
                                                orjson.dumps(envelope(event)))
                return
            async with self._guard.redis.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.publish(self._channels.events(event.session_id),
                                 orjson.dumps(envelope(event)))
                await pipe.execute()
        except REDIS_ERRORS as exc:
            self._guard.failed("realtime publish", exc)

    async def publish_ephemeral(self, session_id: str, event_type: str,
                                payload: dict[str, Any]) -> Event:
        event = Event(session_id, 0, event_type, payload, datetime.now(UTC))
        await self.publish([event])
        return event

    async def emit(self, events: Sequence[OutboxEvent]) -> None:
        """Put committed domain events on the stream and drop them from the outbox."""
        if not events or not self._guard.available:
            return
        try:
            await self._xadd(events)
        except REDIS_ERRORS as exc:
            self._guard.failed("domain event publish", exc)
            return
        await self._repo.delete_outbox([e.outbox_id for e in events])

    async def _xadd(self, events: Sequence[OutboxEvent]) -> None:
        async with self._guard.redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(self._stream, {"event_id": event.event_id, "type": event.type,
                                         "data": orjson.dumps(event.data)},
                          maxlen=STREAM_MAXLEN, approximate=True)
            await pipe.execute()

    async def relay_once(self, older_than: float = RELAY_AFTER_SECONDS) -> int:
        """Publish outbox rows a request could not; returns how many went out."""
        async with self._repo.stale_outbox(older_than) as rows:
            if rows:
                # Raising here rolls back the delete: the rows stay for the next round.
                await self._xadd(rows)
                log.info("relayed domain events from the outbox", extra={"count": len(rows)})
            return len(rows)


class DocumentPublisher:
    """Publishes stored document updates to the gateways, within a deadline."""

    def __init__(self, redis_client: Redis, channels: RealtimeChannels,
                 timeout: float = 1.0) -> None:
        self._redis = redis_client
        self._channels = channels
        self._timeout = timeout

    async def publish_update(self, session_id: str, version: int, update: bytes) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.publish(self._channels.doc(session_id),
                                          update_frame(version, update))
        except (TimeoutError, *REDIS_ERRORS) as exc:
            # Stored and acknowledged regardless: gateways resync their clients
            # from the database when their subscription comes back.
            log.warning("document update not published: %s", type(exc).__name__)


async def run_outbox_relay(publisher: Publisher, interval: float = RELAY_INTERVAL_SECONDS) -> None:
    """Background loop: keep the outbox drained whenever Redis and PostgreSQL answer."""
    while True:
        try:
            await publisher.relay_once()
        except REDIS_ERRORS as exc:
            stop_if_cancelled()
            log.debug("outbox relay waits for redis: %s", type(exc).__name__)
        except Exception as exc:  # database trouble: try again next round
            stop_if_cancelled()
            log.warning("outbox relay failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)
