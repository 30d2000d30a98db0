"""Fixtures for the ai service: the OpenAI stand-in in-process, and a full stack with a review."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import httpx
import orjson
import psycopg
import pytest
import redis.asyncio
from aiohttp import web
from psycopg import sql
from psycopg.rows import dict_row
from tandem.ai.v1 import ai_pb2, ai_pb2_grpc
from tandem.review.v1 import review_pb2, review_pb2_grpc
from tandem.sessions.v1 import sessions_pb2 as spb
from tandem.sessions.v1 import sessions_pb2_grpc

from services.common.grpcserver import ServiceRuntime
from services.common.identity import service_metadata
from standins.openai.app import create_app as create_openai_app
from standins.openai.config import OpenAIStandinConfig
from standins.openai.state import STATE, StandinState
from tests.helpers.identity import SignedIn, sign_in_grpc

T = TypeVar("T")

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
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield OpenAIStandin(f"http://{host}:{port}", app[STATE])
    finally:
        await runner.cleanup()


@dataclass
class Relay:
    """Plays the gateway's webhook route: the GitHub stand-in's deliveries to HandleWebhook."""

    url: str = ""
    review_addr: str | None = None
    # The credential the gateway presents on its calls to a service.
    service_token: str = ""
    answers: list[int] = field(default_factory=list)


@pytest.fixture
async def webhook_relay() -> AsyncIterator[Relay]:
    relay = Relay()

    async def receive(request: web.Request) -> web.Response:
        assert relay.review_addr, "the review service is not running yet"
        body = await request.read()
        async with grpc.aio.insecure_channel(relay.review_addr) as channel:
            reply = await review_pb2_grpc.ReviewServiceStub(channel).HandleWebhook(
                review_pb2.HandleWebhookRequest(
                    event=request.headers.get("X-GitHub-Event", ""),
                    delivery_id=request.headers.get("X-GitHub-Delivery", ""),
                    signature_256=request.headers.get("X-Hub-Signature-256", ""), body=body),
                metadata=service_metadata(relay.service_token), timeout=20)
        relay.answers.append(200 if reply.outcome == "processed" else 202)
        return web.json_response({"outcome": reply.outcome})

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    relay.url = f"http://{host}:{port}/hook"
    try:
        yield relay
    finally:
        await runner.cleanup()


@pytest.fixture
async def github_standin(webhook_relay: Relay) -> AsyncIterator[str]:
    """The GitHub stand-in with its `synchronize` webhooks relayed to the review service."""
    from standins.github.app import create_app
    from standins.github.config import StandinConfig

    runner = web.AppRunner(create_app(StandinConfig(webhook_url=webhook_relay.url,
                                                    webhook_secret=WEBHOOK_SECRET)),
                           access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


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
        assert self.relay.answers[-1] == 200

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


async def _join(sessions: sessions_pb2_grpc.SessionsServiceStub, session_id: str,
                owner: SignedIn, user: SignedIn, role: spb.Role.ValueType) -> None:
    invitation = await sessions.CreateInvitation(
        spb.CreateInvitationRequest(session_id=session_id, role=role), metadata=owner.metadata)
    await sessions.AcceptInvitation(
        spb.AcceptInvitationRequest(token=invitation.invitation.token), metadata=user.metadata)


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
                await _join(sessions, session_id, owner, editor, spb.ROLE_EDITOR)
                await _join(sessions, session_id, owner, viewer, spb.ROLE_VIEWER)
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


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 10.0) -> T:
    """Poll `check` until it returns something truthy, within a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.05)


async def expect_code(code: grpc.StatusCode, call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, (info.value.code(), info.value.details())
    return info.value


def trailer(error: grpc.aio.AioRpcError, key: str) -> str | None:
    for name, value in error.trailing_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else value.decode()
    return None
