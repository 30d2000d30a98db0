"""Session lifecycle over gRPC: create, get, list with keyset pagination, update, end, delete."""

from __future__ import annotations

import asyncio

import grpc
import orjson
from google.protobuf.timestamp_pb2 import Timestamp
from tandem.sessions.v1 import sessions_pb2 as pb

from services.common.domainevents import SESSION_DELETED, domain_events_stream
from tests.sessions.conftest import World, expect_code, reason


async def test_create_answers_the_session_with_the_owner_role(world: World) -> None:
    session = await world.create("  Pairing   on the parser ", description="Fix the lexer",
                                 language="Python")
    assert session.title == "Pairing on the parser"
    assert session.description == "Fix the lexer"
    assert session.language == "python"
    assert session.status == pb.SESSION_STATUS_ACTIVE
    assert session.owner_id == world.owner.user_id
    assert session.role == pb.ROLE_OWNER
    assert session.version == 1
    assert session.created_at.seconds > 0
    assert session.updated_at == session.created_at


async def test_language_defaults_to_plaintext(world: World) -> None:
    assert (await world.create()).language == "plaintext"


async def test_create_validates_each_field(world: World) -> None:
    cases = {
        "title": {"title": "   "},
        "description": {"title": "ok", "description": "x" * 2001},
        "language": {"title": "ok", "language": "not a language!"},
    }
    for field, fields in cases.items():
        error = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.CreateSession(
            pb.CreateSessionRequest(**fields), metadata=world.owner.metadata))
        assert field in error.details()
    long_title = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.CreateSession(
        pb.CreateSessionRequest(title="t" * 201), metadata=world.owner.metadata))
    assert "200" in long_title.details()
    await world.create("t" * 200)


async def test_calls_without_a_token_are_unauthenticated(world: World) -> None:
    await expect_code(grpc.StatusCode.UNAUTHENTICATED,
                      world.stub.CreateSession(pb.CreateSessionRequest(title="x")))
    await expect_code(grpc.StatusCode.UNAUTHENTICATED, world.stub.ListSessions(
        pb.ListSessionsRequest(), metadata=(("authorization", "Bearer nonsense"),)))


async def test_get_answers_each_member_with_their_own_role(world: World) -> None:
    session = await world.session_with_members()
    for user, role in ((world.owner, pb.ROLE_OWNER), (world.editor, pb.ROLE_EDITOR),
                       (world.viewer, pb.ROLE_VIEWER)):
        reply = await world.stub.GetSession(pb.GetSessionRequest(session_id=session.id),
                                            metadata=user.metadata)
        assert reply.session.role == role
        assert reply.session.title == session.title


async def test_get_of_an_unknown_or_malformed_id_is_not_found(world: World) -> None:
    for session_id in ("0f8fad5b-d9cb-469f-a165-70867728950e", "not-a-uuid", ""):
        await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.GetSession(
            pb.GetSessionRequest(session_id=session_id), metadata=world.owner.metadata))


async def test_get_can_include_the_last_sequence_number(world: World) -> None:
    session = await world.create()
    for body in ("one", "two"):
        await world.stub.PostMessage(pb.PostMessageRequest(session_id=session.id, body=body),
                                     metadata=world.owner.metadata)
    reply = await world.stub.GetSession(
        pb.GetSessionRequest(session_id=session.id, include_last_seq=True),
        metadata=world.owner.metadata)
    assert reply.session.last_seq == 2


async def test_list_pages_newest_first_with_an_opaque_cursor(world: World) -> None:
    user = await world.sign_in("lister")
    created = [await world.create(f"s{i}", user=user) for i in range(7)]
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        reply = await world.stub.ListSessions(pb.ListSessionsRequest(limit=3, cursor=cursor),
                                              metadata=user.metadata)
        pages += 1
        seen += [s.id for s in reply.sessions]
        assert all(s.role == pb.ROLE_OWNER for s in reply.sessions)
        if not reply.next_cursor:
            break
        cursor = reply.next_cursor
    assert pages == 3
    assert seen == [s.id for s in reversed(created)]


