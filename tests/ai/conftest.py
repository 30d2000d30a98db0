"""Fixtures for the ai service: the OpenAI stand-in in-process, and a full stack with a review."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import orjson
import psycopg
import pytest
import redis.asyncio
from psycopg import sql
from psycopg.rows import dict_row
from tandem.ai.v1 import ai_pb2, ai_pb2_grpc
from tandem.review.v1 import review_pb2, review_pb2_grpc
from tandem.sessions.v1 import sessions_pb2 as spb
from tandem.sessions.v1 import sessions_pb2_grpc

from services.common.grpcserver import ServiceRuntime
from standins.openai.app import create_app as create_openai_app
from standins.openai.config import OpenAIStandinConfig
from standins.openai.state import STATE, StandinState
from tests.helpers.grpc import expect_code, join_by_link, trailer
from tests.helpers.identity import SignedIn, sign_in_grpc
from tests.helpers.services import Relay, relayed_github_standin, serving, webhook_relay
from tests.helpers.waiting import eventually

# Shared helpers the ai tests import from here; webhook_relay is a fixture, for pytest.
__all__ = ["eventually", "expect_code", "trailer", "webhook_relay"]

OPENAI_KEY = "sk-ai-tests-" + secrets.token_hex(6)
OPENAI_MODEL = "tandem-review-1"
WEBHOOK_SECRET = "ai-tests-webhook-" + secrets.token_hex(8)
REPO = "tandem-demo/hello-api"
TERMINAL = (ai_pb2.JOB_STATUS_DONE, ai_pb2.JOB_STATUS_FAILED, ai_pb2.JOB_STATUS_CANCELLED)


def unique(login: str) -> str:
    """A login nobody else in the run uses, so per-user limits start at zero."""
    return f"{login}-{secrets.token_hex(3)}"


@dataclass
class OpenAIStandin:
    """The stand-in app serving in this event loop; its state is inspected directly."""

    url: str
    state: StandinState

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def requests(self) -> list[dict[str, Any]]:
        return self.state.requests.as_json()

    def completed(self) -> int:
        return sum(1 for r in self.requests() if r["outcome"] == "completed")


@pytest.fixture
async def openai_standin() -> AsyncIterator[OpenAIStandin]:
    app = create_openai_app(OpenAIStandinConfig(api_key=OPENAI_KEY, model=OPENAI_MODEL))
    async with serving(app) as url:
        yield OpenAIStandin(url, app[STATE])


github_standin = relayed_github_standin(WEBHOOK_SECRET)


@pytest.fixture
def quiet_queue(database_url: str) -> None:
    """No job or cache entry of an earlier test may reach this one's fresh stack.

    A stack stopped mid-job queues that job again, and the next stack's runners
    would take it (with this test's stand-ins); results cached by an earlier test
    would turn this test's first review into a cache hit.
    """
    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('ai.jobs') IS NOT NULL").fetchone()
        if exists and exists[0]:
            conn.execute(sql.SQL(
                "UPDATE ai.jobs SET status = 'failed', error = 'left by an earlier test',"
                " finished_at = now() WHERE status IN ('queued', 'running')"))
            conn.execute(sql.SQL("TRUNCATE ai.result_cache"))


@dataclass
class AiWorld:
    """auth + sessions + review + ai in-process, the stand-ins, and a session with a review."""

    ai: ai_pb2_grpc.AiServiceStub
    sessions: sessions_pb2_grpc.SessionsServiceStub
    review: review_pb2_grpc.ReviewServiceStub
    runtime: ServiceRuntime
    redis: redis.asyncio.Redis
    github: httpx.AsyncClient
    openai: OpenAIStandin
    relay: Relay
    owner: SignedIn
    editor: SignedIn
    viewer: SignedIn
    stranger: SignedIn
    session_id: str
    review_id: str
    env: dict[str, str]

    async def review_job(self, user: SignedIn | None = None, **fields: Any) -> ai_pb2.Job:
        reply = await self.ai.CreateReviewJob(
            ai_pb2.CreateReviewJobRequest(review_id=fields.pop("review_id", self.review_id),
                                          **fields),
            metadata=(user or self.editor).metadata)
        return reply.job

    async def document_job(self, user: SignedIn | None = None, **fields: Any) -> ai_pb2.Job:
        reply = await self.ai.CreateDocumentJob(
            ai_pb2.CreateDocumentJobRequest(session_id=self.session_id, **fields),
            metadata=(user or self.editor).metadata)
        return reply.job

    async def job(self, job_id: str, user: SignedIn | None = None) -> ai_pb2.Job:
        reply = await self.ai.GetJob(ai_pb2.GetJobRequest(job_id=job_id),
                                     metadata=(user or self.editor).metadata)
        return reply.job

    async def finished(self, job_id: str, timeout: float = 20.0) -> ai_pb2.Job:
        async def check() -> ai_pb2.Job | None:
            job = await self.job(job_id)
            return job if job.status in TERMINAL else None

        return await eventually(check, timeout)

    async def status(self, job_id: str, status: int, timeout: float = 10.0) -> ai_pb2.Job:
        async def check() -> ai_pb2.Job | None:
            job = await self.job(job_id)
            return job if job.status == status else None

        return await eventually(check, timeout)

    async def events(self) -> list[spb.Event]:
        reply = await self.sessions.ListEvents(spb.ListEventsRequest(session_id=self.session_id),
                                               metadata=self.owner.metadata)
        return list(reply.events)

    async def session_event(self, event_type: str, job_id: str) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            for event in await self.events():
                payload: dict[str, Any] = orjson.loads(event.payload_json)
                if event.type == event_type and payload.get("job_id") == job_id:
                    return {"seq": event.seq, **payload}
            return None

        return await eventually(check)

    async def push(self, files: dict[str, str | None], number: int = 1) -> None:
        """Move the pull request's head; the relayed webhook refreshes the review."""
        answers = len(self.relay.answers)
        reply = await self.github.post(f"/_standin/repos/{REPO}/pulls/{number}/push",
                                       json={"files": files})
        assert reply.status_code == 200, reply.text
        assert len(self.relay.answers) == answers + 1
        assert self.relay.outcomes[-1] == "processed", self.relay.outcomes

    async def sql(self, query: str, *params: Any) -> list[dict[str, Any]]:
        """The ai schema, directly (also while the service is stopped)."""
        async with await psycopg.AsyncConnection.connect(
                self.runtime.config.database_url, autocommit=True, row_factory=dict_row,
                options="-c search_path=ai") as conn:
            cur = await conn.execute(query.encode(), params)
            return await cur.fetchall() if cur.description else []


class Subscription:
    """A session's realtime channel, read as the gateways read it."""

    def __init__(self, client: redis.asyncio.Redis, channel: str) -> None:
        self._pubsub = client.pubsub()
        self._channel = channel
        self.messages: list[dict[str, Any]] = []

    async def __aenter__(self) -> Subscription:
        await self._pubsub.subscribe(self._channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def until(self, done: Callable[[list[dict[str, Any]]], bool],
                    timeout: float = 20.0) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done(self.messages):
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"channel did not deliver in time: {self.messages}")
            message = await self._pubsub.get_message(ignore_subscribe_messages=True,
                                                      timeout=min(left, 1.0))
            if message and message["type"] == "message":
                self.messages.append(orjson.loads(message["data"]))
        return self.messages


# Fast recovery and polling, short provider timeouts: tests wait on these.
FAST_ENV = {
    "AI_POLL_SECONDS": "0.1", "AI_HEARTBEAT_SECONDS": "0.2", "AI_STALE_SECONDS": "1.5",
    "OPENAI_TIMEOUT_SECONDS": "1.5", "OPENAI_RETRY_BASE_SECONDS": "0.01",
    "OPENAI_RETRY_MAX_SECONDS": "2", "OPENAI_MAX_RETRIES": "2",
}


@pytest.fixture
def ai_world(stack: Callable[..., Any], github_standin: str, webhook_relay: Relay,
             openai_standin: OpenAIStandin, redis_url: str, quiet_queue: None,
             ) -> Callable[..., contextlib.AbstractAsyncContextManager[AiWorld]]:
    """Start the stack (extra env as keyword arguments): a session, its members and PR #1."""

    @contextlib.asynccontextmanager
    async def start(**env: Any) -> AsyncIterator[AiWorld]:
        settings = {**FAST_ENV, "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
                    "OPENAI_BASE_URL": openai_standin.base_url, "OPENAI_API_KEY": OPENAI_KEY,
                    "OPENAI_MODEL": OPENAI_MODEL, **env}
        async with (stack("sessions", "review", "ai", **settings) as s,
                    grpc.aio.insecure_channel(s.addr("auth")) as auth_channel,
                    grpc.aio.insecure_channel(s.addr("sessions")) as sessions_channel,
                    grpc.aio.insecure_channel(s.addr("review")) as review_channel,
                    grpc.aio.insecure_channel(s.addr("ai")) as ai_channel,
                    httpx.AsyncClient(base_url=github_standin, timeout=10) as github):
            webhook_relay.review_addr = s.addr("review")
            webhook_relay.service_token = s.runtimes["review"].config.service_token
            client = redis.asyncio.Redis.from_url(redis_url)
            try:
                owner, editor, viewer, stranger = [
                    await sign_in_grpc(auth_channel, unique(name))
                    for name in ("owner", "editor", "viewer", "stranger")]
                sessions = sessions_pb2_grpc.SessionsServiceStub(sessions_channel)
                created = await sessions.CreateSession(
                    spb.CreateSessionRequest(title="AI review", language="python"),
                    metadata=owner.metadata)
                session_id = created.session.id
                await join_by_link(sessions, session_id, owner, editor, spb.ROLE_EDITOR)
                await join_by_link(sessions, session_id, owner, viewer, spb.ROLE_VIEWER)
                review = review_pb2_grpc.ReviewServiceStub(review_channel)
                imported = await review.CreateReview(
                    review_pb2.CreateReviewRequest(session_id=session_id, repo=REPO,
                                                   pull_number=1),
                    metadata=owner.metadata, timeout=30)
                yield AiWorld(ai_pb2_grpc.AiServiceStub(ai_channel), sessions, review,
                              s.runtimes["ai"], client, github, openai_standin, webhook_relay,
                              owner, editor, viewer, stranger, session_id, imported.review.id,
                              s.env)
            finally:
                await client.aclose()

    return start
