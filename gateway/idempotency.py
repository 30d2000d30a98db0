"""`Idempotency-Key` for the POST routes that opt in: one write per key, the first answer replayed.

Not a middleware: only the handlers that call `idempotent` pay for it. The key is
scoped to the user. The first request claims it with SET NX (an in-flight marker
that expires after `LOCK_SECONDS`, so a crashed gateway cannot wedge a key), runs,
and stores a 2xx answer for 24 hours. A repeat with the same body gets that answer
with `Idempotent-Replayed: true`; with another body, 422. A repeat arriving while
the first is still running waits for it (up to `WAIT_SECONDS`), then gets 409.
A failed first attempt releases the key so the client can retry. With Redis
unreachable the request runs without the guarantee (and says so in the log).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from redis.asyncio import Redis

from gateway import keys
from gateway.errors import ApiError
from services.common.keyspace import KeySpace
from services.common.redisutil import REDIS_ERRORS

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
HEADER_DOC = (HEADER, "Optional, up to 255 printable ASCII characters. A repeat of this request "
                      "with the same key and body within 24 hours returns the first response "
                      f"(with `{REPLAYED}: true`) and creates nothing new; the same key with a "
                      "different body is 422; a repeat while the first is still running waits "
                      "for it, or gets 409.")
TTL_SECONDS = 24 * 3600
LOCK_SECONDS = 30
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.05
_KEPT_HEADERS = ("Location", "ETag")

Run = Callable[[], Awaitable[web.Response]]


def _body_digest(request: web.Request, raw: bytes) -> str:
    """The request's identity: method, path and the body (JSON compared canonically)."""
    try:
        body = orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS) if raw.strip() else b""
    except orjson.JSONDecodeError:
        body = raw
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def _check_key(value: str) -> str:
    if not 1 <= len(value) <= 255 or not value.isascii() or not value.isprintable():
        raise ApiError(400, "invalid_argument", f"{HEADER} must be 1..255 printable ASCII characters",
                       [{"field": HEADER, "message": "must be 1..255 printable ASCII characters"}])
    return value


def _replay(record: dict[str, Any]) -> web.Response:
    headers = {REPLAYED: "true", **record.get("headers", {})}
    response = web.Response(status=record["status"], body=record["body"].encode(),
                            headers=headers)
    response.content_type = record["content_type"]
    if record.get("charset"):
        response.charset = record["charset"]
    return response


def _record(response: web.Response, digest: str) -> bytes | None:
    body = response.body
    if not isinstance(body, bytes):
        return None
    return orjson.dumps({
        "state": "done", "digest": digest, "status": response.status, "body": body.decode(),
        "content_type": response.content_type, "charset": response.charset,
        "headers": {k: response.headers[k] for k in _KEPT_HEADERS if k in response.headers}})


async def idempotent(request: web.Request, user_id: str, run: Run) -> web.Response:
    """Run `run` at most once per (user, Idempotency-Key); see the module docstring."""
    if HEADER not in request.headers:
        return await run()
    app = request.app
    return await run_once(app[keys.REDIS], KeySpace(app[keys.CONFIG].common.redis_prefix, "gateway"),
                          request, user_id, run)


async def run_once(redis: Redis, space: KeySpace, request: web.Request, user_id: str, run: Run, *,
                   wait_seconds: float = WAIT_SECONDS) -> web.Response:
    """`idempotent` over an explicit Redis client and key space."""
    raw_key = request.headers.get(HEADER)
    if raw_key is None:
        return await run()
    key = _check_key(raw_key)
    digest = _body_digest(request, await request.read())
    slot = space.key("idem", user_id, hashlib.sha256(key.encode()).hexdigest())
    pending = orjson.dumps({"state": "pending", "digest": digest})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        try:
            if await redis.set(slot, pending, nx=True, ex=LOCK_SECONDS):
                break
            stored = await redis.get(slot)
        except REDIS_ERRORS as exc:
            log.warning("idempotency store unavailable (%s); running without it",
                        type(exc).__name__)
            return await run()
        if stored is None:
            continue  # released or expired between the two calls: try to claim it again
        record = orjson.loads(stored)
        if record["digest"] != digest:
            raise ApiError(422, "unprocessable",
                           f"this {HEADER} was already used with a different request")
        if record["state"] == "done":
            return _replay(record)
        if loop.time() >= deadline:
            raise ApiError(409, "conflict",
                           f"a request with this {HEADER} is still in progress; retry shortly",
                           retry_after=1)
        await asyncio.sleep(POLL_SECONDS)
    return await _run_claimed(redis, slot, digest, run)


async def _run_claimed(redis: Redis, slot: str, digest: str, run: Run) -> web.Response:
    try:
        response = await run()
    except BaseException:
        await _release(redis, slot)
        raise
    record = _record(response, digest) if 200 <= response.status < 300 else None
    if record is None:
        await _release(redis, slot)
        return response
    try:
        await redis.set(slot, record, ex=TTL_SECONDS)
    except REDIS_ERRORS as exc:
        log.warning("could not store an idempotent response: %s", type(exc).__name__)
    return response


async def _release(redis: Redis, slot: str) -> None:
    """Forget an unfinished claim so the client's retry runs (best effort)."""
    try:
        await redis.delete(slot)
    except REDIS_ERRORS as exc:
        log.warning("could not release an idempotency key: %s", type(exc).__name__)