async def test_list_has_no_cursor_when_the_page_is_exactly_full(world: World) -> None:
    user = await world.sign_in("exact")
    for i in range(2):
        await world.create(f"s{i}", user=user)
    reply = await world.stub.ListSessions(pb.ListSessionsRequest(limit=2), metadata=user.metadata)
    assert len(reply.sessions) == 2
    assert reply.next_cursor == ""


async def test_list_shows_only_sessions_the_caller_is_a_member_of(world: World) -> None:
    session = await world.session_with_members()
    mine = await world.stub.ListSessions(pb.ListSessionsRequest(), metadata=world.viewer.metadata)
    assert [s.id for s in mine.sessions] == [session.id]
    assert mine.sessions[0].role == pb.ROLE_VIEWER
    theirs = await world.stub.ListSessions(pb.ListSessionsRequest(),
                                           metadata=world.stranger.metadata)
    assert list(theirs.sessions) == []


async def test_list_refuses_bad_limits_and_cursors(world: World) -> None:
    for request in (pb.ListSessionsRequest(limit=101), pb.ListSessionsRequest(limit=-1),
                    pb.ListSessionsRequest(cursor="garbage!"),
                    pb.ListSessionsRequest(cursor="WyJub3QgYSBkYXRlIiwxXQ")):
        error = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.ListSessions(
            request, metadata=world.owner.metadata))
        assert "limit" in error.details() or "cursor" in error.details()
    reply = await world.stub.ListSessions(pb.ListSessionsRequest(limit=100),
                                          metadata=world.owner.metadata)
    assert reply.next_cursor == ""


async def test_update_bumps_the_version_and_checks_the_expected_one(world: World) -> None:
    session = await world.create()
    reply = await world.stub.UpdateSession(
        pb.UpdateSessionRequest(session_id=session.id, title="Renamed", expected_version=1),
        metadata=world.owner.metadata)
    assert reply.session.title == "Renamed"
    assert reply.session.version == 2
    assert reply.session.description == ""
    assert Timestamp.ToDatetime(reply.session.updated_at) >= Timestamp.ToDatetime(session.updated_at)
    stale = await expect_code(grpc.StatusCode.ABORTED, world.stub.UpdateSession(
        pb.UpdateSessionRequest(session_id=session.id, description="late", expected_version=1),
        metadata=world.owner.metadata))
    assert reason(stale) == "stale_version"
    fetched = await world.stub.GetSession(pb.GetSessionRequest(session_id=session.id),
                                          metadata=world.owner.metadata)
    assert fetched.session.version == 2
    assert fetched.session.description == ""


async def test_concurrent_updates_with_the_same_version_let_exactly_one_win(world: World) -> None:
    session = await world.create()

    async def update(title: str) -> str:
        try:
            await world.stub.UpdateSession(
                pb.UpdateSessionRequest(session_id=session.id, title=title, expected_version=1),
                metadata=world.owner.metadata)
        except grpc.aio.AioRpcError as exc:
            return reason(exc) or exc.code().name
        return "ok"

    outcomes = await asyncio.gather(*(update(f"t{i}") for i in range(8)))
    assert sorted(outcomes) == ["ok"] + ["stale_version"] * 7


async def test_update_with_nothing_to_change_is_invalid(world: World) -> None:
    session = await world.create()
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.UpdateSession(
        pb.UpdateSessionRequest(session_id=session.id), metadata=world.owner.metadata))


async def test_update_to_the_same_values_keeps_the_version(world: World) -> None:
    session = await world.create("Same")
    reply = await world.stub.UpdateSession(pb.UpdateSessionRequest(session_id=session.id,
                                                                   title="Same"),
                                           metadata=world.owner.metadata)
    assert reply.session.version == 1


