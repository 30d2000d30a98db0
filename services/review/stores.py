"""Redis-backed stores of the review service: GitHub ETags, file contents, webhook deliveries."""

from __future__ import annotations

import hashlib
import logging

import orjson
from redis.asyncio import Redis

from services.common import metrics
from services.common.keyspace import KeySpace
from services.common.redisutil import REDIS_ERRORS
from services.review.domain import CachedAnswer

log = logging.getLogger(__name__)

class RedisEtags:
    """ETag + body of GitHub GET answers, for conditional requests (expire, never invalidated)."""

    def __init__(self, client: Redis, keys: KeySpace, ttl: int) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = ttl

    async def get(self, key: str) -> CachedAnswer | None:
        try:
            raw = await self._redis.get(self._keys.key("etag", key))
        except REDIS_ERRORS:
            metrics.CACHE_REQUESTS.labels("github_etag", "error").inc()
            return None
        if raw is None:
            return None
        data = orjson.loads(raw)
        return CachedAnswer(data["etag"], data["body"].encode(), data["link"])

    async def put(self, key: str, answer: CachedAnswer) -> None:
        value = orjson.dumps({"etag": answer.etag, "body": answer.body.decode(errors="replace"),
                              "link": answer.link})
        try:
            await self._redis.set(self._keys.key("etag", key), value, ex=self._ttl)
        except REDIS_ERRORS:
            log.warning("could not store a GitHub ETag")


class RedisContents:
    """File contents by (commit SHA, path): immutable, so never invalidated, only expired."""

    TTL = 7 * 86_400

    def __init__(self, client: Redis, keys: KeySpace) -> None:
        self._redis = client
        self._keys = keys

    def _key(self, sha: str, path: str) -> str:
        # Hash the path: keys stay short and free of separators whatever the path holds.
        return self._keys.key("contents", sha, hashlib.sha256(path.encode()).hexdigest())

    async def get(self, sha: str, path: str) -> bytes | None:
        try:
            raw = await self._redis.get(self._key(sha, path))
        except REDIS_ERRORS:
            metrics.CACHE_REQUESTS.labels("github_contents", "error").inc()
            return None
        metrics.CACHE_REQUESTS.labels("github_contents", "miss" if raw is None else "hit").inc()
        return raw.encode() if isinstance(raw, str) else raw

    async def put(self, sha: str, path: str, data: bytes) -> None:
        try:
            await self._redis.set(self._key(sha, path), data, ex=self.TTL)
        except REDIS_ERRORS:
            log.warning("could not cache file contents")


class RedisDeliveries:
    """Webhook deliveries seen: a redelivery or a replay is answered "duplicate".

    A delivery is known by its X-GitHub-Delivery id and by the SHA-256 of its
    body. The id is not signed, so the body's digest is what stops the same
    signed body being processed again under a new id. Both are claimed at
    once (one Lua script: either both are free and taken, or neither) while
    the delivery is processed and remembered for 24 hours once done; a failed
    one releases both, so GitHub's redelivery is processed.
    """

    CLAIM_TTL = 300
    DONE_TTL = 86_400
    _CLAIM = """
    for _, key in ipairs(KEYS) do
        if redis.call('EXISTS', key) == 1 then return 0 end
    end
    for _, key in ipairs(KEYS) do
        redis.call('SET', key, 'processing', 'EX', ARGV[1])
    end
    return 1
    """

    def __init__(self, client: Redis, keys: KeySpace) -> None:
        self._redis = client
        self._keys = keys
        self._claim = client.register_script(self._CLAIM)

    def _both(self, delivery_id: str, body_digest: str) -> list[str]:
        return [self._keys.key("delivery", delivery_id),
                self._keys.key("delivery-body", body_digest)]

    async def claim(self, delivery_id: str, body_digest: str) -> bool:
        claimed = await self._claim(keys=self._both(delivery_id, body_digest),
                                    args=[self.CLAIM_TTL])
        return bool(claimed)

    async def done(self, delivery_id: str, body_digest: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in self._both(delivery_id, body_digest):
                pipe.set(key, b"done", ex=self.DONE_TTL)
            await pipe.execute()

    async def release(self, delivery_id: str, body_digest: str) -> None:
        await self._redis.delete(*self._both(delivery_id, body_digest))
