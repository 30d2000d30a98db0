"""All SQL of the auth service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from services.common.grpcserver import Pool

_USER_COLS = "id, github_id, github_login, name, avatar_url, created_at"


class AuthRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def upsert_user(self, github_id: int, login: str, name: str, avatar_url: str) -> dict[str, Any]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"INSERT INTO users (id, github_id, github_login, name, avatar_url) "
                f"VALUES (%s, %s, %s, %s, %s) "
                f"ON CONFLICT (github_id) DO UPDATE SET github_login = EXCLUDED.github_login, "
                f"name = EXCLUDED.name, avatar_url = EXCLUDED.avatar_url, updated_at = now() "
                f"RETURNING {_USER_COLS}",
                (uuid.uuid4(), github_id, login, name, avatar_url))
            row = await cur.fetchone()
        assert row is not None  # noqa: S101 - RETURNING always yields the row
        return row

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(f"SELECT {_USER_COLS} FROM users WHERE id = %s", (user_id,))
            return await cur.fetchone()

    async def get_users(self, user_ids: list[str]) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(f"SELECT {_USER_COLS} FROM users WHERE id = ANY(%s::uuid[])",
                                     (user_ids,))
            return await cur.fetchall()

    async def get_user_by_login(self, login: str) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_USER_COLS} FROM users WHERE lower(github_login) = lower(%s) "
                f"ORDER BY updated_at DESC LIMIT 1", (login,))
            return await cur.fetchone()

    async def store_github_token(self, user_id: str, sealed: bytes, scope: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO github_tokens (user_id, sealed, scope) VALUES (%s, %s, %s) "
                "ON CONFLICT (user_id) DO UPDATE SET sealed = EXCLUDED.sealed, "
                "scope = EXCLUDED.scope, updated_at = now()", (user_id, sealed, scope))

    async def github_token(self, user_id: str) -> tuple[bytes, str] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT sealed, scope FROM github_tokens WHERE user_id = %s",
                                     (user_id,))
            row = await cur.fetchone()
        return (bytes(row["sealed"]), row["scope"]) if row else None

    async def insert_refresh(self, family_id: uuid.UUID, user_id: str, token_hash: bytes,
                             expires_at: datetime) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (uuid.uuid4(), family_id, user_id, token_hash, expires_at))

    async def spend_refresh(self, token_hash: bytes, new_hash: bytes,
                            new_expires: datetime) -> tuple[str, dict[str, Any] | None]:
        """Spend a refresh token and store its successor, atomically.

        Returns (outcome, row): outcome is "ok", "unknown", "revoked", "expired"
        or "reused" (the whole family has then been revoked).
        """
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT id, family_id, user_id, expires_at, used_at, revoked_at, "
                "expires_at < now() AS expired FROM refresh_tokens WHERE token_hash = %s FOR UPDATE",
                (token_hash,))
            row = await cur.fetchone()
            if row is None:
                return "unknown", None
            if row["revoked_at"] is not None:
                return "revoked", row
            if row["used_at"] is not None:
                await conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = now() "
                    "WHERE family_id = %s AND revoked_at IS NULL", (row["family_id"],))
                return "reused", row
            if row["expired"]:
                return "expired", row
            await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = %s", (row["id"],))
            await conn.execute(
                "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (uuid.uuid4(), row["family_id"], row["user_id"], new_hash, new_expires))
            return "ok", row

    async def revoke_family_of(self, token_hash: bytes) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND "
                "family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = %s)",
                (token_hash,))
            return cur.rowcount > 0