async def test_end_makes_the_session_read_only_but_keeps_chat_readable(world: World) -> None:
    session = await world.session_with_members()
    await world.stub.PostMessage(pb.PostMessageRequest(session_id=session.id, body="before"),
                                 metadata=world.editor.metadata)
    ended = await world.stub.EndSession(pb.EndSessionRequest(session_id=session.id),
                                        metadata=world.owner.metadata)
    assert ended.session.status == pb.SESSION_STATUS_ENDED
    assert ended.session.version == 2
    again = await world.stub.EndSession(pb.EndSessionRequest(session_id=session.id),
                                        metadata=world.owner.metadata)
    assert again.session.version == 2
    refused = [
        world.stub.UpdateSession(pb.UpdateSessionRequest(session_id=session.id, title="x"),
                                 metadata=world.owner.metadata),
        world.stub.CreateInvitation(pb.CreateInvitationRequest(
            session_id=session.id, role=pb.ROLE_VIEWER), metadata=world.owner.metadata),
        world.stub.PostMessage(pb.PostMessageRequest(session_id=session.id, body="after"),
                               metadata=world.editor.metadata),
        world.stub.UpdateMember(pb.UpdateMemberRequest(
            session_id=session.id, user_id=world.editor.user_id, role=pb.ROLE_VIEWER),
            metadata=world.owner.metadata),
    ]
    for call in refused:
        await expect_code(grpc.StatusCode.ABORTED, call)
    history = await world.stub.ListMessages(pb.ListMessagesRequest(session_id=session.id),
                                            metadata=world.viewer.metadata)
    assert [m.body for m in history.messages] == ["before"]
    membership = await world.stub.GetMembership(pb.GetMembershipRequest(session_id=session.id),
                                                metadata=world.viewer.metadata)
    assert membership.status == pb.SESSION_STATUS_ENDED


async def test_delete_removes_everything_of_the_session(world: World) -> None:
    session = await world.session_with_members()
    await world.stub.PostMessage(pb.PostMessageRequest(session_id=session.id, body="hi"),
                                 metadata=world.editor.metadata)
    await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, role=pb.ROLE_VIEWER), metadata=world.owner.metadata)
    await world.stub.DeleteSession(pb.DeleteSessionRequest(session_id=session.id),
                                   metadata=world.owner.metadata)
    for user in (world.owner, world.editor):
        await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.GetSession(
            pb.GetSessionRequest(session_id=session.id), metadata=user.metadata))
    for table in ("sessions", "members", "messages", "events", "invitations", "notifications"):
        column = "id" if table == "sessions" else "session_id"
        query = f"SELECT count(*) AS n FROM {table} WHERE {column} = %s"  # noqa: S608 - names from the tuple above
        rows = await world.sql(query, session.id)
        assert rows[0]["n"] == 0, table
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.DeleteSession(
        pb.DeleteSessionRequest(session_id=session.id), metadata=world.owner.metadata))


async def test_delete_tells_the_services_holding_session_data_through_the_domain_events(
        world: World) -> None:
    session = await world.create()
    await world.stub.DeleteSession(pb.DeleteSessionRequest(session_id=session.id),
                                   metadata=world.owner.metadata)
    # Review and ai find the stream under the global prefix; it is the sessions service's.
    key = domain_events_stream(world.res.config.redis_prefix)
    entries = await world.res.redis.xrange(key, "-", "+")
    deleted = [orjson.loads(fields[b"data"]) for _, fields in entries
               if fields[b"type"] == SESSION_DELETED.encode()]
    assert {"session_id": session.id, "deleted_by": world.owner.user_id} in deleted
    # Published, so nothing is left for the relay: the outbox row went after the XADD.
    rows = await world.sql("SELECT count(*) AS n FROM outbox WHERE data->>'session_id' = %s",
                           session.id)
    assert rows[0]["n"] == 0
