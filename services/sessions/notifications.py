"""Notifications from domain events: a Redis Stream consumer group with idempotent handling.

Delivery is at least once: an entry is acknowledged only after its notifications
are committed, entries a dead consumer left pending are claimed (XAUTOCLAIM) once
they have been idle for a while, and the (event id, recipient) unique key makes a
redelivered event create nothing new.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.exceptions
from redis.asyncio import Redis

from services.common.grpcserver import Resources
from services.sessions.cache import REDIS_ERRORS, stop_if_cancelled
from services.sessions.events import stream
from services.sessions.repository import Repository

log = logging.getLogger(__name__)

GROUP = "notifications"

# (recipient_id, recipient_login, kind, payload)
Recipient = tuple[str | None, str | None, str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ConsumerSettings:
    block_ms: int = 2000
    batch: int = 50
    # An entry pending this long belongs to a consumer that died: take it over.
    claim_idle_ms: int = 30_000
    claim_every_seconds: float = 5.0


def notifications_for(event_type: str, data: dict[str, Any]) -> list[Recipient]:
    """Who hears about a domain event, and what they are told. Pure: easy to test."""
    session = {"session_id": data.get("session_id"), "session_title": data.get("session_title")}
    actor = data.get("actor_id")
    if event_type == "invitation.created":
        payload = {**session, "invitation_id": data["invitation_id"], "role": data["role"],
                   "invited_by": data["invited_by"]}
        return [(data.get("invitee_id"), data.get("invitee_login"), "invitation.received", payload)]
    if event_type in ("invitation.accepted", "invitation.declined"):
        if data.get("user_id") == data["invited_by"]:
            return []
        payload = {**session, "invitation_id": data["invitation_id"], "role": data["role"],
                   "user_id": data.get("user_id")}
        return [(data["invited_by"], None, event_type, payload)]
    if event_type == "member.role_changed" and data["user_id"] != actor:
        payload = {**session, "role": data["role"], "changed_by": actor}
        return [(data["user_id"], None, "member.role_changed", payload)]
    if event_type == "member.removed" and data["user_id"] != actor:
        return [(data["user_id"], None, "member.removed", {**session, "removed_by": actor})]
    return []


class NotificationConsumer:
    """One member of the `notifications` consumer group on the domain-events stream."""

    def __init__(self, repo: Repository, redis_client: Redis, stream_key: str,
                 settings: ConsumerSettings, group: str = GROUP, name: str | None = None) -> None:
        self._repo = repo
        self._redis = redis_client
        self._stream = stream_key
        self._settings = settings
        self._group = group
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """New entries for this consumer (blocks up to block_ms)."""
        reply: Any = await self._redis.xreadgroup(self._group, self.name, {self._stream: ">"},
                                                  count=self._settings.batch,
                                                  block=self._settings.block_ms)
        return [entry for _, entries in reply or () for entry in entries]

    async def claim_stale(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Entries idle past claim_idle_ms in other consumers' pending lists, now ours."""
        claimed: list[tuple[bytes, dict[bytes, bytes]]] = []
        start: bytes | str = "0-0"
        while True:
            reply: Any = await self._redis.xautoclaim(self._stream, self._group, self.name,
                                                      min_idle_time=self._settings.claim_idle_ms,
                                                      start_id=start, count=self._settings.batch)
            start, entries = reply[0], reply[1]
            # Entries deleted from the stream while pending come back as None.
            claimed.extend(e for e in entries if e and e[1])
            if start in (b"0-0", "0-0") or not entries:
                return claimed

    async def handle(self, entries: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> int:
        """Create the notifications of each entry, then acknowledge it; returns rows created."""
        created = 0
        for entry_id, fields in entries:
            try:
                event_id = fields[b"event_id"].decode()
                event_type = fields[b"type"].decode()
                data = orjson.loads(fields[b"data"])
                recipients = [r for r in notifications_for(event_type, data) if r[0] or r[1]]
            except (KeyError, ValueError, TypeError, UnicodeDecodeError):
                # A malformed entry would be redelivered forever: log it and move on.
                log.error("dropping malformed domain event", extra={"entry_id": entry_id.decode()})
                await self._redis.xack(self._stream, self._group, entry_id)
                continue
            if recipients:
                created += await self._repo.add_notifications(event_id, data.get("session_id"),
                                                               recipients)
            await self._redis.xack(self._stream, self._group, entry_id)
        return created

    async def run(self) -> None:
        await self.ensure_group()
        loop = asyncio.get_running_loop()
        next_claim = 0.0
        while True:
            stop_if_cancelled()
            if loop.time() >= next_claim:
                await self.handle(await self.claim_stale())
                next_claim = loop.time() + self._settings.claim_every_seconds
            await self.handle(await self.read())


async def run_notifications(res: Resources, settings: ConsumerSettings) -> None:
    """Background job: consume domain events for as long as the service runs.

    A dedicated client: XREADGROUP blocks longer than the shared client's socket
    timeout allows. Redis or database outages pause the loop; it resumes by itself.
    """
    client = Redis.from_url(res.config.redis_url, socket_timeout=settings.block_ms / 1000 + 5,
                            socket_connect_timeout=1.0, decode_responses=False)
    consumer = NotificationConsumer(Repository(res.pool), client, stream(res.keys), settings)
    loop = asyncio.get_running_loop()
    delay = 0.5
    try:
        while True:
            started = loop.time()
            try:
                await consumer.run()
            except REDIS_ERRORS as exc:
                stop_if_cancelled()
                log.warning("notifications consumer waits for redis: %s", type(exc).__name__)
            except Exception as exc:  # database trouble: entries stay pending
                stop_if_cancelled()
                log.warning("notifications consumer failed: %s", type(exc).__name__)
            # Back off while failures repeat; a loop that ran fine for a while starts over.
            delay = 0.5 if loop.time() - started > 30 else min(delay * 2, 10.0)
            await asyncio.sleep(delay)
    finally:
        await client.aclose()
