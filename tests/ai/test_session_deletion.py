"""Deleting a session reaches every service that holds its data: review and ai purge theirs.

The sessions service records a `session.deleted` domain event in its outbox with the
deletion; review and ai each consume the domain-events stream in a consumer group of
their own and delete what they hold for the session, whenever they are running.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import psycopg
from psycopg.rows import dict_row
from tandem.ai.v1 import ai_pb2, ai_pb2_grpc
from tandem.review.v1 import review_pb2, review_pb2_grpc
from tandem.sessions.v1 import sessions_pb2 as spb
from tandem.sessions.v1 import sessions_pb2_grpc

from standins.openai.faults import Fault
from tests.ai.conftest import (
    FAST_ENV,
    OPENAI_KEY,
    OPENAI_MODEL,
    REPO,
    TERMINAL,
    WEBHOOK_SECRET,
    AiWorld,
    OpenAIStandin,
    Relay,
    eventually,
    unique,
)
from tests.helpers.identity import SignedIn, sign_in_grpc

World = Callable[..., Any]

# What each service holds for a session, as (schema-qualified table, how it names the session).
HELD = {
    "review.reviews": "session_id = %(sid)s",
    "review.review_files": "review_id = ANY(%(reviews)s::uuid[])",
    "review.threads": "review_id = ANY(%(reviews)s::uuid[])",
    "review.comments": "thread_id = ANY(%(threads)s::uuid[])",
    "review.verdicts": "review_id = ANY(%(reviews)s::uuid[])",
    "ai.jobs": "session_id = %(sid)s",
    "ai.findings": "job_id = ANY(%(jobs)s::uuid[])",
}


async def _held(database_url: str, session_id: str, reviews: list[str], threads: list[str],
                jobs: list[str]) -> dict[str, int]:
    """Rows per table still there for the session (read directly: also while services are down)."""
    params = {"sid": session_id, "reviews": reviews, "threads": threads, "jobs": jobs}
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True,
                                                     row_factory=dict_row) as conn:
        counts: dict[str, int] = {}
        for table, where in HELD.items():
            query = f"SELECT count(*) AS n FROM {table} WHERE {where}"  # noqa: S608 - names from HELD
            cur = await conn.execute(query.encode(), params)
            row = await cur.fetchone()
            counts[table] = int(row["n"]) if row else 0
        return counts


async def _fill(review: review_pb2_grpc.ReviewServiceStub, ai: ai_pb2_grpc.AiServiceStub,
                review_id: str, owner: SignedIn) -> tuple[list[str], list[str]]:
    """A thread with a reply, a verdict and a finished AI job with findings; (threads, jobs)."""
    thread = (await review.CreateThread(review_pb2.CreateThreadRequest(
        review_id=review_id, path="app/users.py", line=52, side=review_pb2.SIDE_RIGHT,
        body="eval on user input"), metadata=owner.metadata)).thread
    await review.AddComment(review_pb2.AddCommentRequest(
        review_id=review_id, thread_id=thread.id, body="agreed"), metadata=owner.metadata)
    await review.CreateVerdict(review_pb2.CreateVerdictRequest(
        review_id=review_id, state=review_pb2.VERDICT_STATE_REQUEST_CHANGES, body="see thread"),
        metadata=owner.metadata)
    job = (await ai.CreateReviewJob(ai_pb2.CreateReviewJobRequest(review_id=review_id),
                                    metadata=owner.metadata)).job

    async def finished() -> ai_pb2.Job | None:
        current = (await ai.GetJob(ai_pb2.GetJobRequest(job_id=job.id),
                                   metadata=owner.metadata)).job
        return current if current.status in TERMINAL else None

    done = await eventually(finished, 30)
    assert done.status == ai_pb2.JOB_STATUS_DONE, done.error
    assert done.findings
    return [thread.id], [job.id]


async def _gone(database_url: str, session_id: str, reviews: list[str], threads: list[str],
                jobs: list[str]) -> bool:
    return not any((await _held(database_url, session_id, reviews, threads, jobs)).values())


async def test_deleting_a_session_deletes_its_reviews_and_ai_jobs_and_cuts_running_jobs(
        ai_world: World) -> None:
    async with ai_world(AI_MAX_CONCURRENCY="2", OPENAI_TIMEOUT_SECONDS="30") as world:
        w: AiWorld = world
        url = w.runtime.config.database_url
        threads, jobs = await _fill(w.review, w.ai, w.review_id, w.owner)
        # A job whose provider answers slowly is running when the session goes.
        w.openai.state.board.set(frozenset({Fault.SLOW}), None, 20_000)
        running = (await w.ai.CreateReviewJob(ai_pb2.CreateReviewJobRequest(
            review_id=w.review_id, provider="openai"), metadata=w.owner.metadata)).job
        await eventually(lambda: _outcome(w.openai, "pending"))
        jobs.append(running.id)
        before = await _held(url, w.session_id, [w.review_id], threads, jobs)
        assert all(before.values()), before

        await w.sessions.DeleteSession(spb.DeleteSessionRequest(session_id=w.session_id),
                                       metadata=w.owner.metadata)

        await eventually(lambda: _gone(url, w.session_id, [w.review_id], threads, jobs), 15)
        # The running job's provider call was cut, not left to run for nobody.
        await eventually(lambda: _outcome(w.openai, "client_disconnected"), 15)
        w.openai.state.board.clear()
        for user in (w.owner, w.editor):
            with contextlib.suppress(grpc.aio.AioRpcError):
                await w.review.GetReview(review_pb2.GetReviewRequest(review_id=w.review_id),
                                         metadata=user.metadata)
                raise AssertionError("the review is still readable after its session was deleted")


async def _outcome(openai: OpenAIStandin, outcome: str) -> bool:
    return any(r["outcome"] == outcome for r in openai.requests())


async def test_a_service_that_was_down_at_the_deletion_purges_when_it_comes_back(
        stack: Callable[..., Any], service_runtime: Callable[..., Any], github_standin: str,
        webhook_relay: Relay, openai_standin: OpenAIStandin, quiet_queue: None,
        database_url: str) -> None:
    settings = {**FAST_ENV, "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "OPENAI_BASE_URL": openai_standin.base_url, "OPENAI_API_KEY": OPENAI_KEY,
                "OPENAI_MODEL": OPENAI_MODEL}
    async with (stack("sessions", **settings) as s,
                grpc.aio.insecure_channel(s.addr("auth")) as auth_channel,
                grpc.aio.insecure_channel(s.addr("sessions")) as sessions_channel):
        env = dict(s.env)
        sessions = sessions_pb2_grpc.SessionsServiceStub(sessions_channel)
        owner = await sign_in_grpc(auth_channel, unique("owner"))
        session_id = (await sessions.CreateSession(spb.CreateSessionRequest(title="Gone soon"),
                                                   metadata=owner.metadata)).session.id
        async with service_runtime("review", **env) as review_rt:
            env["REVIEW_ADDR"] = f"127.0.0.1:{review_rt.grpc_port}"
            webhook_relay.review_addr = env["REVIEW_ADDR"]
            async with (service_runtime("ai", **env) as ai_rt,
                        grpc.aio.insecure_channel(env["REVIEW_ADDR"]) as review_channel,
                        grpc.aio.insecure_channel(f"127.0.0.1:{ai_rt.grpc_port}") as ai_channel):
                review = review_pb2_grpc.ReviewServiceStub(review_channel)
                imported = await review.CreateReview(review_pb2.CreateReviewRequest(
                    session_id=session_id, repo=REPO, pull_number=1), metadata=owner.metadata,
                    timeout=30)
                reviews = [imported.review.id]
                threads, jobs = await _fill(review, ai_pb2_grpc.AiServiceStub(ai_channel),
                                            imported.review.id, owner)
        url = database_url
        # Both are stopped now: the deletion cannot reach either of them at once.
        await sessions.DeleteSession(spb.DeleteSessionRequest(session_id=session_id),
                                     metadata=owner.metadata)
        held = await _held(url, session_id, reviews, threads, jobs)
        assert all(held.values()), held
        async with service_runtime("review", **env), service_runtime("ai", **env):
            await eventually(lambda: _gone(url, session_id, reviews, threads, jobs), 15)



async def test_what_is_written_for_a_session_after_its_purge_is_swept(
        ai_world: World, database_url: str) -> None:
    async with ai_world(SESSION_PURGE_SWEEP_SECONDS="0.2") as world:
        w: AiWorld = world
        await w.sessions.DeleteSession(spb.DeleteSessionRequest(session_id=w.session_id),
                                       metadata=w.owner.metadata)
        await eventually(lambda: _gone(database_url, w.session_id, [w.review_id], [], []), 15)
        # An import or a job request that passed its membership check just before the
        # deletion writes afterwards: such rows go with the next sweep.
        late_review, late_job = str(uuid.uuid4()), str(uuid.uuid4())
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO review.reviews (id, session_id, repo, pull_number, head_sha, base_sha,"
                " title, created_by) VALUES (%s, %s, %s, 1, 'h', 'b', 'late', %s)",
                (late_review, w.session_id, REPO, w.owner.user_id))
            await conn.execute(
                "INSERT INTO ai.jobs (id, session_id, kind, requested_by, provider, model, status)"
                " VALUES (%s, %s, 'document', %s, 'builtin', 'builtin', 'queued')",
                (late_job, w.session_id, w.owner.user_id))
        await eventually(lambda: _gone(database_url, w.session_id, [late_review], [],
                                       [late_job]), 15)
