"""The stored Yjs document over real gRPC and PostgreSQL: writes, sync, roles, compaction, replicas."""

from __future__ import annotations

import asyncio
import random

import grpc
from pycrdt import Doc, Text
from tandem.sessions.v1 import sessions_pb2 as pb

from services.common.channels import RealtimeChannels
from services.common.config import Env
from services.common.docframes import DOC_UPDATE, DocFrame
from services.common.identity import Caller
from services.sessions.config import SessionsConfig
from services.sessions.server import build_documents, wire
from services.sessions.usecases import DocumentUseCases
from tests.sessions.conftest import World, expect_code, reason


def edit(doc: Doc, index: int, text: str) -> bytes:
    """Insert text into the document's `code` and answer the Yjs update it made."""
    before = doc.get_state()
    doc.get("code", type=Text).insert(index, text)
    return doc.get_update(before)


async def apply(world: World, session_id: str, update: bytes, user: object = None) -> int:
    who = user or world.editor
    reply = await world.stub.ApplyDocumentUpdate(
        pb.ApplyDocumentUpdateRequest(session_id=session_id, update=update),
        metadata=who.metadata)  # type: ignore[attr-defined]
    return reply.version


async def test_stored_updates_make_the_document_and_sync_answers_what_a_client_lacks(
        world: World) -> None:
    session = await world.session_with_members()
    empty = await world.stub.GetDocument(pb.GetDocumentRequest(session_id=session.id),
                                         metadata=world.viewer.metadata)
    assert (empty.text, empty.version) == ("", 0)

    author: Doc = Doc()
    assert await apply(world, session.id, edit(author, 0, "def main():\n")) == 1
    assert await apply(world, session.id, edit(author, 12, "    pass\n"), world.owner) == 2
    doc = await world.stub.GetDocument(pb.GetDocumentRequest(session_id=session.id),
                                       metadata=world.viewer.metadata)
    assert (doc.text, doc.version) == ("def main():\n    pass\n", 2)
    assert doc.HasField("updated_at")

    # A fresh client's state vector gets everything; an up-to-date one gets nothing new.
    fresh: Doc = Doc()
    reply = await world.stub.SyncDocument(
        pb.SyncDocumentRequest(session_id=session.id, state_vector=fresh.get_state()),
        metadata=world.viewer.metadata)
    fresh.apply_update(reply.update)
    assert str(fresh.get("code", type=Text)) == "def main():\n    pass\n"
    assert reply.state_vector == author.get_state()
    assert reply.version == 2
    again = await world.stub.SyncDocument(
        pb.SyncDocumentRequest(session_id=session.id, state_vector=fresh.get_state()),
        metadata=world.viewer.metadata)
    probe: Doc = Doc()
    probe.apply_update(again.update)
    assert str(probe.get("code", type=Text)) == ""
    # An empty request asks only for the server's state vector (the gateway's sync step 1).
    head = await world.stub.SyncDocument(pb.SyncDocumentRequest(session_id=session.id),
                                         metadata=world.viewer.metadata)
    assert (head.update, head.state_vector) == (b"", author.get_state())


async def test_empty_updates_are_not_stored(world: World) -> None:
    session = await world.create()
    assert await apply(world, session.id, b"\x00\x00", world.owner) == 0
    assert await world.sql("SELECT * FROM document_updates WHERE session_id = %s", session.id) == []


async def test_viewers_strangers_garbage_and_ended_sessions_are_refused(world: World) -> None:
    session = await world.session_with_members()
    update = edit(Doc(), 0, "x")
    error = await expect_code(grpc.StatusCode.PERMISSION_DENIED,
                              apply(world, session.id, update, world.viewer))
    assert "viewer" in (error.details() or "")
    await expect_code(grpc.StatusCode.NOT_FOUND, apply(world, session.id, update, world.stranger))
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.GetDocument(
        pb.GetDocumentRequest(session_id=session.id), metadata=world.stranger.metadata))
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, apply(world, session.id, b"garbage!"))
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.SyncDocument(
        pb.SyncDocumentRequest(session_id=session.id, state_vector=b"\xff\xff"),
        metadata=world.editor.metadata))
    await expect_code(grpc.StatusCode.NOT_FOUND, apply(world, "not-a-uuid", update))
    assert await world.sql("SELECT * FROM document_updates WHERE session_id = %s", session.id) == []

    assert await apply(world, session.id, update) == 1
    await world.stub.EndSession(pb.EndSessionRequest(session_id=session.id),
                                metadata=world.owner.metadata)
    error = await expect_code(grpc.StatusCode.FAILED_PRECONDITION,
                              apply(world, session.id, edit(Doc(), 0, "y"), world.owner))
    assert reason(error) == "session_ended"
    # Read-only, not gone: everyone can still read it.
    doc = await world.stub.GetDocument(pb.GetDocumentRequest(session_id=session.id),
                                       metadata=world.viewer.metadata)
    assert doc.text == "x"


