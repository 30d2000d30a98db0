"""Who is connected to a session, in Redis with TTL heartbeats shared by every gateway.

One hash per session, `<REDIS_PREFIX>gateway:rt:presence:<session_id>`: one field
per events connection (its id) whose value is the entry's JSON with an
`expires_at` (epoch ms). The owning gateway refreshes its entries every
heartbeat; the hash itself expires after the TTL when nobody refreshes it. A
gateway that dies leaves entries that the survivors sweep once they expire:
HDEL answers 1 to exactly one sweeper, which announces `presence.left`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from redis.asyncio import Redis

from services.common.keyspace import KeySpace

# What clients see of an entry; the rest is bookkeeping.
PUBLIC_FIELDS = ("connection_id", "user_id", "status", "cursor", "since")


def public(entry: dict[str, Any]) -> dict[str, Any]:
    return {name: entry.get(name) for name in PUBLIC_FIELDS}


class PresenceStore:
    def __init__(self, redis: Redis, keys: KeySpace, ttl: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl_ms = int(ttl * 1000)
        self._clock = clock

    def key(self, session_id: str) -> str:
        return self._keys.key("rt", "presence", session_id)

    def _value(self, entry: dict[str, Any]) -> bytes:
        return orjson.dumps({**entry, "expires_at": int(self._clock() * 1000) + self._ttl_ms})

    async def put(self, session_id: str, entry: dict[str, Any]) -> None:
        key = self.key(session_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, entry["connection_id"], self._value(entry))
            pipe.pexpire(key, self._ttl_ms)
            await pipe.execute()

    async def refresh(self, entries: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Heartbeat: re-stamp this gateway's entries (session_id, entry) in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            touched: set[str] = set()
            for session_id, entry in entries:
                key = self.key(session_id)
                pipe.hset(key, entry["connection_id"], self._value(entry))
                touched.add(key)
            for key in touched:
                pipe.pexpire(key, self._ttl_ms)
            if touched:
                await pipe.execute()

    async def remove(self, session_id: str, connection_id: str) -> bool:
        """True when this call removed the entry (so its caller announces the departure)."""
        return bool(await self._redis.hdel(self.key(session_id), connection_id))

    async def entries(self, session_id: str) -> list[dict[str, Any]]:
        raw = await self._redis.hgetall(self.key(session_id))
        now_ms = int(self._clock() * 1000)
        entries = [orjson.loads(value) for value in raw.values()]
        live = [e for e in entries if int(e.get("expires_at", 0)) > now_ms]
        return sorted(live, key=lambda e: (str(e.get("since")), str(e.get("connection_id"))))

    async def sweep(self, session_id: str) -> list[dict[str, Any]]:
        """Remove expired entries; answer those this caller removed."""
        key = self.key(session_id)
        raw = await self._redis.hgetall(key)
        now_ms = int(self._clock() * 1000)
        gone: list[dict[str, Any]] = []
        for field, value in raw.items():
            entry = orjson.loads(value)
            if int(entry.get("expires_at", 0)) <= now_ms and await self._redis.hdel(key, field):
                gone.append(entry)
        return gone
