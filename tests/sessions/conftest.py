"""Fixtures for the sessions service over real gRPC: a stack, a stub and four signed-in users."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from tandem.sessions.v1 import sessions_pb2 as pb
from tandem.sessions.v1 import sessions_pb2_grpc

from services.common.grpcserver import Resources
from services.common.identity import service_metadata
from tests.helpers.grpc import expect_code, reason
from tests.helpers.identity import SignedIn, sign_in_grpc
from tests.helpers.waiting import eventually

# Shared helpers the sessions tests import from here.
__all__ = ["eventually", "expect_code", "reason"]

# Every in-process GitHub stand-in numbers new accounts from the same first id, and
# the auth service keys users by GitHub id: without distinct ranges, "new" users of
# different tests in the run's one database would be the same Tandem user.
# A random base per test process keeps parallel runs sharing one server apart too.


def unique_login(role: str) -> str:
    """A login nobody else in the run uses: lists per user start empty in every test."""
    return f"{role}-{secrets.token_hex(4)}"


@dataclass
class World:
    """A running auth + sessions stack and the people in a test's story."""

    stub: sessions_pb2_grpc.SessionsServiceStub
    channel: grpc.aio.Channel
    auth_channel: grpc.aio.Channel
    res: Resources
    env: dict[str, str]
    owner: SignedIn
    editor: SignedIn
    viewer: SignedIn
    stranger: SignedIn

    @property
    def internal(self) -> list[tuple[str, str]]:
        return service_metadata(self.res.config.service_token)

    async def sign_in(self, role: str) -> SignedIn:
        return await sign_in_grpc(self.auth_channel, unique_login(role))

    async def create(self, title: str = "Pairing", user: SignedIn | None = None,
                     **fields: Any) -> pb.Session:
        reply = await self.stub.CreateSession(pb.CreateSessionRequest(title=title, **fields),
                                              metadata=(user or self.owner).metadata)
        return reply.session

    async def join(self, session_id: str, user: SignedIn, role: pb.Role.ValueType,
                   owner: SignedIn | None = None) -> None:
        """Invite `user` by login and accept: the way a member really joins."""
        invitation = await self.stub.CreateInvitation(
            pb.CreateInvitationRequest(session_id=session_id, github_login=user.login, role=role),
            metadata=(owner or self.owner).metadata)
        await self.stub.AcceptInvitation(
            pb.AcceptInvitationRequest(invitation_id=invitation.invitation.id),
            metadata=user.metadata)

    async def session_with_members(self) -> pb.Session:
        """A session owned by `owner` with `editor` and `viewer` in it."""
        session = await self.create()
        await self.join(session.id, self.editor, pb.ROLE_EDITOR)
        await self.join(session.id, self.viewer, pb.ROLE_VIEWER)
        return session

    async def sql(self, query: str, *params: Any) -> list[dict[str, Any]]:
        """Direct database access for what a test must arrange or inspect (expiry, counts)."""
        async with self.res.pool.connection() as conn:
            cur = await conn.execute(query.encode(), params)
            return await cur.fetchall() if cur.description else []


async def make_world(stack: Callable[..., Any], **env: str) -> AsyncIterator[World]:
    """Auth + sessions on `env` overrides, with an owner, editor, viewer and stranger signed in."""
    async with stack("sessions", **env) as s, \
            grpc.aio.insecure_channel(s.addr("auth")) as auth_channel, \
            grpc.aio.insecure_channel(s.addr("sessions")) as channel:
        users = [await sign_in_grpc(auth_channel, unique_login(role))
                 for role in ("owner", "editor", "viewer", "stranger")]
        yield World(sessions_pb2_grpc.SessionsServiceStub(channel), channel, auth_channel,
                    s.runtimes["sessions"].resources, s.env, *users)


@pytest.fixture
async def world(stack: Callable[..., Any]) -> AsyncIterator[World]:
    async for w in make_world(stack, NOTIFICATIONS_CLAIM_IDLE_SECONDS="0.2"):
        yield w


