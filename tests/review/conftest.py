"""Fixtures for the review service: a stand-in whose webhooks reach it, a stack, users, a session."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc
from tandem.review.v1 import review_pb2, review_pb2_grpc
from tandem.sessions.v1 import sessions_pb2 as spb
from tandem.sessions.v1 import sessions_pb2_grpc

from services.common.grpcserver import ServiceRuntime
from services.common.identity import service_metadata
from tests.helpers.grpc import expect_code, join_by_link, trailer
from tests.helpers.identity import SignedIn, sign_in_grpc
from tests.helpers.services import Relay, relayed_github_standin, webhook_relay

# Shared helpers the review tests import from here; webhook_relay is a fixture, for pytest.
__all__ = ["expect_code", "trailer", "webhook_relay"]

WEBHOOK_SECRET = "review-tests-webhook-" + secrets.token_hex(8)
REPO = "tandem-demo/hello-api"
PRIVATE_REPO = "tandem-demo/secret-sauce"

github_standin = relayed_github_standin(WEBHOOK_SECRET)


@dataclass
class World:
    """auth + sessions + review in-process, the stand-in, and the people of a test's story.

    hubot owns the session (octocat authored PR #1, and GitHub refuses an
    author's own approval), monalisa edits, octocat only views, and a fresh
    stranger is no member at all.
    """

    review: review_pb2_grpc.ReviewServiceStub
    sessions: sessions_pb2_grpc.SessionsServiceStub
    auth: auth_pb2_grpc.AuthServiceStub
    runtime: ServiceRuntime
    standin: httpx.AsyncClient
    relay: Relay
    owner: SignedIn
    editor: SignedIn
    viewer: SignedIn
    stranger: SignedIn
    session_id: str = ""

    async def webhook(self, request: review_pb2.HandleWebhookRequest,
                      ) -> review_pb2.HandleWebhookResponse:
        """HandleWebhook as the gateway calls it (with the service credential, no user)."""
        reply: review_pb2.HandleWebhookResponse = await self.review.HandleWebhook(
            request, metadata=service_metadata(self.runtime.config.service_token))
        return reply

    async def faults(self, **faults: Any) -> None:
        reply = await self.standin.post("/_standin/faults", json=faults)
        assert reply.status_code == 200, reply.text

    async def clear_faults(self) -> None:
        reply = await self.standin.delete("/_standin/faults")
        assert reply.status_code == 200, reply.text

    async def github_reviews(self, repo: str = REPO, number: int = 1) -> list[dict[str, Any]]:
        reply = await self.standin.get(f"/_standin/reviews/{repo}/{number}")
        assert reply.status_code == 200, reply.text
        result: list[dict[str, Any]] = reply.json()
        return result

    async def push(self, files: dict[str, str | None], repo: str = REPO,
                   number: int = 1) -> dict[str, Any]:
        reply = await self.standin.post(f"/_standin/repos/{repo}/pulls/{number}/push",
                                        json={"files": files})
        assert reply.status_code == 200, reply.text
        result: dict[str, Any] = reply.json()
        return result

    async def rate_limit_used(self, user: SignedIn) -> int:
        """How much of the user's GitHub rate limit is spent (reading it is free)."""
        reply = await self.auth.GetGitHubToken(
            auth_pb2.GetGitHubTokenRequest(user_id=user.user_id),
            metadata=service_metadata(self.runtime.config.service_token, user.user_id))
        answer = await self.standin.get("/rate_limit", headers={
            "Authorization": f"Bearer {reply.access_token}"})
        return int(answer.json()["rate"]["used"])

    async def forget_cached_contents(self) -> None:
        """File contents are cached for the whole run by (SHA, path); start this test cold."""
        res = self.runtime.resources
        async for key in res.redis.scan_iter(match=res.keys.key("contents", "*")):
            await res.redis.delete(key)

    async def sql(self, query: str, *params: Any) -> list[dict[str, Any]]:
        async with self.runtime.resources.pool.connection() as conn:
            cur = await conn.execute(query.encode(), params)
            return await cur.fetchall() if cur.description else []


@pytest.fixture
def world(stack: Callable[..., Any], github_standin: str,
          webhook_relay: Relay) -> Callable[..., contextlib.AbstractAsyncContextManager[World]]:
    """Start the stack (extra env as keyword arguments) with a session and its members."""

    @contextlib.asynccontextmanager
    async def start(**env: Any) -> AsyncIterator[World]:
        async with (stack("sessions", "review", GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET, **env) as s,
                    grpc.aio.insecure_channel(s.addr("auth")) as auth_channel,
                    grpc.aio.insecure_channel(s.addr("sessions")) as sessions_channel,
                    grpc.aio.insecure_channel(s.addr("review")) as review_channel,
                    httpx.AsyncClient(base_url=github_standin, timeout=10) as standin):
            webhook_relay.review_addr = s.addr("review")
            webhook_relay.service_token = s.runtimes["review"].config.service_token
            owner = await sign_in_grpc(auth_channel, "hubot")
            editor = await sign_in_grpc(auth_channel, "monalisa")
            viewer = await sign_in_grpc(auth_channel, "octocat")
            stranger = await sign_in_grpc(auth_channel, f"eve-{secrets.token_hex(4)}")
            sessions = sessions_pb2_grpc.SessionsServiceStub(sessions_channel)
            created = await sessions.CreateSession(spb.CreateSessionRequest(title="Review"),
                                                   metadata=owner.metadata)
            session_id = created.session.id
            await join_by_link(sessions, session_id, owner, editor, spb.ROLE_EDITOR)
            await join_by_link(sessions, session_id, owner, viewer, spb.ROLE_VIEWER)
            yield World(review_pb2_grpc.ReviewServiceStub(review_channel), sessions,
                        auth_pb2_grpc.AuthServiceStub(auth_channel), s.runtimes["review"],
                        standin, webhook_relay, owner, editor, viewer, stranger, session_id)

    return start
