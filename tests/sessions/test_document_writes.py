"""ApplyDocumentUpdate's failure paths on the real stack: a refused update leaves nothing stored
and nothing published, and a write whose database connection dies mid-transaction leaves
nothing half-written while every acknowledged update stays."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import psycopg
import pytest
from pycrdt import Doc, Text
from tandem.sessions.v1 import sessions_pb2 as pb

from services.common.channels import RealtimeChannels
from services.common.config import Env
from services.common.docframes import DocFrame
from services.common.identity import Caller
from services.sessions.config import SessionsConfig
from services.sessions.server import build_documents, wire
from tests.sessions.conftest import World, eventually, expect_code, make_world, reason

LIMIT = 8 * 1024


def edit(doc: Doc[Any], index: int, value: str) -> bytes:
    before = doc.get_state()
    doc.get("code", type=Text).insert(index, value)
    return doc.get_update(before)


async def apply(world: World, session_id: str, update: bytes, who: Any) -> int:
    reply = await world.stub.ApplyDocumentUpdate(
        pb.ApplyDocumentUpdateRequest(session_id=session_id, update=update), metadata=who.metadata)
    return reply.version


async def head(world: World, session_id: str) -> list[dict[str, Any]]:
    return await world.sql("SELECT d.version, d.upto, (SELECT count(*) FROM document_updates u "
                           "WHERE u.session_id = d.session_id) AS logged FROM documents d "
                           "WHERE d.session_id = %s", session_id)


@pytest.fixture
async def small(stack: Any) -> Any:
    async for world in make_world(stack, DOCUMENT_MAX_BYTES=str(LIMIT)):
        yield world


async def test_refused_updates_store_nothing_and_publish_nothing(small: World) -> None:
    world = small
    session = await world.session_with_members()
    author: Doc[Any] = Doc()
    assert await apply(world, session.id, edit(author, 0, "kept"), world.editor) == 1
    before = await head(world, session.id)
    pubsub = world.res.redis.pubsub()
    await pubsub.subscribe(RealtimeChannels(world.res.config.redis_prefix).doc(session.id))
    try:
        assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"  # type: ignore[index]
        update = edit(Doc(), 0, "refused")
        error = await expect_code(grpc.StatusCode.PERMISSION_DENIED,
                                  apply(world, session.id, update, world.viewer))
        assert "viewer" in (error.details() or "")
        await expect_code(grpc.StatusCode.NOT_FOUND,
                          apply(world, session.id, update, world.stranger))
        await expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                          apply(world, session.id, b"\x01\x02garbage", world.editor))
        # Truncated: a real update cut short is not an update either.
        await expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                          apply(world, session.id, update[:-3], world.editor))
        too_big = edit(Doc(), 0, "z" * (LIMIT + 1))
        error = await expect_code(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  apply(world, session.id, too_big, world.editor))
        assert reason(error) == "document_too_large"
        assert await head(world, session.id) == before, "a refusal bumps no version"

        # The first frame after the refusals is the next accepted update's: none went out.
        assert await apply(world, session.id, edit(author, 4, "!"), world.editor) == 2

        async def next_frame() -> DocFrame | None:
            message = await pubsub.get_message(timeout=0.2)
            return None if message is None else DocFrame.decode(message["data"])

        frame = await eventually(next_frame)
        assert frame.version == 2

        await world.stub.EndSession(pb.EndSessionRequest(session_id=session.id),
                                    metadata=world.owner.metadata)
        error = await expect_code(grpc.StatusCode.FAILED_PRECONDITION,
                                  apply(world, session.id, update, world.owner))
        assert reason(error) == "session_ended"
    finally:
        await pubsub.aclose()
    doc = await world.stub.GetDocument(pb.GetDocumentRequest(session_id=session.id),
                                       metadata=world.viewer.metadata)
    assert (doc.text, doc.version) == ("kept!", 2)


async def _blocked_writer_pid(world: World) -> int | None:
    rows = await world.sql(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM document_updates%%'")
    return int(rows[0]["pid"]) if rows else None


async def test_a_write_cut_off_mid_transaction_leaves_nothing_half_written(world: World) -> None:
    """The writer has bumped the version, logged the update and rewritten the snapshot
    (compaction is due) when its connection dies: all of it rolls back, the caller gets an
    error, and the document is exactly what was acknowledged; the same update then goes in."""
    session = await world.create()
    caller = Caller(world.owner.user_id, internal=False, token=world.owner.access_token)
    memberships = wire(world.res, SessionsConfig.from_env(Env({}))).memberships
    documents = build_documents(world.res, memberships, compact_after=3)
    author: Doc[Any] = Doc()
    for i, word in enumerate(("a", "b")):
        assert await documents.apply_update(caller, session.id, edit(author, i, word)) == i + 1
    before = await head(world, session.id)
    assert before == [{"version": 2, "upto": 0, "logged": 2}]

    # Another transaction holds the logged updates' row locks: the writer's compaction
    # (DELETE of the folded rows, its last statement) waits there, everything else done.
    third = edit(author, 2, "c")
    async with world.res.pool.connection() as blocker, blocker.transaction():
        await blocker.execute(b"SELECT id FROM document_updates WHERE session_id = %s FOR UPDATE",
                              (session.id,))
        write = asyncio.create_task(documents.apply_update(caller, session.id, third))
        pid = await eventually(lambda: _blocked_writer_pid(world))
        await world.sql("SELECT pg_terminate_backend(%s)", pid)
        with pytest.raises(psycopg.OperationalError):
            await write

    assert await head(world, session.id) == before, "nothing of the cut-off write remains"
    # Neither this replica (its loaded copy held the update) nor a fresh one shows it.
    for replica in (documents, build_documents(world.res, memberships)):
        view = await replica.get_document(caller, session.id)
        assert (view.text, view.version) == ("ab", 2)
    # The client was told it failed and sends it again: now it is stored, once.
    assert await documents.apply_update(caller, session.id, third) == 3
    view = await build_documents(world.res, memberships).get_document(caller, session.id)
    assert (view.text, view.version) == ("abc", 3)
    (after,) = await head(world, session.id)
    assert (after["version"], after["logged"]) == (3, 0), "compacted this time"
    assert after["upto"] > 0
