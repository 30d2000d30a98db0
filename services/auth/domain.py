"""Auth use cases: OAuth login with state + PKCE, token issuing and rotation, users."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from redis.asyncio import Redis

from services.auth.crypto import Sealer
from services.auth.github import GitHubOAuth
from services.auth.keys import SigningKeys
from services.auth.repository import AuthRepository
from services.auth.settings import AuthSettings
from services.common.errors import FieldViolation, InvalidArgument, NotFound, Unauthenticated
from services.common.redisutil import KeySpace

log = logging.getLogger(__name__)
security = logging.getLogger("tandem.security")


@dataclass(frozen=True, slots=True)
class Issued:
    access_token: str
    refresh_token: str
    expires_in: int
    user: dict[str, Any]
    refresh_expires_in: int


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class AuthDomain:
    def __init__(self, settings: AuthSettings, repo: AuthRepository, keys: SigningKeys,
                 github: GitHubOAuth, redis: Redis, keyspace: KeySpace, sealer: Sealer) -> None:
        self._s = settings
        self._repo = repo
        self._keys = keys
        self._github = github
        self._redis = redis
        self._ks = keyspace
        self._sealer = sealer

    async def start_login(self, redirect_uri: str) -> tuple[str, str]:
        redirect = redirect_uri or self._s.default_redirect
        if redirect not in self._s.redirect_allowlist:
            raise InvalidArgument("redirect_uri is not in the allow-list (OAUTH_REDIRECT_ALLOWLIST)",
                                  [FieldViolation("redirect_uri", "not an allowed redirect URI")])
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        record = orjson.dumps({"verifier": verifier, "redirect_uri": redirect})
        # Single use (GETDEL on return) and short-lived: a leaked state is worthless soon.
        await self._redis.set(self._ks.key("oauth_state", state), record, ex=self._s.state_ttl)
        url = self._github.authorize_url(state, pkce_challenge(verifier), redirect, self._s.github_scope)
        return url, state

    async def complete_login(self, code: str, state: str) -> Issued:
        if not code or not state or len(code) > 512 or len(state) > 512:
            raise InvalidArgument("code and state are required")
        raw = await self._redis.getdel(self._ks.key("oauth_state", state))
        if raw is None:
            security.warning("oauth state unknown, expired or replayed")
            raise InvalidArgument("unknown, expired or already used state; start the login again")
        record = orjson.loads(raw)
        gh_token, scope = await self._github.exchange(code, record["verifier"], record["redirect_uri"])
        gh_user = await self._github.user(gh_token)
        user = await self._repo.upsert_user(gh_user.id, gh_user.login, gh_user.name, gh_user.avatar_url)
        user_id = str(user["id"])
        await self._repo.store_github_token(
            user_id, self._sealer.seal(gh_token.encode(), user_id.encode()), scope)
        log.info("user signed in", extra={"user_id": user_id, "github_login": gh_user.login})
        return await self._issue(user, uuid.uuid4())

    async def _issue(self, user: dict[str, Any], family: uuid.UUID) -> Issued:
        refresh = secrets.token_urlsafe(32)  # 256 bits
        await self._repo.insert_refresh(family, str(user["id"]), _hash(refresh), self._refresh_expiry())
        access, ttl = self._keys.sign_access_token(str(user["id"]), user["github_login"])
        return Issued(access, refresh, ttl, user, self._s.refresh_ttl)

    def _refresh_expiry(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._s.refresh_ttl)

    async def refresh(self, refresh_token: str) -> Issued:
        if not refresh_token or len(refresh_token) > 256:
            raise Unauthenticated("invalid refresh token")
        new = secrets.token_urlsafe(32)
        outcome, row = await self._repo.spend_refresh(_hash(refresh_token), _hash(new),
                                                      self._refresh_expiry())
        if outcome == "reused":
            assert row is not None  # noqa: S101 - reused implies a row
            security.warning("refresh token reuse detected; family revoked",
                             extra={"user_id": str(row["user_id"]), "family_id": str(row["family_id"])})
        if outcome != "ok" or row is None:
            raise Unauthenticated("refresh token is invalid, expired or already used")
        user = await self._repo.get_user(str(row["user_id"]))
        if user is None:
            raise Unauthenticated("user no longer exists")
        access, ttl = self._keys.sign_access_token(str(user["id"]), user["github_login"])
        return Issued(access, new, ttl, user, self._s.refresh_ttl)

    async def logout(self, refresh_token: str) -> None:
        if refresh_token and len(refresh_token) <= 256:
            await self._repo.revoke_family_of(_hash(refresh_token))

    async def user(self, user_id: str) -> dict[str, Any]:
        try:
            uuid.UUID(user_id)
        except ValueError:
            raise NotFound("user not found") from None
        user = await self._repo.get_user(user_id)
        if user is None:
            raise NotFound("user not found")
        return user

    async def users(self, user_ids: list[str]) -> list[dict[str, Any]]:
        valid = []
        for uid in user_ids[:1000]:
            try:
                valid.append(str(uuid.UUID(uid)))
            except ValueError:
                continue
        return await self._repo.get_users(valid) if valid else []

    async def user_by_login(self, login: str) -> dict[str, Any]:
        user = await self._repo.get_user_by_login(login) if login and len(login) <= 100 else None
        if user is None:
            raise NotFound(f"no Tandem user with GitHub login {login!r}")
        return user

    async def github_token(self, user_id: str) -> tuple[str, str]:
        stored = await self._repo.github_token(user_id)
        if stored is None:
            raise NotFound("no GitHub token stored for this user; sign in again")
        sealed, scope = stored
        return self._sealer.open(sealed, user_id.encode()).decode(), scope
