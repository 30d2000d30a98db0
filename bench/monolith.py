"""The monolith baseline: GET /api/v1/sessions as one aiohttp handler reading PostgreSQL directly.

What it does per request, and nothing more: read the caller's user id from the
`X-User-Id` header (a UUID check stands in for the token check the gateway does),
read `limit` (1..100, default 20), run the sessions service's list query on a pool
built by the services' own `create_pool` (so pool size, autocommit, prepared
statements and dict rows are the same by construction), and answer the gateway's
JSON shape: `{"items": [session with role], "next_cursor"}` with RFC 3339 times
and the same opaque cursor. No JWT, no rate limit, no gRPC hop.
"""

from __future__ import annotations

import argparse
import base64
import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from services.common.config import Env
from services.common.db import create_pool
from services.common.eventloop import install_uvloop
from services.common.timeconv import datetime_rfc3339

# Exactly what services/sessions/repository.py sends for a first page (tests/bench checks it).
LIST_SQL = (
    b"SELECT s.id::text AS id, s.title, s.description, s.language, s.status, "
    b"s.owner_id::text AS owner_id, s.version, "
    b"s.created_at, s.updated_at, m.role FROM members m "
    b"JOIN sessions s ON s.id = m.session_id WHERE m.user_id = %s "
    b"ORDER BY m.session_created_at DESC, m.session_id DESC LIMIT %s"
)
POOL = web.AppKey("pool", AsyncConnectionPool)


def cursor(created_at: datetime, session_id: str) -> str:
    """The sessions service's cursor encoding (services/sessions/domain.py encode_cursor)."""
    raw = orjson.dumps([created_at.isoformat(), session_id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def session_out(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "title": row["title"], "description": row["description"],
            "language": row["language"], "status": row["status"],
            "owner_id": row["owner_id"], "role": row["role"], "version": row["version"],
            "created_at": datetime_rfc3339(row["created_at"]), "updated_at": datetime_rfc3339(row["updated_at"])}


def bad_request(message: str, status: int = 400) -> web.Response:
    return web.Response(body=orjson.dumps({"error": {"code": "invalid_argument",
                                                     "message": message}}),
                        status=status, content_type="application/json")


async def list_sessions(request: web.Request) -> web.Response:
    try:
        user_id = str(uuid.UUID(request.headers.get("X-User-Id", "")))
    except ValueError:
        return bad_request("X-User-Id must be a user id", 401)
    raw = request.query.get("limit") or "20"
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        return bad_request("limit must be between 1 and 100")
    limit = int(raw)
    async with request.app[POOL].connection() as conn:
        cur = await conn.execute(LIST_SQL, (user_id, limit + 1))
        rows = await cur.fetchall()
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = cursor(last["created_at"], str(last["id"]))
    body = orjson.dumps({"items": [session_out(r) for r in rows[:limit]],
                         "next_cursor": next_cursor})
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def health(_: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


def make_app(database_url: str, pool_min: int, pool_max: int) -> web.Application:
    app = web.Application()

    async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
        pool = create_pool(database_url, "sessions", pool_min, pool_max, "monolith")
        await pool.open(wait=True)
        app[POOL] = pool
        yield
        await pool.close()

    app.cleanup_ctx.append(pool_ctx)
    app.router.add_get("/health", health)
    app.router.add_get("/api/v1/sessions", list_sessions)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.monolith", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    env = Env(os.environ)
    # The services' own readers and defaults (services/common/config.py): same pool bounds.
    pool_min = env.int("DB_POOL_MIN", 1, minimum=0, maximum=100)
    pool_max = env.int("DB_POOL_MAX", 10, minimum=max(1, pool_min), maximum=500)
    database_url = env.str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/tandem")
    # The gateway's and the services' event loop, or the baseline would be handicapped.
    install_uvloop()
    web.run_app(make_app(database_url, pool_min, pool_max), host=args.host, port=args.port,
                access_log=None, print=None)


if __name__ == "__main__":
    main()
