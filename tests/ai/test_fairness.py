"""The AI queue shared fairly: users served in turn, per-session caps, a deadline for every job."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
from tandem.ai.v1 import ai_pb2

from services.ai.repository import AiRepository
from services.common.db import create_pool
from standins.openai.faults import Fault
from tests.ai.conftest import AiWorld, eventually, expect_code, trailer

World = Callable[..., Any]


async def _pending(world: AiWorld) -> bool:
    return any(r["outcome"] == "pending" for r in world.openai.requests())


async def _hold_the_only_worker(world: AiWorld) -> ai_pb2.Job:
    """An openai job whose provider answers only after 20 s, running on the one worker."""
    world.openai.state.board.set(frozenset({Fault.SLOW}), 1, 20_000)
    held = await world.review_job(world.editor, provider="openai")
    await eventually(lambda: _pending(world))
    return held


async def test_a_flooding_user_does_not_hold_back_another_users_job(ai_world: World) -> None:
    async with ai_world(AI_MAX_CONCURRENCY="1", AI_MAX_JOBS_PER_USER="5",
                        OPENAI_TIMEOUT_SECONDS="30") as world:
        held = await _hold_the_only_worker(world)
        flood = [await world.review_job(world.editor) for _ in range(4)]
        other = await world.review_job(world.owner)
        await world.ai.CancelJob(ai_pb2.CancelJobRequest(job_id=held.id),
                                 metadata=world.editor.metadata)
        for job in (*flood, other):
            assert (await world.finished(job.id)).status == ai_pb2.JOB_STATUS_DONE
        rows = await world.sql("SELECT id::text AS id FROM jobs WHERE id = ANY(%s::uuid[])"
                               " ORDER BY started_at", [j.id for j in (*flood, other)])
        order = [row["id"] for row in rows]
        # The other user queued last but is served as soon as the worker is free:
        # the flooder has just been served, the other user not at all yet.
        assert order[0] == other.id, (order, other.id)
        assert order[1:] == [job.id for job in flood]


async def test_users_take_turns_while_both_have_jobs_queued(ai_world: World) -> None:
    async with ai_world(AI_MAX_CONCURRENCY="1", AI_MAX_JOBS_PER_USER="5",
                        OPENAI_TIMEOUT_SECONDS="30") as world:
        held = await _hold_the_only_worker(world)
        editor = [await world.review_job(world.editor) for _ in range(3)]
        owner = [await world.review_job(world.owner) for _ in range(2)]
        await world.ai.CancelJob(ai_pb2.CancelJobRequest(job_id=held.id),
                                 metadata=world.editor.metadata)
        for job in (*editor, *owner):
            assert (await world.finished(job.id)).status == ai_pb2.JOB_STATUS_DONE
        rows = await world.sql("SELECT requested_by::text AS who FROM jobs"
                               " WHERE id = ANY(%s::uuid[]) ORDER BY started_at",
                               [j.id for j in (*editor, *owner)])
        e, o = world.editor.user_id, world.owner.user_id
        assert [row["who"] for row in rows] == [o, e, o, e, e]


async def test_workers_claiming_at_the_same_moment_still_take_turns(ai_world: World) -> None:
    """Claims that overlap (idle workers woken together, replicas polling at once) must not
    all read one snapshot in which the flooding user has nothing running."""
    async with ai_world(AI_MAX_CONCURRENCY="1", AI_MAX_JOBS_PER_USER="5",
                        OPENAI_TIMEOUT_SECONDS="30") as world:
        held = await _hold_the_only_worker(world)
        # The held job is the editor's: the owner, at 0 running, floods; the editor waits.
        for _ in range(3):
            await world.review_job(world.owner)
        await world.review_job(world.editor)
        # A connection per claim, as three workers (or replicas) have.
        pool = create_pool(world.runtime.config.database_url, "ai", 3, 3, "fairness-test")
        await pool.open(wait=True)
        try:
            repo = AiRepository(pool)
            claimed = await asyncio.gather(*(repo.claim(f"test-runner-{n}", 600.0)
                                             for n in range(3)))
        finally:
            await pool.close()
        who = Counter(c.job.requested_by for c in claimed if c is not None)
        # Serially: the owner (0 running), then both at 1 and the editor served longest ago,
        # then the owner. Three claims reading one snapshot would all take the owner's jobs.
        assert who == {world.owner.user_id: 2, world.editor.user_id: 1}
        await world.ai.CancelJob(ai_pb2.CancelJobRequest(job_id=held.id),
                                 metadata=world.editor.metadata)


async def test_a_session_has_a_cap_on_unfinished_jobs_besides_the_per_user_one(
        ai_world: World) -> None:
    async with ai_world(AI_MAX_CONCURRENCY="1", AI_MAX_JOBS_PER_USER="5",
                        AI_MAX_JOBS_PER_SESSION="3", OPENAI_TIMEOUT_SECONDS="30") as world:
        held = await _hold_the_only_worker(world)
        await world.review_job(world.editor)
        await world.review_job(world.owner)
        # Neither user is at their own limit, but the session is full.
        for user in (world.editor, world.owner):
            limited = await expect_code(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        world.review_job(user))
            assert "session" in (limited.details() or "")
            assert trailer(limited, "tandem-retry-after") == "5"
        await world.ai.CancelJob(ai_pb2.CancelJobRequest(job_id=held.id),
                                 metadata=world.editor.metadata)
        # Finished jobs do not count: there is room again.
        again = await world.review_job(world.owner)
        assert (await world.finished(again.id)).status == ai_pb2.JOB_STATUS_DONE


async def test_a_job_past_its_deadline_fails_with_the_reason_and_its_call_is_cut(
        ai_world: World) -> None:
    # One job at a time: the follow-up below can run only on the slot the cut job gave back.
    async with ai_world(AI_JOB_DEADLINE_SECONDS="1.5", OPENAI_TIMEOUT_SECONDS="30",
                        AI_MAX_CONCURRENCY="1") as world:
        # The provider would answer in 20 s; no timeout of the provider call fires first.
        world.openai.state.board.set(frozenset({Fault.SLOW}), 1, 20_000)
        job = await world.review_job(provider="openai")
        ended = await world.finished(job.id, timeout=10)
        assert ended.status == ai_pb2.JOB_STATUS_FAILED
        assert ended.error == ("timed out: the review did not finish within 1.5 seconds; "
                               "request it again later")
        assert ended.finished_at.ToDatetime() - ended.started_at.ToDatetime() < timedelta(seconds=5)
        # The provider's request was abandoned, not left to run on.
        await eventually(lambda: _outcome(world, "client_disconnected"))
        failed = await world.session_event("ai.failed", job.id)
        assert failed["error"] == ended.error
        # The worker is free again for the next job. It too has 1.5 s: an OpenAI job (the SLOW
        # fault was for one request, the stand-in now answers at once) rather than a built-in
        # one, whose analysis on a loaded machine can take longer than that.
        fine = await world.finished((await world.review_job(provider="openai")).id)
        assert fine.status == ai_pb2.JOB_STATUS_DONE


async def test_the_deadline_counts_from_the_first_start_not_each_attempt(ai_world: World) -> None:
    async with ai_world(AI_JOB_DEADLINE_SECONDS="30") as world:
        # A replica died 10 minutes into this job: another attempt would be past the deadline.
        ghost = "77777777-2222-4333-8444-555555555555"
        await world.sql(
            "INSERT INTO jobs (id, session_id, review_id, kind, requested_by, provider, model,"
            " status, runner, attempts, heartbeat_at, started_at) VALUES (%s, %s, %s, 'review',"
            " %s, 'builtin', 'builtin-x', 'running', 'gone:1:dead', 1,"
            " now() - interval '1 minute', now() - interval '10 minutes')",
            ghost, world.session_id, world.review_id, world.editor.user_id)
        job = await world.finished(ghost)
        assert job.status == ai_pb2.JOB_STATUS_FAILED
        assert job.error.startswith("timed out: the review did not finish within 30 seconds")
        assert not job.findings


async def _outcome(world: AiWorld, outcome: str) -> bool:
    return any(r["outcome"] == outcome for r in world.openai.requests())
