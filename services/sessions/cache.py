"""Redis cache-aside for hot reads (sessions, memberships, member lists) that degrades to PostgreSQL."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from services.common import metrics
from services.common.keyspace import KeySpace
from services.common.redisutil import REDIS_ERRORS
from services.sessions.domain import (
    ROLES,
    STATUSES,
    Member,
    Membership,
    Role,
    Session,
    Status,
    member_of,
)
from services.sessions.repository import SessionsRepository

log = logging.getLogger(__name__)

_NOT_MEMBER = b"-"
# Invalidation writes a short-lived tombstone instead of deleting, and fills use SET NX:
# a reader that loaded the old row just before a write commits cannot put it back.
_TOMBSTONE = b"~"
TOMBSTONE_SECONDS = 2.0


class RedisGuard:
    """A small circuit breaker: after a Redis failure, skip Redis for a moment.

    Without it every cache read during an outage would pay a connect timeout
    before falling back to the database; with it only the first one does.
    """

    def __init__(self, redis_client: Redis, open_seconds: float = 2.0) -> None:
        self.redis = redis_client
        self._open_seconds = open_seconds
        self._open_until = 0.0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._open_until

    def failed(self, what: str, exc: BaseException) -> None:
        if self.available:
            # Logged once per opening, not once per call.
            log.warning("redis unavailable during %s (%s); using the database for %.0fs",
                        what, type(exc).__name__, self._open_seconds)
        self._open_until = time.monotonic() + self._open_seconds

    def succeeded(self) -> None:
        self._open_until = 0.0


class Cache:
    """Get/set/delete of small values with hit/miss/error counted per cache name."""

    def __init__(self, guard: RedisGuard) -> None:
        self._guard = guard
        self._counters: dict[tuple[str, str], Any] = {}

    def _count(self, cache: str, result: str) -> None:
        counter = self._counters.get((cache, result))
        if counter is None:
            counter = metrics.CACHE_REQUESTS.labels(cache, result)
            self._counters[(cache, result)] = counter
        counter.inc()

    async def get_many(self, items: Sequence[tuple[str, str]]) -> list[bytes | None]:
        """Values of (cache name, key) pairs; None for a miss or when Redis is unavailable."""
        if not self._guard.available:
            for cache, _ in items:
                self._count(cache, "error")
            return [None] * len(items)
        try:
            values: list[Any] = await self._guard.redis.mget([key for _, key in items])
        except REDIS_ERRORS as exc:
            self._guard.failed("cache read", exc)
            for cache, _ in items:
                self._count(cache, "error")
            return [None] * len(items)
        out: list[bytes | None] = []
        for (cache, _), value in zip(items, values, strict=True):
            fresh = value is not None and value != _TOMBSTONE
            self._count(cache, "hit" if fresh else "miss")
            out.append(value if fresh else None)
        return out

    async def fill(self, key: str, value: bytes, ttl: float) -> None:
        """Store a value read from the database unless the key was invalidated meanwhile."""
        if not self._guard.available:
            return
        try:
            await self._guard.redis.set(key, value, px=int(ttl * 1000), nx=True)
        except REDIS_ERRORS as exc:
            self._guard.failed("cache write", exc)

    async def invalidate(self, *keys: str) -> None:
        # Attempted even while the breaker is open: a stale entry outliving an
        # outage is worse than one more failed call. TTLs bound what remains.
        if not keys:
            return
        try:
            async with self._guard.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(key, _TOMBSTONE, px=int(TOMBSTONE_SECONDS * 1000))
                await pipe.execute()
            self._guard.succeeded()
        except REDIS_ERRORS as exc:
            self._guard.failed("cache invalidation", exc)


# Cached values are JSON objects with the records' field names (orjson writes dataclasses
# as such): replicas of another version read the same entries during a rolling deploy.


def _session_from_cache(raw: bytes) -> Session:
    r: dict[str, Any] = orjson.loads(raw)
    return Session(r["id"], r["title"], r["description"], r["language"], STATUSES[r["status"]],
                   r["owner_id"], r["version"], datetime.fromisoformat(r["created_at"]),
                   datetime.fromisoformat(r["updated_at"]))


def _members_from_cache(raw: bytes) -> list[Member]:
    return [Member(r["user_id"], ROLES[r["role"]], datetime.fromisoformat(r["joined_at"]))
            for r in orjson.loads(raw)]


class MembershipChecker:
    """Cached answers to "what is this user's role here" and "what state is this session in".

    The use cases (ports.Memberships) and the document's authorization share it. Entries
    live for a short TTL and every write that changes them deletes them after its commit.
    """

    def __init__(self, repo: SessionsRepository, cache: Cache, keys: KeySpace, ttl: float = 30.0) -> None:
        self._repo = repo
        self._cache = cache
        self._keys = keys
        self.ttl = ttl

    def session_key(self, session_id: str) -> str:
        return self._keys.key("cache", "session", session_id)

    def member_key(self, session_id: str, user_id: str) -> str:
        return self._keys.key("cache", "member", session_id, user_id)

    def members_key(self, session_id: str) -> str:
        return self._keys.key("cache", "members", session_id)

    async def session_and_role(self, session_id: str,
                               user_id: str | None) -> tuple[Session | None, Role | None]:
        """The session row (without last_seq) and the user's role; one Redis round trip when hot."""
        items = [("session", self.session_key(session_id))]
        if user_id is not None:
            items.append(("member", self.member_key(session_id, user_id)))
        cached = await self._cache.get_many(items)
        raw_session = cached[0]
        raw_role = cached[1] if user_id is not None else None
        if raw_session is not None and (user_id is None or raw_role is not None):
            return _session_from_cache(raw_session), _role(raw_role)
        session, role = await self._repo.session_and_role(session_id, user_id)
        if session is None:
            return None, None
        await self._cache.fill(self.session_key(session_id), orjson.dumps(session), self.ttl)
        if user_id is not None:
            await self._cache.fill(self.member_key(session_id, user_id),
                                   role.encode() if role else _NOT_MEMBER, self.ttl)
        return session, role

    async def status(self, session_id: str) -> Status | None:
        """The session's status, or None when it does not exist."""
        session, _ = await self.session_and_role(session_id, None)
        return session.status if session else None

    async def membership(self, session_id: str, user_id: str) -> Membership | None:
        session, role = await self.session_and_role(session_id, user_id)
        if session is None or role is None:
            return None
        return Membership(role, session.status)

    async def require(self, session_id: str, user_id: str,
                      minimum: Role = Role.VIEWER) -> tuple[Session, Role]:
        """The session and the caller's role; NOT_FOUND for non-members, PERMISSION_DENIED below `minimum`."""
        return member_of(*await self.session_and_role(session_id, user_id), minimum)

    async def members(self, session_id: str) -> list[Member]:
        (raw,) = await self._cache.get_many([("members", self.members_key(session_id))])
        if raw is not None:
            return _members_from_cache(raw)
        members = await self._repo.members(session_id)
        await self._cache.fill(self.members_key(session_id), orjson.dumps(members), self.ttl)
        return members

    async def invalidate(self, session_id: str, user_ids: Sequence[str] = (), *,
                         session: bool = False, members: bool = False) -> None:
        keys = [self.member_key(session_id, uid) for uid in user_ids]
        if session:
            keys.append(self.session_key(session_id))
        if members:
            keys.append(self.members_key(session_id))
        await self._cache.invalidate(*keys)


def _role(raw: bytes | None) -> Role | None:
    if raw is None or raw == _NOT_MEMBER:
        return None
    return ROLES[raw.decode()]
