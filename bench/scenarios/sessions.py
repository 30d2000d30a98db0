"""Session reads and writes through the gateway, and the same list query in a bare monolith."""

from __future__ import annotations

import asyncio
import functools
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from bench.registry import Context, Load, Skip, WrkLoad, scenario
from scripts.devlogin import SignedIn, sign_in_http
from scripts.platform import free_port, wait_ready

T = TypeVar("T")

LIST_SESSIONS = 50  # sessions of the list scenarios' user, all on one page of ?limit=50
# Set-up requests in flight at once: quick to seed, gentle on a shared machine.
SETUP_CONCURRENCY = 16


def sign_in(ctx: Context, login: str) -> SignedIn:
    """A user signed in through the gateway and the GitHub stand-in; Skip when it can't."""
    try:
        return sign_in_http(ctx.gateway, login)
    except (RuntimeError, httpx.HTTPError) as exc:
        raise Skip(f"cannot sign in through the GitHub stand-in: {exc}") from None


def sign_in_many(ctx: Context, logins: Sequence[str]) -> list[SignedIn]:
    return [sign_in(ctx, login) for login in logins]


def run_id() -> str:
    """A short tag that keeps this run's logins and titles apart from a reused platform's."""
    return uuid.uuid4().hex[:8]


class SetupError(RuntimeError):
    """A set-up request got an answer the scenario cannot go on with."""


@dataclass
class Api:
    """The public API as one user, for scenario set-up (async, so seeding runs in parallel)."""

    client: httpx.AsyncClient

    @classmethod
    def of(cls, base_url: str, user: SignedIn) -> Api:
        return cls(httpx.AsyncClient(base_url=base_url, headers=user.headers, timeout=30))

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        reply = await self.client.request(method, path, json=body)
        if reply.status_code in (404, 405, 501):
            route = path.partition("?")[0]
            raise Skip(f"{method} {route} answers {reply.status_code} ({reply.text[:120]}): "
                       "not built yet")
        if not 200 <= reply.status_code < 300:
            raise SetupError(f"{method} {path} answered {reply.status_code}: {reply.text[:300]}")
        return reply.json() if reply.content else None

    async def create_session(self, title: str) -> str:
        created = await self.call("POST", "/api/v1/sessions",
                                  {"title": title, "language": "python"})
        return str(created["id"])

    async def close(self) -> None:
        await self.client.aclose()


async def limited(factories: Sequence[Callable[[], Awaitable[T]]],
                  limit: int = SETUP_CONCURRENCY) -> list[T]:
    """Await every factory's result, at most `limit` at a time, in order."""
    gate = asyncio.Semaphore(limit)

    async def one(factory: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await factory()

    return list(await asyncio.gather(*(one(f) for f in factories)))


async def add_member(base_url: str, owner: Api, session_id: str, member: SignedIn,
                     role: str = "editor") -> None:
    """Invite `member` by login and accept as them: how a second user joins a session."""
    invitation = await owner.call("POST", f"/api/v1/sessions/{session_id}/invitations",
                                  {"github_login": member.login, "role": role})
    guest = Api.of(base_url, member)
    try:
        await guest.call("POST", f"/api/v1/invitations/{invitation['id']}/accept")
    finally:
        await guest.close()


def user_with_sessions(ctx: Context, login: str, count: int) -> SignedIn:
    """`login` signed in and a member of at least `count` sessions (reused on a running platform)."""
    user = sign_in(ctx, login)

    async def top_up() -> None:
        api = Api.of(ctx.gateway, user)
        try:
            page = await api.call("GET", f"/api/v1/sessions?limit={count}")
            have = len(page["items"])
            await limited([functools.partial(api.create_session, f"Bench session {i}")
                           for i in range(have, count)])
        finally:
            await api.close()

    asyncio.run(top_up())
    return user


def owned_session(ctx: Context, login: str, title: str) -> tuple[SignedIn, str]:
    """A signed-in user and a new session they own."""
    user = sign_in(ctx, login)

    async def create() -> str:
        api = Api.of(ctx.gateway, user)
        try:
            return await api.create_session(title)
        finally:
            await api.close()

    return user, asyncio.run(create())


@scenario("sessions_list", baseline="sessions_list_monolith")
def sessions_list(ctx: Context) -> Load:
    """GET /api/v1/sessions?limit=50 of a user with 50 sessions: JWT, gRPC, one index range scan."""
    user = user_with_sessions(ctx, "bench-sessions", LIST_SESSIONS)
    return WrkLoad(f"{ctx.gateway}/api/v1/sessions?limit={LIST_SESSIONS}", headers=user.headers)


@scenario("sessions_list_monolith")
def sessions_list_monolith(ctx: Context) -> Load:
    """The same list query and JSON in one bare aiohttp process (bench/monolith.py): the baseline."""
    database_url = ctx.env.get("DATABASE_URL")
    if not database_url:
        raise Skip("DATABASE_URL is not set: the monolith reads the platform's database directly")
    # The same user and rows the gateway scenario reads: both answer the same 50 items.
    user = user_with_sessions(ctx, "bench-sessions", LIST_SESSIONS)
    port = free_port()
    ctx.start_process([sys.executable, "-m", "bench.monolith", "--port", str(port)],
                      name="monolith", env=dict(ctx.env, DATABASE_URL=database_url))
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/health", 20.0, what="monolith server")
    return WrkLoad(f"{url}/api/v1/sessions?limit={LIST_SESSIONS}",
                   headers={"X-User-Id": user.user_id})


@scenario("message_post", baseline="health")
def message_post(ctx: Context) -> Load:
    """POST /api/v1/sessions/{id}/messages: sequence number, message, event log, outbox, fan-out."""
    user, session_id = owned_session(ctx, "bench-poster", "Bench chat")
    return WrkLoad(f"{ctx.gateway}/api/v1/sessions/{session_id}/messages", method="POST",
                   headers={**user.headers, "Content-Type": "application/json"},
                   body='{"body": "Looks good to me, merging after the tests pass."}')


@scenario("session_get_c1", connections=1)
def session_get_c1(ctx: Context) -> Load:
    """GET /api/v1/sessions/{id} over one connection: the latency of one authenticated read."""
    user, session_id = owned_session(ctx, "bench-reader", "Bench read")
    return WrkLoad(f"{ctx.gateway}/api/v1/sessions/{session_id}", headers=user.headers)
