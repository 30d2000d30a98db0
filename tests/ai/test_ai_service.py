"""The ai service over real gRPC with sessions, review, PostgreSQL, Redis and both stand-ins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import orjson
from pycrdt import Doc, Text
from tandem.ai.v1 import ai_pb2
from tandem.review.v1 import review_pb2
from tandem.sessions.v1 import sessions_pb2 as spb

from services.common.keyspace import KeySpace
from standins.github.data import HELLO_USERS_HEAD, HELLO_USERS_PROBLEMS
from standins.openai.faults import Fault
from tests.ai.conftest import AiWorld, Subscription, eventually, expect_code, trailer

World = Callable[..., Any]
SEVERITY = {ai_pb2.SEVERITY_INFO: "info", ai_pb2.SEVERITY_WARNING: "warning",
            ai_pb2.SEVERITY_ERROR: "error"}


def public(finding: ai_pb2.Finding) -> dict[str, Any]:
    out: dict[str, Any] = {"path": finding.path, "line": finding.line,
                           "end_line": finding.end_line, "severity": SEVERITY[finding.severity],
                           "category": finding.category, "message": finding.message}
    if finding.HasField("suggestion"):
        out["suggestion"] = finding.suggestion
    return out


def channel(world: AiWorld) -> str:
    return KeySpace(world.runtime.config.redis_prefix, "sessions").key("rt", "session", world.session_id)


def ended(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda messages: sum(m["type"] == "ai.finding" for m in messages) >= count


async def diff_lines(world: AiWorld, path: str) -> set[int]:
    reply = await world.review.GetFile(review_pb2.GetFileRequest(review_id=world.review_id,
                                                                 path=path),
                                       metadata=world.owner.metadata, timeout=30)
    return {line.target_line for hunk in reply.hunks for line in hunk.lines
            if line.kind in ("+", " ")}


async def test_review_job_streams_findings_that_equal_the_stored_job(ai_world: World) -> None:
    async with ai_world() as world, Subscription(world.redis, channel(world)) as room:
        created = await world.review_job()
        assert created.status == ai_pb2.JOB_STATUS_QUEUED
        watched = world.ai.WatchJob(ai_pb2.WatchJobRequest(job_id=created.id),
                                    metadata=world.viewer.metadata)
        job = await world.finished(created.id)
        assert job.status == ai_pb2.JOB_STATUS_DONE, job.error
        assert job.provider == "builtin"
        assert job.model.startswith("builtin-")

        # Streamed live, in the stored order, with the same content.
        messages = await room.until(ended(len(job.findings)))
        streamed = [m for m in messages if m["type"] == "ai.finding"]
        assert [m["index"] for m in streamed] == list(range(len(job.findings)))
        assert [m["finding"] for m in streamed] == [public(f) for f in job.findings]
        assert all(m["job_id"] == job.id and m["session_id"] == world.session_id and m["at"]
                   for m in streamed)

        # WatchJob gives the same sequence, then the final job.
        items = [item async for item in watched]
        assert [public(i.finding) for i in items[:-1]] == [public(f) for f in job.findings]
        assert items[-1].job.status == ai_pb2.JOB_STATUS_DONE

        # The sample pull request's Python file: every planted problem is found.
        users = [f for f in job.findings if f.path == "app/users.py"]
        for problem, (first, _last) in HELLO_USERS_PROBLEMS.items():
            assert any(f.line == first for f in users), problem
        # Findings sit only on lines the diff shows.
        for path in {f.path for f in job.findings}:
            lines = await diff_lines(world, path)
            assert {f.line for f in job.findings if f.path == path} <= lines, path

        done = await world.session_event("ai.done", job.id)
        assert done["findings_count"] == len(job.findings)
        assert done["summary"] == job.summary
        assert done["seq"] > 0
        assert "5 files reviewed, 0 unchanged reused" in job.summary
        assert job.files_reviewed == 5
        assert job.files_reused == 0


async def test_unchanged_files_are_not_sent_to_the_provider_again(ai_world: World) -> None:
    async with ai_world() as world:
        first = await world.finished((await world.review_job(provider="openai")).id)
        assert first.status == ai_pb2.JOB_STATUS_DONE, first.error
        assert first.provider == "openai"
        assert first.model == "tandem-review-1"
        calls = len(world.openai.requests())
        assert calls >= 1
        assert world.openai.completed() == calls
        found = {(f.path, f.line, f.message) for f in first.findings}
        assert ("app/users.py", 52, "Use of eval on dynamic input") in found
        assert ("app/users.py", 98,
                "Bare except catches SystemExit and KeyboardInterrupt") in found

        again = await world.finished((await world.review_job(provider="openai")).id)
        assert again.status == ai_pb2.JOB_STATUS_DONE, again.error
        assert len(world.openai.requests()) == calls, "a cached file went to the provider"
        assert [public(f) for f in again.findings] == [public(f) for f in first.findings]
        assert again.files_reviewed == 0
        assert again.files_reused == 5
        assert "0 files reviewed, 5 unchanged reused" in again.summary


async def test_a_review_after_a_push_reviews_only_the_changed_file(ai_world: World) -> None:
    async with ai_world() as world:
        first = await world.finished((await world.review_job(provider="openai")).id)
        assert first.status == ai_pb2.JOB_STATUS_DONE, first.error
        calls = len(world.openai.requests())

        changed = HELLO_USERS_HEAD.replace('DB_PASSWORD = "hunter2"\n',
                                           'DB_PASSWORD = "hunter2"\nprint(eval("1 + 1"))\n')
        await world.push({"app/users.py": changed})
        second = await world.finished((await world.review_job(provider="openai")).id)
        assert second.status == ai_pb2.JOB_STATUS_DONE, second.error
        assert len(world.openai.requests()) == calls + 1
        assert second.files_reviewed == 1
        assert second.files_reused == 4
        assert "1 file reviewed, 4 unchanged reused" in second.summary
        users = {(f.line, f.message) for f in second.findings if f.path == "app/users.py"}
        assert (10, "Use of eval on dynamic input") in users
        assert (53, "Use of eval on dynamic input") in users  # parse_filter moved down a line
        others = [public(f) for f in second.findings if f.path != "app/users.py"]
        assert others == [public(f) for f in first.findings if f.path != "app/users.py"]


async def test_who_may_request_and_read_jobs(ai_world: World) -> None:
    async with ai_world() as world:
        await expect_code(grpc.StatusCode.PERMISSION_DENIED, world.review_job(world.viewer))
        await expect_code(grpc.StatusCode.NOT_FOUND, world.review_job(world.stranger))
        await expect_code(grpc.StatusCode.PERMISSION_DENIED, world.document_job(world.viewer))
        await expect_code(grpc.StatusCode.NOT_FOUND, world.document_job(world.stranger))
        await expect_code(grpc.StatusCode.NOT_FOUND,
                          world.review_job(review_id="00000000-0000-4000-8000-000000000000"))
        bad = await expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                                world.review_job(provider="gpt-magic"))
        assert "provider" in (trailer(bad, "tandem-fields-bin") or "")
        await expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                          world.review_job(paths=["app/users.py", "app/nope.py"]))
        await expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                          world.review_job(paths=["app/legacy_lookup.py"]))  # removed

        job = await world.finished((await world.review_job(paths=["app/users.py"])).id)
        assert {f.path for f in job.findings} == {"app/users.py"}
        assert list(job.paths) == ["app/users.py"]
        assert (await world.job(job.id, world.viewer)).id == job.id
        await expect_code(grpc.StatusCode.NOT_FOUND, world.job(job.id, world.stranger))
        await expect_code(grpc.StatusCode.NOT_FOUND,
                          world.job("00000000-0000-4000-8000-000000000000"))
        await expect_code(grpc.StatusCode.NOT_FOUND, world.job("not-a-uuid"))
        await expect_code(grpc.StatusCode.PERMISSION_DENIED, world.ai.CancelJob(
            ai_pb2.CancelJobRequest(job_id=job.id), metadata=world.viewer.metadata))
        await expect_code(grpc.StatusCode.ABORTED, world.ai.CancelJob(
            ai_pb2.CancelJobRequest(job_id=job.id), metadata=world.editor.metadata))


async def test_per_user_limit_and_cancelling_queued_and_running_jobs(ai_world: World) -> None:
    async with ai_world(AI_MAX_CONCURRENCY="1", AI_MAX_JOBS_PER_USER="2",
                        OPENAI_TIMEOUT_SECONDS="30") as world:
        world.openai.state.board.set(frozenset({Fault.SLOW}), None, 20_000)
        running = await world.review_job(provider="openai")
        await world.status(running.id, ai_pb2.JOB_STATUS_RUNNING)
        queued = await world.review_job(provider="openai")
        limited = await expect_code(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    world.review_job(provider="openai"))
        assert trailer(limited, "tandem-retry-after") == "5"
        # Another user is not held back by this one's jobs.
        other = await world.document_job(world.owner)

        cancelled = (await world.ai.CancelJob(ai_pb2.CancelJobRequest(job_id=queued.id),
                                              metadata=world.editor.metadata)).job
        assert cancelled.status == ai_pb2.JOB_STATUS_CANCELLED
        # The running job's provider call is cut, not left to finish.
        stopped = (await world.ai.CancelJob(ai_pb2.CancelJobRequest(job_id=running.id),
                                            metadata=world.owner.metadata)).job
        assert stopped.status == ai_pb2.JOB_STATUS_CANCELLED
        assert stopped.error == "cancelled"
        await eventually(lambda: _outcome(world, "client_disconnected"))
        world.openai.state.board.clear()
        for job_id in (queued.id, running.id):
            failed = await world.session_event("ai.failed", job_id)
            assert failed["status"] == "cancelled"
        # The limit counts unfinished jobs only: there is room again.
        again = await world.review_job()
        assert (await world.finished(again.id)).status == ai_pb2.JOB_STATUS_DONE
        assert (await world.finished(other.id)).status == ai_pb2.JOB_STATUS_DONE


async def _outcome(world: AiWorld, outcome: str) -> bool:
    return any(r["outcome"] == outcome for r in world.openai.requests())


async def test_a_provider_outage_fails_the_job_and_nothing_else(ai_world: World) -> None:
    async with ai_world() as world:
        world.openai.state.board.set(frozenset({Fault.SERVER_ERROR}), None, None)
        job = await world.finished((await world.review_job(provider="openai")).id)
        assert job.status == ai_pb2.JOB_STATUS_FAILED
        assert "HTTP 500" in job.error
        assert "gave up after 3 attempts" in job.error
        assert len(world.openai.requests()) == 3
        failed = await world.session_event("ai.failed", job.id)
        assert failed["error"] == job.error
        assert failed["status"] == "failed"

        world.openai.state.board.set(frozenset({Fault.SLOW}), None, 5_000)
        slow = await world.finished((await world.review_job(provider="openai")).id)
        assert slow.status == ai_pb2.JOB_STATUS_FAILED
        assert "did not answer within 1.5s" in slow.error
        world.openai.state.board.clear()

        # The built-in provider and the rest of the platform carry on.
        fine = await world.finished((await world.review_job()).id)
        assert fine.status == ai_pb2.JOB_STATUS_DONE
        assert fine.findings


async def test_document_review_reads_the_live_document(ai_world: World) -> None:
    text = ("import os\n\n\ndef load(path, cache={}):\n    try:\n"
            "        return eval(open(path).read())\n    except:\n        return None\n")
    async with ai_world() as world:
        doc = Doc()
        doc.get("code", type=Text).insert(0, text)
        await world.sessions.ApplyDocumentUpdate(
            spb.ApplyDocumentUpdateRequest(session_id=world.session_id, update=doc.get_update()),
            metadata=world.editor.metadata)
        job = await world.finished((await world.document_job()).id)
        assert job.status == ai_pb2.JOB_STATUS_DONE, job.error
        assert job.kind == ai_pb2.JOB_KIND_DOCUMENT
        assert not job.review_id
        found = {(f.path, f.line, f.message.rsplit("(", 1)[-1]) for f in job.findings}
        assert ("document.py", 1, "F401)") in found
        assert ("document.py", 4, "B006)") in found
        assert ("document.py", 6, "S307)") in found
        assert ("document.py", 7, "E722)") in found
        assert "1 file" in job.summary
        assert "reviewed" not in job.summary


async def test_a_job_left_running_by_a_stopped_replica_runs_again(ai_world: World) -> None:
    async with ai_world() as world:
        ghost = "11111111-2222-4333-8444-555555555555"
        await world.sql(
            "INSERT INTO jobs (id, session_id, review_id, kind, requested_by, provider, model,"
            " status, runner, attempts, heartbeat_at, started_at) VALUES (%s, %s, %s, 'review',"
            " %s, 'builtin', 'builtin-x', 'running', 'gone:1:dead', 1,"
            " now() - interval '1 minute', now() - interval '1 minute')",
            ghost, world.session_id, world.review_id, world.editor.user_id)
        job = await world.finished(ghost)
        assert job.status == ai_pb2.JOB_STATUS_DONE
        assert job.findings
        rows = await world.sql("SELECT attempts, runner FROM jobs WHERE id = %s", ghost)
        assert rows[0]["attempts"] == 2
        assert rows[0]["runner"] != "gone:1:dead"


async def test_stale_job_that_streamed_findings_fails_instead_of_repeating(ai_world: World) -> None:
    async with ai_world() as world:
        ghost = "66666666-2222-4333-8444-555555555555"
        await world.sql(
            "INSERT INTO jobs (id, session_id, review_id, kind, requested_by, provider, model,"
            " status, runner, attempts, heartbeat_at) VALUES (%s, %s, %s, 'review', %s,"
            " 'builtin', 'builtin-x', 'running', 'gone:1:dead', 1, now() - interval '1 minute')",
            ghost, world.session_id, world.review_id, world.editor.user_id)
        await world.sql(
            "INSERT INTO findings (job_id, idx, path, line, end_line, severity, category, message)"
            " VALUES (%s, 0, 'app/users.py', 5, 5, 'warning', 'style', 'seen already')", ghost)
        job = await world.finished(ghost)
        assert job.status == ai_pb2.JOB_STATUS_FAILED
        assert "interrupted" in job.error
        assert [f.message for f in job.findings] == ["seen already"]
        assert (await world.session_event("ai.failed", ghost))["status"] == "failed"


async def test_a_job_running_when_the_service_stops_runs_again_after(ai_world: World) -> None:
    async with ai_world(OPENAI_TIMEOUT_SECONDS="30") as world:
        world.openai.state.board.set(frozenset({Fault.SLOW}), 1, 20_000)
        job = await world.review_job(provider="openai")
        await eventually(lambda: _outcome(world, "pending"))
        # Stopping releases the running job (nothing was streamed yet): queued again.
        await world.runtime.stop(grace=0.5)
        rows = await world.sql("SELECT status, attempts FROM jobs WHERE id = %s", job.id)
        assert rows == [{"status": "queued", "attempts": 1}]
        await world.runtime.start()

        async def done() -> list[dict[str, Any]]:
            return await world.sql("SELECT status, attempts, error FROM jobs WHERE id = %s"
                                   " AND status = 'done'", job.id)

        rows = await eventually(done, 20)
        assert rows[0]["attempts"] == 2
        assert [r["outcome"] for r in world.openai.requests()] == ["client_disconnected",
                                                                   "completed"]


async def test_two_replicas_share_the_queue_and_run_each_job_once(
        ai_world: World, service_runtime: Callable[..., Any]) -> None:
    async with ai_world(AI_MAX_CONCURRENCY="1", OPENAI_TIMEOUT_SECONDS="30") as world, \
            service_runtime("ai", **world.env) as second:
        assert second.grpc_port != world.runtime.grpc_port
        # One job holds a runner (its provider answers slowly) while others queue up.
        world.openai.state.board.set(frozenset({Fault.SLOW}), 1, 20_000)
        held = await world.review_job(world.owner, provider="openai")
        await eventually(lambda: _outcome(world, "pending"))
        jobs = [await world.review_job() for _ in range(3)]
        finished = [await world.finished(job.id) for job in jobs]
        assert all(job.status == ai_pb2.JOB_STATUS_DONE for job in finished)
        stopped = await world.ai.CancelJob(ai_pb2.CancelJobRequest(job_id=held.id),
                                           metadata=world.owner.metadata)
        assert stopped.job.status == ai_pb2.JOB_STATUS_CANCELLED
        ids = [held.id, *(job.id for job in jobs)]
        rows = await world.sql("SELECT attempts, runner FROM jobs WHERE id = ANY(%s::uuid[])",
                               ids)
        assert [row["attempts"] for row in rows] == [1] * 4
        assert len({row["runner"] for row in rows}) == 2
        await world.session_event("ai.failed", held.id)
        ends = [orjson.loads(e.payload_json)["job_id"] for e in await world.events()
                if e.type in ("ai.done", "ai.failed")]
        assert sorted(ends) == sorted(ids)


async def test_the_result_cache_answers_hits_and_forgets_unused_entries(ai_world: World) -> None:
    from services.ai.domain import make_finding
    from services.ai.repository import AiRepository

    async with ai_world() as world:
        repo = AiRepository(world.runtime.resources.pool)
        stored = [make_finding("a.py", 3, 4, "error", "security", "m", "fix it", "ruff")]
        assert await repo.cached_findings("builtin", "m1", ["k1", "k2"]) == {}
        await repo.cache_findings("builtin", "m1", "k1", stored)
        await repo.cache_findings("builtin", "m1", "k2", [])
        assert await repo.cached_findings("builtin", "m1", ["k1", "k2", "k3"]) == {
            "k1": stored, "k2": []}
        assert await repo.cached_findings("builtin", "m2", ["k1"]) == {}
        assert await repo.cached_findings("openai", "m1", ["k1"]) == {}
        assert await repo.prune_cache(3600) == 0
        await world.sql("UPDATE result_cache SET used_at = now() - interval '2 hours'"
                        " WHERE content_key = 'k2'")
        assert await repo.prune_cache(3600) == 1
        assert await repo.cached_findings("builtin", "m1", ["k1", "k2"]) == {"k1": stored}
