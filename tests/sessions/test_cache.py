"""Hot reads cached in Redis: hits counted, writes invalidate at once, an outage falls back to PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from tandem.sessions.v1 import sessions_pb2 as pb
from tandem.sessions.v1 import sessions_pb2_grpc

from services.common import metrics
from tests.sessions.conftest import World, expect_code


def _count(cache: str, result: str) -> float:
    return metrics.CACHE_REQUESTS.labels(cache, result)._value.get()


async def _get(world: World, session_id: str, metadata: Any) -> pb.Session:
    return (await world.stub.GetSession(pb.GetSessionRequest(session_id=session_id),
                                        metadata=metadata)).session


async def test_repeated_reads_hit_the_cache(world: World) -> None:
    session = await world.create()
    await _get(world, session.id, world.owner.metadata)
    hits = _count("session", "hit"), _count("member", "hit")
    for _ in range(3):
        await _get(world, session.id, world.owner.metadata)
    assert _count("session", "hit") == hits[0] + 3
    assert _count("member", "hit") == hits[1] + 3


async def test_writes_invalidate_cached_sessions_and_memberships(world: World) -> None:
    session = await world.create("Before")
    await _get(world, session.id, world.owner.metadata)
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.GetSession(
        pb.GetSessionRequest(session_id=session.id), metadata=world.viewer.metadata))
    await world.stub.UpdateSession(pb.UpdateSessionRequest(session_id=session.id, title="After"),
                                   metadata=world.owner.metadata)
    assert (await _get(world, session.id, world.owner.metadata)).title == "After"
    # The "not a member" answer was cached too; joining replaces it at once.
    await world.join(session.id, world.viewer, pb.ROLE_VIEWER)
    assert (await _get(world, session.id, world.viewer.metadata)).role == pb.ROLE_VIEWER
    members = await world.stub.ListMembers(pb.ListMembersRequest(session_id=session.id),
                                           metadata=world.owner.metadata)
    assert len(members.members) == 2
    await world.stub.UpdateMember(pb.UpdateMemberRequest(
        session_id=session.id, user_id=world.viewer.user_id, role=pb.ROLE_EDITOR),
        metadata=world.owner.metadata)
    members = await world.stub.ListMembers(pb.ListMembersRequest(session_id=session.id),
                                           metadata=world.owner.metadata)
    assert {m.role for m in members.members} == {pb.ROLE_OWNER, pb.ROLE_EDITOR}
    await world.stub.EndSession(pb.EndSessionRequest(session_id=session.id),
                                metadata=world.owner.metadata)
    assert (await _get(world, session.id, world.viewer.metadata)).status == pb.SESSION_STATUS_ENDED


@contextlib.asynccontextmanager
async def _instance_without_redis(world: World, service_runtime: Callable[..., Any]
                                  ) -> AsyncIterator[sessions_pb2_grpc.SessionsServiceStub]:
    """A second sessions instance on the same database whose Redis does not answer."""
    async with service_runtime("sessions", **world.env, REDIS_URL="redis://127.0.0.1:1/0") as rt, \
            grpc.aio.insecure_channel(f"127.0.0.1:{rt.grpc_port}") as channel:
        yield sessions_pb2_grpc.SessionsServiceStub(channel)


async def test_a_redis_outage_degrades_reads_and_writes_to_the_database(
        world: World, service_runtime: Callable[..., Any]) -> None:
    session = await world.session_with_members()
    errors = _count("session", "error")
    async with _instance_without_redis(world, service_runtime) as stub:
        got = await stub.GetSession(pb.GetSessionRequest(session_id=session.id),
                                    metadata=world.viewer.metadata)
        assert got.session.role == pb.ROLE_VIEWER
        members = await stub.ListMembers(pb.ListMembersRequest(session_id=session.id),
                                         metadata=world.editor.metadata)
        assert len(members.members) == 3
        await expect_code(grpc.StatusCode.NOT_FOUND, stub.GetSession(
            pb.GetSessionRequest(session_id=session.id), metadata=world.stranger.metadata))
        posted = await stub.PostMessage(pb.PostMessageRequest(session_id=session.id, body="hi"),
                                        metadata=world.viewer.metadata)
        assert posted.message.seq > 0
        await stub.UpdateSession(pb.UpdateSessionRequest(session_id=session.id, title="Degraded"),
                                 metadata=world.owner.metadata)
        listed = await stub.ListSessions(pb.ListSessionsRequest(), metadata=world.owner.metadata)
        assert session.id in [s.id for s in listed.sessions]
        events = await stub.ListEvents(pb.ListEventsRequest(session_id=session.id),
                                       metadata=world.owner.metadata)
        assert [e.type for e in events.events][-2:] == ["chat.message", "session.updated"]
    assert _count("session", "error") > errors
    rows = await world.sql("SELECT title, version FROM sessions WHERE id = %s", session.id)
    assert (rows[0]["title"], rows[0]["version"]) == ("Degraded", 2)
