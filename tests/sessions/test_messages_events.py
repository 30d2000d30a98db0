"""Chat and the per-session event log: sequence numbers, cleaning, history, replay, live publishing."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import orjson
from redis.asyncio import Redis
from tandem.sessions.v1 import sessions_pb2 as pb

from tests.sessions.conftest import World, expect_code


def _events(reply: pb.ListEventsResponse) -> list[tuple[int, str, dict[str, Any]]]:
    return [(e.seq, e.type, orjson.loads(e.payload_json)) for e in reply.events]


async def test_fifty_concurrent_posts_get_fifty_consecutive_sequence_numbers(world: World) -> None:
    session = await world.session_with_members()
    before = (await world.stub.GetSession(pb.GetSessionRequest(
        session_id=session.id, include_last_seq=True), metadata=world.owner.metadata)).session.last_seq
    users = (world.owner, world.editor, world.viewer)
    replies = await asyncio.gather(*(
        world.stub.PostMessage(pb.PostMessageRequest(session_id=session.id, body=f"m{i}"),
                               metadata=users[i % 3].metadata) for i in range(50)))
    seqs = sorted(r.message.seq for r in replies)
    assert seqs == list(range(before + 1, before + 51))
    history = await world.stub.ListMessages(pb.ListMessagesRequest(
        session_id=session.id, after_seq=before, limit=100), metadata=world.viewer.metadata)
    assert [m.seq for m in history.messages] == seqs
    assert {m.body for m in history.messages} == {f"m{i}" for i in range(50)}


async def test_bodies_are_stripped_of_control_characters_and_limited(world: World) -> None:
    session = await world.create()

    async def post(body: str) -> pb.Message:
        reply = await world.stub.PostMessage(pb.PostMessageRequest(session_id=session.id, body=body),
                                             metadata=world.owner.metadata)
        return reply.message

    cleaned = await post("a\x00b\x07c\r\n\td\x1b[31m\u202ered\x7f\u200d")
    assert cleaned.body == "abc\n\td[31mred\u200d"
    assert (await post("x" * 4000)).body == "x" * 4000
    # Control characters do not count towards the limit: they are gone before it applies.
    assert (await post("y" * 4000 + "\x00" * 10)).body == "y" * 4000
    for body in ("", "   \n\t ", "\x00\x01\x02", "z" * 4001):
        error = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.PostMessage(
            pb.PostMessageRequest(session_id=session.id, body=body), metadata=world.owner.metadata))
        assert "body" in error.details()
    history = await world.stub.ListMessages(pb.ListMessagesRequest(session_id=session.id),
                                            metadata=world.owner.metadata)
    assert len(history.messages) == 3


async def test_a_repeated_client_id_returns_the_stored_message(world: World) -> None:
    session = await world.create()
    first = await world.stub.PostMessage(pb.PostMessageRequest(
        session_id=session.id, body="hello", client_id="c-1"), metadata=world.owner.metadata)
    assert first.message.client_id == "c-1"
    again = await asyncio.gather(*(world.stub.PostMessage(pb.PostMessageRequest(
        session_id=session.id, body="hello", client_id="c-1"), metadata=world.owner.metadata)
        for _ in range(5)))
    assert {r.message.id for r in again} == {first.message.id}
    assert {r.message.seq for r in again} == {first.message.seq}
    events = await world.stub.ListEvents(pb.ListEventsRequest(session_id=session.id),
                                         metadata=world.owner.metadata)
    assert len(events.events) == 1
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.PostMessage(
        pb.PostMessageRequest(session_id=session.id, body="x", client_id="has space"),
        metadata=world.owner.metadata))


async def test_history_pages_ascending_after_a_sequence_number(world: World) -> None:
    session = await world.create()
    for i in range(5):
        await world.stub.PostMessage(pb.PostMessageRequest(session_id=session.id, body=f"m{i}"),
                                     metadata=world.owner.metadata)
    page = await world.stub.ListMessages(pb.ListMessagesRequest(session_id=session.id, limit=2),
                                         metadata=world.owner.metadata)
    assert [m.body for m in page.messages] == ["m0", "m1"]
    assert page.next_after_seq == page.messages[-1].seq
    page = await world.stub.ListMessages(pb.ListMessagesRequest(
        session_id=session.id, after_seq=page.next_after_seq, limit=2), metadata=world.owner.metadata)
    assert [m.body for m in page.messages] == ["m2", "m3"]
    last = await world.stub.ListMessages(pb.ListMessagesRequest(
        session_id=session.id, after_seq=page.next_after_seq, limit=2), metadata=world.owner.metadata)
    assert [m.body for m in last.messages] == ["m4"]
    assert last.next_after_seq == 0
    assert last.messages[0].author_id == world.owner.user_id
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.ListMessages(
        pb.ListMessagesRequest(session_id=session.id, after_seq=-1), metadata=world.owner.metadata))


async def test_the_event_log_records_every_change_in_one_sequence(world: World) -> None:
    session = await world.create()
    await world.join(session.id, world.editor, pb.ROLE_EDITOR)
    message = (await world.stub.PostMessage(pb.PostMessageRequest(
        session_id=session.id, body="hi", client_id="k1"), metadata=world.editor.metadata)).message
    await world.stub.UpdateMember(pb.UpdateMemberRequest(
        session_id=session.id, user_id=world.editor.user_id, role=pb.ROLE_VIEWER),
        metadata=world.owner.metadata)
    await world.stub.UpdateSession(pb.UpdateSessionRequest(session_id=session.id, title="T2"),
                                   metadata=world.owner.metadata)
    await world.stub.RemoveMember(pb.RemoveMemberRequest(session_id=session.id,
                                                         user_id=world.editor.user_id),
                                  metadata=world.owner.metadata)
    await world.stub.EndSession(pb.EndSessionRequest(session_id=session.id),
                                metadata=world.owner.metadata)
    reply = await world.stub.ListEvents(pb.ListEventsRequest(session_id=session.id),
                                        metadata=world.owner.metadata)
    events = _events(reply)
    assert [(seq, kind) for seq, kind, _ in events] == [
        (1, "member.joined"), (2, "chat.message"), (3, "member.role_changed"),
        (4, "session.updated"), (5, "member.removed"), (6, "session.ended")]
    payloads = [p for _, _, p in events]
    assert payloads[0] == {"user_id": world.editor.user_id, "role": "editor"}
    assert payloads[1] == {"id": message.id, "author": {"id": world.editor.user_id,
                                                        "github_login": world.editor.login},
                           "body": "hi", "created_at": payloads[1]["created_at"], "client_id": "k1"}
    assert payloads[1]["created_at"].endswith("Z")
    assert payloads[2] == {"user_id": world.editor.user_id, "role": "viewer"}
    updated = payloads[3]["session"]
    assert updated["title"] == "T2"
    assert updated["version"] == 2
    assert set(updated) == {"id", "title", "description", "language", "status", "owner_id",
                            "version", "created_at", "updated_at"}
    assert payloads[4] == {"user_id": world.editor.user_id}
    assert payloads[5]["session"]["status"] == "ended"
    assert not reply.has_more
    replay = await world.stub.ListEvents(pb.ListEventsRequest(session_id=session.id, after_seq=3,
                                                              limit=2),
                                         metadata=world.owner.metadata)
    assert [e.seq for e in replay.events] == [4, 5]
    assert replay.has_more


async def test_other_services_append_review_and_ai_events(world: World) -> None:
    session = await world.create()
    appended = await world.stub.AppendEvent(pb.AppendEventRequest(
        session_id=session.id, type="review.created", payload_json='{"review_id": "r1"}'),
        metadata=world.internal)
    assert appended.event.seq == 1
    live_only = await world.stub.AppendEvent(pb.AppendEventRequest(
        session_id=session.id, type="ai.finding", payload_json='{"line": 3}', ephemeral=True),
        metadata=world.internal)
    assert live_only.event.seq == 0
    await world.stub.AppendEvent(pb.AppendEventRequest(
        session_id=session.id, type="ai.done", payload_json="{}"), metadata=world.internal)
    events = _events(await world.stub.ListEvents(pb.ListEventsRequest(session_id=session.id),
                                                 metadata=world.owner.metadata))
    assert events == [(1, "review.created", {"review_id": "r1"}), (2, "ai.done", {})]
    refused = [("chat.message", "{}"), ("session.ended", "{}"), ("review", "{}"),
               ("review.created", "[1]"), ("review.created", "{not json"),
               ("review.created", '{"seq": 9}'), ("review.created", '{"x": "' + "a" * 40000 + '"}')]
    for kind, payload in refused:
        await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.AppendEvent(
            pb.AppendEventRequest(session_id=session.id, type=kind, payload_json=payload),
            metadata=world.internal))
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.AppendEvent(pb.AppendEventRequest(
        session_id="0f8fad5b-d9cb-469f-a165-70867728950e", type="ai.done", payload_json="{}"),
        metadata=world.internal))


async def test_committed_events_are_published_as_envelopes_on_the_session_channel(
        world: World) -> None:
    session = await world.create()
    channel = world.res.keys.key("rt", "session", session.id)
    client = Redis.from_url(world.res.config.redis_url)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(channel)
        await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
        posted = (await world.stub.PostMessage(pb.PostMessageRequest(
            session_id=session.id, body="live", client_id="c9"), metadata=world.owner.metadata)).message
        await world.stub.AppendEvent(pb.AppendEventRequest(
            session_id=session.id, type="ai.finding", payload_json='{"line": 1}', ephemeral=True),
            metadata=world.internal)
        received: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len(received) < 2 and loop.time() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None:
                received.append(orjson.loads(message["data"]))
    finally:
        await pubsub.aclose()
        await client.aclose()
    chat, finding = received
    assert chat == {"type": "chat.message", "seq": posted.seq, "session_id": session.id,
                    "at": chat["at"], "id": posted.id,
                    "author": {"id": world.owner.user_id, "github_login": world.owner.login},
                    "body": "live", "created_at": chat["at"], "client_id": "c9"}
    assert finding["type"] == "ai.finding"
    assert "seq" not in finding
    assert finding["line"] == 1
    assert finding["session_id"] == session.id
