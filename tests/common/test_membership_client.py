"""The kit's membership client against a real sessions service (what review and ai authorize by)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY
from tandem.sessions.v1 import sessions_pb2, sessions_pb2_grpc

from services.common.errors import Unavailable
from services.common.membership import Membership
from services.common.peers import MembershipClient, Peer
from tests.helpers.identity import sign_in_grpc


def _cache_count(result: str) -> float:
    return REGISTRY.get_sample_value("tandem_cache_requests_total",
                                     {"cache": "membership", "result": result}) or 0.0


@pytest.fixture
async def sessions_peer(stack: Callable[..., AbstractAsyncContextManager[Any]]
                        ) -> AsyncIterator[tuple[Peer, str, str]]:
    """A Peer to a running sessions service, and a session owned by a signed-in user."""
    async with stack("sessions") as running:
        async with grpc.aio.insecure_channel(running.addr("auth")) as auth_channel:
            owner = await sign_in_grpc(auth_channel, "octocat")
        async with grpc.aio.insecure_channel(running.addr("sessions")) as channel:
            peer = Peer("sessions", channel, os.environ["SERVICE_TOKEN"], 5.0)
            stub = sessions_pb2_grpc.SessionsServiceStub(channel)
            created = await peer.call(stub.CreateSession,
                                      sessions_pb2.CreateSessionRequest(title="kit"),
                                      token=owner.access_token)
            yield peer, created.session.id, owner.user_id


async def test_a_member_gets_their_role_and_a_stranger_none(
        sessions_peer: tuple[Peer, str, str]) -> None:
    peer, session_id, owner = sessions_peer
    members = MembershipClient(peer)
    assert await members.membership(session_id, owner) == Membership("owner", True)
    assert await members.membership(session_id, str(uuid.uuid4())) is None
    assert await members.membership(str(uuid.uuid4()), owner) is None  # no such session
    assert await members.membership("not-a-uuid", owner) is None


async def test_with_a_ttl_a_positive_answer_is_served_from_the_cache(
        sessions_peer: tuple[Peer, str, str]) -> None:
    peer, session_id, owner = sessions_peer
    members = MembershipClient(peer, ttl=30)
    hits, misses = _cache_count("hit"), _cache_count("miss")
    stranger = str(uuid.uuid4())
    for _ in range(2):
        assert await members.membership(session_id, owner) == Membership("owner", True)
        assert await members.membership(session_id, stranger) is None
    # The owner: one miss, then a hit; the stranger is asked each time (a new member gets in).
    assert (_cache_count("hit") - hits, _cache_count("miss") - misses) == (1, 3)


async def test_a_sessions_service_that_is_down_is_unavailable() -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:1") as dead:
        members = MembershipClient(Peer("sessions", dead, "token", 2.0))
        with pytest.raises(Unavailable) as info:
            await members.membership(str(uuid.uuid4()), str(uuid.uuid4()))
    assert info.value.reason == "sessions_unavailable"
