"""ListJobs: a review's and a session's AI jobs, newest first with their findings, for members."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from tandem.ai.v1 import ai_pb2
from tandem.review.v1 import review_pb2

from tests.ai.conftest import REPO, AiWorld, expect_code
from tests.helpers.identity import SignedIn

World = Callable[..., Any]
MISSING = "00000000-0000-4000-8000-000000000000"


async def listed(world: AiWorld, user: SignedIn | None = None, **scope: Any) -> ai_pb2.ListJobsResponse:
    reply: ai_pb2.ListJobsResponse = await world.ai.ListJobs(
        ai_pb2.ListJobsRequest(**scope), metadata=(user or world.viewer).metadata)
    return reply


async def walk(world: AiWorld, limit: int, **scope: Any) -> list[str]:
    """Every job id of a list, page by page."""
    ids: list[str] = []
    cursor = ""
    while True:
        page = await listed(world, limit=limit, cursor=cursor, **scope)
        assert len(page.jobs) <= limit
        ids += [job.id for job in page.jobs]
        if not page.next_cursor:
            return ids
        cursor = page.next_cursor


async def test_a_review_and_a_session_list_their_jobs_newest_first(ai_world: World) -> None:
    async with ai_world() as world:
        other = (await world.review.CreateReview(
            review_pb2.CreateReviewRequest(session_id=world.session_id, repo=REPO, pull_number=1),
            metadata=world.owner.metadata, timeout=30)).review
        assert (await listed(world, review_id=world.review_id)).jobs == []
        everything = await world.finished((await world.review_job()).id)
        document = await world.finished((await world.document_job()).id)
        on_other = await world.finished((await world.review_job(review_id=other.id)).id)
        one_file = await world.finished((await world.review_job(paths=["app/users.py"])).id)

        page = await listed(world, review_id=world.review_id)
        assert [j.id for j in page.jobs] == [one_file.id, everything.id]
        assert page.next_cursor == ""
        # Each item is the job as GetJob answers it, findings included.
        assert list(page.jobs) == [one_file, everything]
        assert everything.findings

        session = await listed(world, session_id=world.session_id)
        assert [j.id for j in session.jobs] == [one_file.id, on_other.id, document.id,
                                                everything.id]
        documents = await listed(world, session_id=world.session_id, kind=ai_pb2.JOB_KIND_DOCUMENT)
        assert [j.id for j in documents.jobs] == [document.id]
        reviews = await listed(world, session_id=world.session_id, kind=ai_pb2.JOB_KIND_REVIEW)
        assert [j.id for j in reviews.jobs] == [one_file.id, on_other.id, everything.id]
        assert [j.id for j in (await listed(world, review_id=other.id)).jobs] == [on_other.id]

        # Pages follow one another without gaps or repeats.
        assert await walk(world, 1, session_id=world.session_id) == [j.id for j in session.jobs]
        assert await walk(world, 3, session_id=world.session_id) == [j.id for j in session.jobs]
        assert await walk(world, 1, review_id=world.review_id) == [one_file.id, everything.id]
        assert await walk(world, 1, session_id=world.session_id,
                          kind=ai_pb2.JOB_KIND_REVIEW) == [j.id for j in reviews.jobs]


async def test_only_members_list_jobs_and_bad_pages_are_refused(ai_world: World) -> None:
    async with ai_world() as world:
        job = await world.finished((await world.review_job()).id)
        for user in (world.owner, world.editor, world.viewer):
            assert [j.id for j in (await listed(world, user, review_id=world.review_id)).jobs] == [
                job.id]
            assert [j.id for j in (await listed(world, user, session_id=world.session_id)).jobs] == [
                job.id]
        for scope in ({"review_id": world.review_id}, {"session_id": world.session_id},
                      {"review_id": MISSING}, {"session_id": MISSING},
                      {"review_id": "not-a-uuid"}, {"session_id": "not-a-uuid"}):
            await expect_code(grpc.StatusCode.NOT_FOUND, listed(world, world.stranger, **scope))
        await expect_code(grpc.StatusCode.NOT_FOUND, listed(world, review_id=MISSING))
        for bad in ({"limit": 101}, {"limit": -1}, {"cursor": "not a cursor"},
                    {"cursor": "bm90fGEtdXVpZA"}, {"kind": 9}):
            await expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                              listed(world, session_id=world.session_id, **bad))
        await expect_code(grpc.StatusCode.INVALID_ARGUMENT, listed(world))
        await expect_code(grpc.StatusCode.UNAUTHENTICATED, world.ai.ListJobs(
            ai_pb2.ListJobsRequest(session_id=world.session_id)))
