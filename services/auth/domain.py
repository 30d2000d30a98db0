"""The auth service's records, errors and pure rules (no I/O): users, tokens, login states."""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.common.errors import InvalidArgument, NotFound, Unauthenticated

# What a client may hand us, at most: longer values are refused before any I/O.
MAX_CODE = 512
MAX_STATE = 512
MAX_REFRESH_TOKEN = 256
MAX_LOGIN = 100
MAX_BATCH = 1000


@dataclass(frozen=True, slots=True)
class User:
    """A Tandem user: an internal id, and the GitHub identity kept current at each sign-in."""

    id: str
    github_id: int
    github_login: str
    name: str
    avatar_url: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class GitHubUser:
    """Who GitHub says the token's owner is."""

    id: int
    login: str
    name: str
    avatar_url: str


@dataclass(frozen=True, slots=True)
class LoginState:
    """What a login started with, kept (single use) until GitHub sends the browser back."""

    verifier: str
    redirect_uri: str


@dataclass(frozen=True, slots=True)
class SealedGitHubToken:
    sealed: bytes
    scope: str


@dataclass(frozen=True, slots=True)
class Issued:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User
    refresh_expires_in: int


class SpendOutcome(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"
    # Spent before: the whole family has been revoked (a stolen token was replayed).
    REUSED = "reused"


@dataclass(frozen=True, slots=True)
class SpentRefresh:
    """Spending a refresh token: what happened, and whose token it was (when known)."""

    outcome: SpendOutcome
    user_id: str | None = None
    family_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredSigningKey:
    """A signing key as stored: its private half sealed, its public half as a JWK."""

    kid: str
    sealed_key: bytes
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None
    verify_until: datetime | None


@dataclass(frozen=True, slots=True)
class NewSigningKey:
    kid: str
    sealed_key: bytes
    public_jwk: dict[str, Any]


def token_hash(token: str) -> bytes:
    """How a refresh token is stored and looked up: its sha256, never the token."""
    return hashlib.sha256(token.encode()).digest()


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url (no padding) of the verifier's sha256."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def check_callback(code: str, state: str) -> None:
    if not code or not state or len(code) > MAX_CODE or len(state) > MAX_STATE:
        raise InvalidArgument("code and state are required")


def check_refresh_token(token: str) -> None:
    if not token or len(token) > MAX_REFRESH_TOKEN:
        raise Unauthenticated("invalid refresh token")


def plausible_refresh_token(token: str) -> bool:
    """Worth looking up (logout of anything else is a no-op)."""
    return bool(token) and len(token) <= MAX_REFRESH_TOKEN


def user_id_or_not_found(value: str) -> str:
    """An id that is not a UUID names nobody."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound("user not found") from None


def valid_user_ids(values: list[str]) -> list[str]:
    """The UUIDs among the first MAX_BATCH values (the rest name nobody and are skipped)."""
    valid = []
    for value in values[:MAX_BATCH]:
        try:
            valid.append(str(uuid.UUID(value)))
        except ValueError:
            continue
    return valid


def plausible_login(login: str) -> bool:
    return bool(login) and len(login) <= MAX_LOGIN
