"""All SQL of the auth service: users, sealed GitHub tokens, refresh-token families, signing keys."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from services.auth.domain import (
    NewSigningKey,
    SealedGitHubToken,
    SpendOutcome,
    SpentRefresh,
    StoredSigningKey,
    User,
)
from services.common.grpcserver import Pool

_USER_COLS = "id, github_id, github_login, name, avatar_url, created_at"
# Replicas creating the first key, or rotating, at the same moment take turns.
_KEYS_LOCK = "SELECT pg_advisory_xact_lock(hashtext('tandem.auth.keys'))"
_INSERT_KEY = "INSERT INTO signing_keys (kid, sealed_key, public_jwk) VALUES (%s, %s, %s)"


def _user(row: dict[str, Any]) -> User:
    return User(id=str(row["id"]), github_id=int(row["github_id"]),
                github_login=row["github_login"], name=row["name"],
                avatar_url=row["avatar_url"], created_at=row["created_at"])


def _key(row: dict[str, Any]) -> StoredSigningKey:
    return StoredSigningKey(kid=row["kid"], sealed_key=bytes(row["sealed_key"]),
                            public_jwk=dict(row["public_jwk"]), created_at=row["created_at"],
                            retired_at=row["retired_at"], verify_until=row["verify_until"])


def _key_params(key: NewSigningKey) -> tuple[str, bytes, str]:
    return key.kid, key.sealed_key, orjson.dumps(key.public_jwk).decode()


class AuthRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    # Users and their GitHub tokens.

    async def upsert_user(self, github_id: int, login: str, name: str, avatar_url: str) -> User:
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
        return _user(row)

    async def get_user(self, user_id: str) -> User | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(f"SELECT {_USER_COLS} FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        return _user(row) if row else None

    async def get_users(self, user_ids: Sequence[str]) -> list[User]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(f"SELECT {_USER_COLS} FROM users WHERE id = ANY(%s::uuid[])",
                                     (list(user_ids),))
            return [_user(row) for row in await cur.fetchall()]

    async def get_user_by_login(self, login: str) -> User | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_USER_COLS} FROM users WHERE lower(github_login) = lower(%s) "
                f"ORDER BY updated_at DESC LIMIT 1", (login,))
            row = await cur.fetchone()
        return _user(row) if row else None

    async def store_github_token(self, user_id: str, sealed: bytes, scope: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO github_tokens (user_id, sealed, scope) VALUES (%s, %s, %s) "
                "ON CONFLICT (user_id) DO UPDATE SET sealed = EXCLUDED.sealed, "
                "scope = EXCLUDED.scope, updated_at = now()", (user_id, sealed, scope))

    async def github_token(self, user_id: str) -> SealedGitHubToken | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT sealed, scope FROM github_tokens WHERE user_id = %s",
                                     (user_id,))
            row = await cur.fetchone()
        return SealedGitHubToken(bytes(row["sealed"]), row["scope"]) if row else None

    # Refresh tokens: families, rotation, reuse detection.

    async def insert_refresh(self, family_id: str, user_id: str, token_hash: bytes,
                             expires_at: datetime) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (uuid.uuid4(), family_id, user_id, token_hash, expires_at))

    async def spend_refresh(self, token_hash: bytes, new_hash: bytes,
                            new_expires: datetime) -> SpentRefresh:
        """Spend a refresh token and store its successor, atomically.

        A token spent before is reuse: the whole family is revoked in the same transaction.
        """
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT id, family_id, user_id, expires_at, used_at, revoked_at, "
                "expires_at < now() AS expired FROM refresh_tokens WHERE token_hash = %s FOR UPDATE",
                (token_hash,))
            row = await cur.fetchone()
            if row is None:
                return SpentRefresh(SpendOutcome.UNKNOWN)
            owner = str(row["user_id"]), str(row["family_id"])
            if row["revoked_at"] is not None:
                return SpentRefresh(SpendOutcome.REVOKED, *owner)
            if row["used_at"] is not None:
                await conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = now() "
                    "WHERE family_id = %s AND revoked_at IS NULL", (row["family_id"],))
                return SpentRefresh(SpendOutcome.REUSED, *owner)
            if row["expired"]:
                return SpentRefresh(SpendOutcome.EXPIRED, *owner)
            await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = %s", (row["id"],))
            await conn.execute(
                "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (uuid.uuid4(), row["family_id"], row["user_id"], new_hash, new_expires))
            return SpentRefresh(SpendOutcome.OK, *owner)

    async def revoke_family_of(self, token_hash: bytes) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND "
                "family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = %s)",
                (token_hash,))
            return cur.rowcount > 0

    # Signing keys (services/auth/keys.py holds what is done with them).

    async def signing_keys(self) -> list[StoredSigningKey]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT kid, sealed_key, public_jwk, created_at, retired_at, verify_until "
                "FROM signing_keys WHERE verify_until IS NULL OR verify_until > now() "
                "ORDER BY created_at DESC")
            return [_key(row) for row in await cur.fetchall()]

    async def ensure_signing_key(self, retire: Sequence[str], retire_until: datetime,
                                 opens: Callable[[StoredSigningKey], bool],
                                 candidate: NewSigningKey) -> bool:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_KEYS_LOCK)
            if retire:
                await conn.execute(
                    "UPDATE signing_keys SET retired_at = now(), verify_until = %s "
                    "WHERE kid = ANY(%s) AND retired_at IS NULL", (retire_until, list(retire)))
            cur = await conn.execute(
                "SELECT kid, sealed_key, public_jwk, created_at, retired_at, verify_until "
                "FROM signing_keys WHERE retired_at IS NULL")
            if any(opens(_key(row)) for row in await cur.fetchall()):
                return False
            await conn.execute(_INSERT_KEY, _key_params(candidate))
            return True

    async def rotate_signing_key(self, retire_until: datetime, new: NewSigningKey) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_KEYS_LOCK)
            await conn.execute(
                "UPDATE signing_keys SET retired_at = now(), verify_until = %s "
                "WHERE retired_at IS NULL", (retire_until,))
            await conn.execute(_INSERT_KEY, _key_params(new))
