"""Auth use cases: OAuth login with state + PKCE, token issuing and rotation, users."""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from services.auth.config import AuthConfig
from services.auth.domain import (
    Issued,
    LoginState,
    SpendOutcome,
    User,
    check_callback,
    check_refresh_token,
    pkce_challenge,
    plausible_login,
    plausible_refresh_token,
    token_hash,
    user_id_or_not_found,
    valid_user_ids,
)
from services.auth.ports import AccessTokenSigner, GitHubOAuth, LoginStates, Sealer, UserStore
from services.common.errors import FieldViolation, InvalidArgument, NotFound, Unauthenticated

log = logging.getLogger(__name__)
security = logging.getLogger("tandem.security")


class AuthUseCases:
    def __init__(self, config: AuthConfig, store: UserStore, signer: AccessTokenSigner,
                 github: GitHubOAuth, states: LoginStates, sealer: Sealer) -> None:
        self._config = config
        self._store = store
        self._signer = signer
        self._github = github
        self._states = states
        self._sealer = sealer

    async def start_login(self, redirect_uri: str) -> tuple[str, str]:
        """(GitHub's authorize URL, the state) for a new login."""
        redirect = redirect_uri or self._config.default_redirect
        if redirect not in self._config.redirect_allowlist:
            raise InvalidArgument("redirect_uri is not in the allow-list (OAUTH_REDIRECT_ALLOWLIST)",
                                  [FieldViolation("redirect_uri", "not an allowed redirect URI")])
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        # Single use (taken on return) and short-lived: a leaked state is worthless soon.
        await self._states.put(state, LoginState(verifier, redirect), self._config.state_ttl)
        url = self._github.authorize_url(state, pkce_challenge(verifier), redirect,
                                         self._config.github_scope)
        return url, state

    async def complete_login(self, code: str, state: str) -> Issued:
        check_callback(code, state)
        login = await self._states.take(state)
        if login is None:
            security.warning("oauth state unknown, expired or replayed")
            raise InvalidArgument("unknown, expired or already used state; start the login again")
        # Nothing is stored until GitHub has answered both calls: a failure leaves no user.
        gh_token, scope = await self._github.exchange(code, login.verifier, login.redirect_uri)
        gh_user = await self._github.user(gh_token)
        user = await self._store.upsert_user(gh_user.id, gh_user.login, gh_user.name,
                                             gh_user.avatar_url)
        await self._store.store_github_token(
            user.id, self._sealer.seal(gh_token.encode(), user.id.encode()), scope)
        log.info("user signed in", extra={"user_id": user.id, "github_login": gh_user.login})
        return await self._issue(user, str(uuid.uuid4()))

    async def _issue(self, user: User, family: str) -> Issued:
        refresh = secrets.token_urlsafe(32)  # 256 bits
        await self._store.insert_refresh(family, user.id, token_hash(refresh), self._refresh_expiry())
        access, ttl = self._signer.sign_access_token(user.id, user.github_login)
        return Issued(access, refresh, ttl, user, self._config.refresh_ttl)

    def _refresh_expiry(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._config.refresh_ttl)

    async def refresh(self, refresh_token: str) -> Issued:
        check_refresh_token(refresh_token)
        new = secrets.token_urlsafe(32)
        spent = await self._store.spend_refresh(token_hash(refresh_token), token_hash(new),
                                                self._refresh_expiry())
        if spent.outcome is SpendOutcome.REUSED:
            security.warning("refresh token reuse detected; family revoked",
                             extra={"user_id": spent.user_id, "family_id": spent.family_id})
        if spent.outcome is not SpendOutcome.OK or spent.user_id is None:
            raise Unauthenticated("refresh token is invalid, expired or already used")
        user = await self._store.get_user(spent.user_id)
        if user is None:
            raise Unauthenticated("user no longer exists")
        access, ttl = self._signer.sign_access_token(user.id, user.github_login)
        return Issued(access, new, ttl, user, self._config.refresh_ttl)

    async def logout(self, refresh_token: str) -> None:
        if plausible_refresh_token(refresh_token):
            await self._store.revoke_family_of(token_hash(refresh_token))

    async def user(self, user_id: str) -> User:
        user = await self._store.get_user(user_id_or_not_found(user_id))
        if user is None:
            raise NotFound("user not found")
        return user

    async def users(self, user_ids: list[str]) -> list[User]:
        valid = valid_user_ids(user_ids)
        return await self._store.get_users(valid) if valid else []

    async def user_by_login(self, login: str) -> User:
        user = await self._store.get_user_by_login(login) if plausible_login(login) else None
        if user is None:
            raise NotFound(f"no Tandem user with GitHub login {login!r}")
        return user

    async def github_token(self, user_id: str) -> tuple[str, str]:
        """(the user's GitHub access token, its scope), unsealed."""
        # A malformed id names nobody: NotFound, rather than the database's type error.
        uid = user_id_or_not_found(user_id)
        stored = await self._store.github_token(uid)
        if stored is None:
            raise NotFound("no GitHub token stored for this user; sign in again")
        return self._sealer.open(stored.sealed, uid.encode()).decode(), stored.scope
