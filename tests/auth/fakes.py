"""In-memory implementations of the auth use cases' ports (services/auth/ports.py)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from services.auth.domain import (
    GitHubUser,
    LoginState,
    SealedGitHubToken,
    SpendOutcome,
    SpentRefresh,
    User,
    pkce_challenge,
)
from services.common.errors import DomainError, InvalidArgument


@dataclass
class _Refresh:
    family_id: str
    user_id: str
    expires_at: datetime
    used: bool = False
    revoked: bool = False


@dataclass
class MemoryUserStore:
    """UserStore with the repository's rules: one user per GitHub id, rotation in a family,
    a second spend of a token revokes the family."""

    users: dict[str, User] = field(default_factory=dict)
    github_tokens: dict[str, SealedGitHubToken] = field(default_factory=dict)
    refresh: dict[bytes, _Refresh] = field(default_factory=dict)

    async def upsert_user(self, github_id: int, login: str, name: str, avatar_url: str) -> User:
        for user in self.users.values():
            if user.github_id == github_id:
                updated = replace(user, github_login=login, name=name, avatar_url=avatar_url)
                self.users[user.id] = updated
                return updated
        user = User(str(uuid.uuid4()), github_id, login, name, avatar_url, datetime.now(UTC))
        self.users[user.id] = user
        return user

    async def get_user(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    async def get_users(self, user_ids: Sequence[str]) -> list[User]:
        return [self.users[i] for i in user_ids if i in self.users]

    async def get_user_by_login(self, login: str) -> User | None:
        return next((u for u in self.users.values() if u.github_login.lower() == login.lower()),
                    None)

    async def store_github_token(self, user_id: str, sealed: bytes, scope: str) -> None:
        self.github_tokens[user_id] = SealedGitHubToken(sealed, scope)

    async def github_token(self, user_id: str) -> SealedGitHubToken | None:
        return self.github_tokens.get(user_id)

    async def insert_refresh(self, family_id: str, user_id: str, token_hash: bytes,
                             expires_at: datetime) -> None:
        self.refresh[token_hash] = _Refresh(family_id, user_id, expires_at)

    async def spend_refresh(self, token_hash: bytes, new_hash: bytes,
                            new_expires: datetime) -> SpentRefresh:
        token = self.refresh.get(token_hash)
        if token is None:
            return SpentRefresh(SpendOutcome.UNKNOWN)
        owner = token.user_id, token.family_id
        if token.revoked:
            return SpentRefresh(SpendOutcome.REVOKED, *owner)
        if token.used:
            self._revoke(token.family_id)
            return SpentRefresh(SpendOutcome.REUSED, *owner)
        if token.expires_at < datetime.now(UTC):
            return SpentRefresh(SpendOutcome.EXPIRED, *owner)
        token.used = True
        self.refresh[new_hash] = _Refresh(token.family_id, token.user_id, new_expires)
        return SpentRefresh(SpendOutcome.OK, *owner)

    async def revoke_family_of(self, token_hash: bytes) -> bool:
        token = self.refresh.get(token_hash)
        return self._revoke(token.family_id) if token else False

    def _revoke(self, family_id: str) -> bool:
        live = [t for t in self.refresh.values() if t.family_id == family_id and not t.revoked]
        for t in live:
            t.revoked = True
        return bool(live)


@dataclass
class MemoryLoginStates:
    states: dict[str, tuple[LoginState, int]] = field(default_factory=dict)

    async def put(self, state: str, login: LoginState, ttl: int) -> None:
        self.states[state] = (login, ttl)

    async def take(self, state: str) -> LoginState | None:
        entry = self.states.pop(state, None)
        return entry[0] if entry else None


@dataclass
class ScriptedGitHub:
    """GitHubOAuth that knows codes handed out by `consent`; `failure` makes its calls fail."""

    users: dict[str, GitHubUser] = field(default_factory=dict)
    # code -> (login, the PKCE challenge and redirect it was issued for)
    codes: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    exchanges: list[tuple[str, str, str]] = field(default_factory=list)
    failure: DomainError | None = None
    user_failure: DomainError | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def authorize_url(self, state: str, challenge: str, redirect_uri: str, scope: str) -> str:
        return f"https://github.test/authorize?state={state}&challenge={challenge}" \
               f"&redirect_uri={redirect_uri}&scope={scope}"

    def consent(self, login: str, challenge: str, redirect_uri: str) -> str:
        """The user signs in at GitHub: a code bound to the login's challenge and redirect."""
        if login not in self.users:
            self.users[login] = GitHubUser(next(self._ids), login, login.title(), "")
        code = f"code-{len(self.codes)}"
        self.codes[code] = (login, challenge, redirect_uri)
        return code

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> tuple[str, str]:
        self.exchanges.append((code, verifier, redirect_uri))
        if self.failure is not None:
            raise self.failure
        issued = self.codes.pop(code, None)
        if issued is None or issued[1] != pkce_challenge(verifier) or issued[2] != redirect_uri:
            raise InvalidArgument("GitHub refused the authorization code (bad_verification_code)")
        return f"gho_{issued[0]}", "read:user repo"

    async def user(self, token: str) -> GitHubUser:
        if self.user_failure is not None:
            raise self.user_failure
        return self.users[token.removeprefix("gho_")]


@dataclass
class CountingSigner:
    """AccessTokenSigner: tokens that say who they are for."""

    signed: list[tuple[str, str]] = field(default_factory=list)

    def sign_access_token(self, user_id: str, login: str) -> tuple[str, int]:
        self.signed.append((user_id, login))
        return f"access-{len(self.signed)}-{user_id}", 900
