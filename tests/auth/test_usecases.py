"""AuthUseCases against in-memory ports: login with state and PKCE, refresh rotation and
reuse detection, logout, user lookups (no database, no Redis, no GitHub)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest

from services.auth.config import AuthConfig
from services.auth.crypto import Sealer
from services.auth.domain import token_hash
from services.auth.usecases import AuthUseCases
from services.common.config import Env
from services.common.errors import InvalidArgument, NotFound, Unauthenticated, Unavailable
from tests.auth.fakes import CountingSigner, MemoryLoginStates, MemoryUserStore, ScriptedGitHub

KEY = base64.b64encode(os.urandom(32)).decode()


@dataclass
class World:
    usecases: AuthUseCases
    store: MemoryUserStore
    states: MemoryLoginStates
    github: ScriptedGitHub
    signer: CountingSigner
    sealer: Sealer
    config: AuthConfig

    async def consent(self, login: str, redirect_uri: str = "") -> tuple[str, str]:
        """Start a login and let `login` approve it at GitHub: (code, state)."""
        url, state = await self.usecases.start_login(redirect_uri)
        query = parse_qs(urlsplit(url).query)
        return self.github.consent(login, query["challenge"][0], query["redirect_uri"][0]), state


@pytest.fixture
def world() -> World:
    config = AuthConfig.from_env(Env({"TANDEM_ENV": "development", "TOKEN_ENCRYPTION_KEY": KEY}))
    store, states, github, signer = (MemoryUserStore(), MemoryLoginStates(), ScriptedGitHub(),
                                     CountingSigner())
    sealer = Sealer(base64.b64decode(KEY))
    return World(AuthUseCases(config, store, signer, github, states, sealer), store, states,
                 github, signer, sealer, config)


async def test_a_login_carries_state_and_pkce_and_issues_tokens(world: World) -> None:
    code, state = await world.consent("octocat")
    verifier, redirect = world.states.states[state][0].verifier, world.config.default_redirect
    assert world.states.states[state][1] == world.config.state_ttl
    issued = await world.usecases.complete_login(code, state)
    # GitHub got the verifier whose challenge the authorize URL carried.
    assert world.github.exchanges == [(code, verifier, redirect)]
    assert issued.user.github_login == "octocat"
    assert issued.access_token == f"access-1-{issued.user.id}"
    assert issued.refresh_expires_in == world.config.refresh_ttl
    sealed = world.store.github_tokens[issued.user.id]
    assert b"gho_octocat" not in sealed.sealed
    assert world.sealer.open(sealed.sealed, issued.user.id.encode()) == b"gho_octocat"
    assert await world.usecases.github_token(issued.user.id) == ("gho_octocat", "read:user repo")
    # The refresh token is kept only as its hash.
    assert list(world.store.refresh) == [token_hash(issued.refresh_token)]


async def test_a_state_is_single_use_and_a_forged_one_is_refused(world: World) -> None:
    code, state = await world.consent("hubot")
    await world.usecases.complete_login(code, state)
    assert state not in world.states.states
    with pytest.raises(InvalidArgument, match="start the login again"):
        await world.usecases.complete_login(code, state)
    with pytest.raises(InvalidArgument, match="start the login again"):
        await world.usecases.complete_login(code, "forged")
    with pytest.raises(InvalidArgument, match="code and state are required"):
        await world.usecases.complete_login("", state)
    with pytest.raises(InvalidArgument, match="code and state are required"):
        await world.usecases.complete_login("c" * 513, state)
    # Refused before anything reached GitHub.
    assert len(world.github.exchanges) == 1


async def test_a_redirect_outside_the_allow_list_is_refused(world: World) -> None:
    with pytest.raises(InvalidArgument) as info:
        await world.usecases.start_login("https://evil.example/cb")
    assert [v.field for v in info.value.violations] == ["redirect_uri"]
    assert world.states.states == {}
    allowed = world.config.redirect_allowlist[-1]
    code, state = await world.consent("monalisa", allowed)
    await world.usecases.complete_login(code, state)
    assert world.github.exchanges[-1][2] == allowed


async def test_github_failing_stores_nothing(world: World) -> None:
    code, state = await world.consent("gh-down")
    world.github.failure = Unavailable("GitHub answered 502 to the code exchange", retry_after=5)
    with pytest.raises(Unavailable):
        await world.usecases.complete_login(code, state)
    code, state = await world.consent("gh-down")
    world.github.failure = None
    world.github.user_failure = Unavailable("GitHub is not answering /user", retry_after=5)
    with pytest.raises(Unavailable):
        await world.usecases.complete_login(code, state)
    assert (world.store.users, world.store.github_tokens, world.store.refresh) == ({}, {}, {})


async def test_signing_in_again_keeps_one_user(world: World) -> None:
    first = await world.usecases.complete_login(*await world.consent("newcomer"))
    second = await world.usecases.complete_login(*await world.consent("newcomer"))
    assert first.user.id == second.user.id
    assert len(world.store.users) == 1
    assert (await world.usecases.user_by_login("NEWCOMER")).id == first.user.id


async def test_refresh_rotates_and_a_reused_token_revokes_the_family(world: World) -> None:
    issued = await world.usecases.complete_login(*await world.consent("octocat"))
    rotated = await world.usecases.refresh(issued.refresh_token)
    assert rotated.refresh_token != issued.refresh_token
    assert rotated.user == issued.user
    assert world.signer.signed[-1] == (issued.user.id, "octocat")
    # The spent token presented again is reuse: refused, and its successor dies with it.
    with pytest.raises(Unauthenticated):
        await world.usecases.refresh(issued.refresh_token)
    with pytest.raises(Unauthenticated):
        await world.usecases.refresh(rotated.refresh_token)
    # Another sign-in is another family, untouched.
    other = await world.usecases.complete_login(*await world.consent("octocat"))
    assert (await world.usecases.refresh(other.refresh_token)).user.id == issued.user.id


async def test_refresh_refuses_unknown_malformed_and_orphaned_tokens(world: World) -> None:
    for token in ("", "x" * 257, "never-issued"):
        with pytest.raises(Unauthenticated):
            await world.usecases.refresh(token)
    issued = await world.usecases.complete_login(*await world.consent("leaver"))
    del world.store.users[issued.user.id]
    with pytest.raises(Unauthenticated, match="no longer exists"):
        await world.usecases.refresh(issued.refresh_token)


async def test_logout_revokes_the_family_and_ignores_nonsense(world: World) -> None:
    issued = await world.usecases.complete_login(*await world.consent("hubot"))
    rotated = await world.usecases.refresh(issued.refresh_token)
    await world.usecases.logout("")
    await world.usecases.logout("y" * 300)
    await world.usecases.logout(rotated.refresh_token)
    assert all(t.revoked for t in world.store.refresh.values())
    with pytest.raises(Unauthenticated):
        await world.usecases.refresh(rotated.refresh_token)


async def test_user_lookups(world: World) -> None:
    issued = await world.usecases.complete_login(*await world.consent("octocat"))
    assert await world.usecases.user(issued.user.id) == issued.user
    with pytest.raises(NotFound):
        await world.usecases.user("not-a-uuid")
    with pytest.raises(NotFound):
        await world.usecases.user("00000000-0000-0000-0000-000000000000")
    assert await world.usecases.users(["bogus", issued.user.id]) == [issued.user]
    assert await world.usecases.users(["bogus"]) == []
    with pytest.raises(NotFound):
        await world.usecases.user_by_login("x" * 101)
    with pytest.raises(NotFound, match="sign in again"):
        await world.usecases.github_token("00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFound):
        await world.usecases.github_token("not-a-uuid")
