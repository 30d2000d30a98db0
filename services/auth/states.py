"""OAuth login states in Redis: single use (GETDEL on return) and short-lived."""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from services.auth.domain import LoginState
from services.common.keyspace import KeySpace


class RedisLoginStates:
    """Any auth replica may receive GitHub's redirect, so states live in the shared Redis."""

    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._keys = keys

    async def put(self, state: str, login: LoginState, ttl: int) -> None:
        record = orjson.dumps({"verifier": login.verifier, "redirect_uri": login.redirect_uri})
        await self._redis.set(self._keys.key("oauth_state", state), record, ex=ttl)

    async def take(self, state: str) -> LoginState | None:
        raw = await self._redis.getdel(self._keys.key("oauth_state", state))
        if raw is None:
            return None
        record = orjson.loads(raw)
        return LoginState(record["verifier"], record["redirect_uri"])
