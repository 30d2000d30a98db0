"""Telling the room: live `ai.finding` on the session's channel, sequenced `ai.done`/`ai.failed`.

`ai.finding` is published straight on the session's realtime channel (the
realtime contract, services/common/channels.py, which every gateway forwards),
as the envelope `{"type": "ai.finding", "session_id", "at", "job_id", "index",
"finding"}`: it is not sequenced, and a client that missed some reads the job.
The job's end goes through the sessions service's AppendEvent, so `ai.done`
`{"job_id", "review_id", "summary", "findings_count"}` and `ai.failed`
`{"job_id", "review_id", "error", "status"}` carry a sequence number and are
replayed on reconnect. The same findings and the end also go on the job's own
channel (`<REDIS_PREFIX>ai:job:<job_id>`) for WatchJob.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from services.ai.domain import Finding, Job, JobStatus
from services.ai.ports import Peers
from services.common.channels import RealtimeChannels, envelope
from services.common.errors import Unavailable
from services.common.keyspace import KeySpace
from services.common.redisutil import REDIS_ERRORS
from services.common.timeconv import now_rfc3339

log = logging.getLogger(__name__)
# Waits before retrying AppendEvent while the sessions service is unavailable.
_APPEND_RETRIES = (0.2, 0.5, 1.0, 2.0)


def job_channel(keys: KeySpace, job_id: str) -> str:
    """The channel a job's findings and end are published on, for WatchJob."""
    return keys.key("job", job_id)


class Events:
    """Publishes a job's progress; a failed publish never fails the job (the job is stored)."""

    def __init__(self, redis: Redis, redis_prefix: str, keys: KeySpace, peers: Peers) -> None:
        self._redis = redis
        self._channels = RealtimeChannels(redis_prefix)
        self._keys = keys
        self._peers = peers

    async def finding(self, job: Job, index: int, finding: Finding) -> None:
        live = envelope("ai.finding", job.session_id, now_rfc3339(),
                        {"job_id": job.id, "index": index, "finding": finding.public()})
        watch = {"kind": "finding", "index": index, "finding": finding.stored()}
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.publish(self._channels.events(job.session_id), orjson.dumps(live))
                pipe.publish(job_channel(self._keys, job.id), orjson.dumps(watch))
                await pipe.execute()
        except REDIS_ERRORS as exc:
            log.warning("ai.finding not published: %s", type(exc).__name__)

    async def ended(self, job: Job, findings_count: int) -> None:
        """The job reached a final status: tell watchers, then record the session event."""
        try:
            await self._redis.publish(job_channel(self._keys, job.id),
                                      orjson.dumps({"kind": "end", "status": job.status.value}))
        except REDIS_ERRORS as exc:
            log.warning("job end not published to watchers: %s", type(exc).__name__)
        if job.status is JobStatus.DONE:
            event_type = "ai.done"
            payload: dict[str, Any] = {"job_id": job.id, "review_id": job.review_id,
                                       "summary": job.summary, "findings_count": findings_count}
        else:
            event_type = "ai.failed"
            payload = {"job_id": job.id, "review_id": job.review_id,
                       "error": job.error or job.status.value, "status": job.status.value}
        for delay in (*_APPEND_RETRIES, None):
            try:
                await self._peers.append_event(job.session_id, event_type, payload)
                return
            except Unavailable:
                if delay is None:
                    break
                await asyncio.sleep(delay)
            except Exception as exc:
                # The session is gone or refuses the event: the job itself is stored.
                log.warning("%s not recorded: %s", event_type, type(exc).__name__)
                return
        log.warning("%s not recorded: the sessions service stayed unavailable", event_type)


class _Signal:
    """One WatchJob's subscription to its job's channel (None: Redis refused it)."""

    def __init__(self, pubsub: PubSub | None) -> None:
        self._pubsub = pubsub

    async def wait_newer(self, sent: int, timeout: float) -> None:
        if self._pubsub is None:
            await asyncio.sleep(timeout)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True,
                                                         timeout=left)
            except REDIS_ERRORS:
                await asyncio.sleep(left)
                return
            if message is None or message.get("type") != "message":
                continue
            data = orjson.loads(message["data"])
            if data.get("kind") == "end" or int(data.get("index", -1)) > sent:
                return


class JobSignals:
    """WatchJob's wake-ups: the job's channel, read on a client without a read timeout
    (subscriptions sit idle)."""

    def __init__(self, listener: Redis, keys: KeySpace) -> None:
        self._listener = listener
        self._keys = keys

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[_Signal]:
        pubsub = self._listener.pubsub()
        try:
            try:
                await pubsub.subscribe(job_channel(self._keys, job_id))
                subscribed = True
            except REDIS_ERRORS:
                # Without Redis the watcher re-reads the job on an interval instead.
                subscribed = False
            yield _Signal(pubsub if subscribed else None)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