async def test_internal_callers_read_without_a_user(world: World) -> None:
    session = await world.create()
    await apply(world, session.id, edit(Doc(), 0, "shared"), world.owner)
    doc = await world.stub.GetDocument(pb.GetDocumentRequest(session_id=session.id),
                                       metadata=world.internal)
    assert doc.text == "shared"
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.GetDocument(
        pb.GetDocumentRequest(session_id="00000000-0000-0000-0000-000000000000"),
        metadata=world.internal))


def _service(world: World, **kwargs: int) -> DocumentUseCases:
    memberships = wire(world.res, SessionsConfig.from_env(Env({}))).memberships
    return build_documents(world.res, memberships, **kwargs)


async def test_compaction_folds_the_log_into_a_snapshot_and_keeps_every_edit(world: World) -> None:
    session = await world.create()
    caller = Caller(world.owner.user_id, internal=False, token=world.owner.access_token)
    service = _service(world, compact_after=10)
    author: Doc = Doc()
    for i in range(25):
        await service.apply_update(caller, session.id,
                                   edit(author, i, "abcdefghijklmnopqrstuvwxy"[i]))
    (head,) = await world.sql("SELECT upto, version FROM documents WHERE session_id = %s", session.id)
    tail = await world.sql("SELECT id FROM document_updates WHERE session_id = %s", session.id)
    assert head["version"] == 25
    assert head["upto"] > 0
    assert len(tail) == 5, "two compactions of 10 left five updates in the log"
    assert all(row["id"] > head["upto"] for row in tail)
    # A replica that never saw this document loads snapshot + tail.
    cold = _service(world)
    doc = await cold.get_document(caller, session.id)
    assert (doc.text, doc.version) == ("abcdefghijklmnopqrstuvwxy", 25)


async def test_two_replicas_writing_one_document_stay_consistent(world: World) -> None:
    session = await world.create()
    caller = Caller(world.owner.user_id, internal=False, token=world.owner.access_token)
    replicas = [_service(world, compact_after=7), _service(world, compact_after=7)]
    writers = [Doc(client_id=1000 + i) for i in range(4)]
    rng = random.Random(5)

    async def write(n: int) -> None:
        for _ in range(15):
            writer = writers[n]
            update = edit(writer, 0, f"{n}")
            await rng.choice(replicas).apply_update(caller, session.id, update)

    await asyncio.gather(*(write(n) for n in range(4)))
    merged: Doc = Doc()
    for writer in writers:
        merged.apply_update(writer.get_update())
    expected = str(merged.get("code", type=Text))
    for replica in replicas:
        doc = await replica.get_document(caller, session.id)
        assert (doc.text, doc.version) == (expected, 60)
    versions = await world.sql("SELECT count(*) AS n FROM document_updates WHERE session_id = %s",
                               session.id)
    assert versions[0]["n"] < 7


async def test_a_stored_update_is_published_to_gateways_after_the_commit(world: World) -> None:
    session = await world.create()
    pubsub = world.res.redis.pubsub()
    await pubsub.subscribe(RealtimeChannels(world.res.config.redis_prefix).doc(session.id))
    try:
        assert (await pubsub.get_message(timeout=2))["type"] == "subscribe"  # type: ignore[index]
        update = edit(Doc(), 0, "live")
        await apply(world, session.id, update, world.owner)
        message = None
        for _ in range(50):
            message = await pubsub.get_message(timeout=0.1)
            if message is not None:
                break
        assert message is not None
        assert DocFrame.decode(message["data"]) == DocFrame(DOC_UPDATE, bytes(16), update, version=1)
    finally:
        await pubsub.aclose()


async def test_a_document_with_many_stored_updates_syncs_whole_and_compacts_on_that_read(
        world: World) -> None:
    session = await world.create()
    author: Doc = Doc()
    updates = [edit(author, i, "x") for i in range(5000)]
    # Stored as the service stores them (the log and the document's version), in one
    # statement each: 5000 RPCs would be a slow test.
    await world.sql("INSERT INTO documents (session_id, version) VALUES (%s, %s)",
                    session.id, len(updates))
    await world.sql("INSERT INTO document_updates (session_id, update) "
                    "SELECT %s, u FROM unnest(%s::bytea[]) WITH ORDINALITY AS t(u, n) ORDER BY n",
                    session.id, updates)
    fresh: Doc = Doc()
    reply = await world.stub.SyncDocument(
        pb.SyncDocumentRequest(session_id=session.id, state_vector=fresh.get_state()),
        metadata=world.owner.metadata)
    fresh.apply_update(reply.update)
    assert str(fresh.get("code", type=Text)) == "x" * 5000
    assert reply.version == 5000
    # That read found a tail far over the threshold and folded it into a snapshot, so the
    # next cold load does not replay 5000 updates again.
    assert await world.sql("SELECT id FROM document_updates WHERE session_id = %s",
                           session.id) == []
    assert await apply(world, session.id, edit(author, 0, "y"), world.owner) == 5001
    assert len(await world.sql("SELECT id FROM document_updates WHERE session_id = %s",
                               session.id)) == 1
    doc = await world.stub.GetDocument(pb.GetDocumentRequest(session_id=session.id),
                                       metadata=world.owner.metadata)
    assert doc.text == "y" + "x" * 5000
