"""What the auth use cases need from the outside world, as typing.Protocol interfaces."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from services.auth.domain import (
    GitHubUser,
    LoginState,
    NewSigningKey,
    SealedGitHubToken,
    SpentRefresh,
    StoredSigningKey,
    User,
)


class UserStore(Protocol):
    """Users, their sealed GitHub tokens and refresh-token families (PostgreSQL)."""

    async def upsert_user(self, github_id: int, login: str, name: str, avatar_url: str) -> User: ...

    async def get_user(self, user_id: str) -> User | None: ...

    async def get_users(self, user_ids: Sequence[str]) -> list[User]: ...

    async def get_user_by_login(self, login: str) -> User | None: ...

    async def store_github_token(self, user_id: str, sealed: bytes, scope: str) -> None: ...

    async def github_token(self, user_id: str) -> SealedGitHubToken | None: ...

    async def insert_refresh(self, family_id: str, user_id: str, token_hash: bytes,
                             expires_at: datetime) -> None: ...

    async def spend_refresh(self, token_hash: bytes, new_hash: bytes,
                            new_expires: datetime) -> SpentRefresh:
        """Spend a refresh token and store its successor in the same family, atomically;
        a token spent before revokes its whole family."""
        ...

    async def revoke_family_of(self, token_hash: bytes) -> bool: ...


class SigningKeyStore(Protocol):
    """Signing keys shared by every auth replica (PostgreSQL)."""

    async def signing_keys(self) -> list[StoredSigningKey]:
        """Every key that still verifies, newest first."""
        ...

    async def ensure_signing_key(self, retire: Sequence[str], retire_until: datetime,
                                 opens: Callable[[StoredSigningKey], bool],
                                 candidate: NewSigningKey) -> bool:
        """Serialized across replicas: retire `retire` (verifying until `retire_until`), then
        store `candidate` unless an unretired key `opens`. True when `candidate` was stored."""
        ...

    async def rotate_signing_key(self, retire_until: datetime, new: NewSigningKey) -> None:
        """Serialized across replicas: retire every signing key, store `new`."""
        ...


class LoginStates(Protocol):
    """Single-use, short-lived OAuth `state` values and what their login started with."""

    async def put(self, state: str, login: LoginState, ttl: int) -> None: ...

    async def take(self, state: str) -> LoginState | None:
        """The login of `state`, removed in the same step (None: unknown, expired or used)."""
        ...


class GitHubOAuth(Protocol):
    def authorize_url(self, state: str, challenge: str, redirect_uri: str, scope: str) -> str: ...

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> tuple[str, str]:
        """(access token, granted scope) for an authorization code."""
        ...

    async def user(self, token: str) -> GitHubUser: ...


class AccessTokenSigner(Protocol):
    def sign_access_token(self, user_id: str, login: str) -> tuple[str, int]:
        """(JWT, lifetime in seconds) for the user."""
        ...


class Sealer(Protocol):
    """Authenticated encryption of secrets at rest, bound to their row by `associated`."""

    def seal(self, plaintext: bytes, associated: bytes) -> bytes: ...

    def open(self, sealed: bytes, associated: bytes) -> bytes: ...
