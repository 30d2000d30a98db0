"""gRPC assertions shared by the service tests: an RPC that must fail, and its trailers."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc
import pytest
from tandem.sessions.v1 import sessions_pb2 as spb
from tandem.sessions.v1 import sessions_pb2_grpc

from tests.helpers.identity import SignedIn


async def expect_code(code: grpc.StatusCode, call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """Await an RPC that must fail with `code`; return the error for further checks."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, (info.value.code(), info.value.details())
    return info.value


def trailer(error: grpc.aio.AioRpcError, key: str) -> str | None:
    """The trailing metadata value `key` of a failed RPC (None: not sent)."""
    for name, value in error.trailing_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else value.decode()
    return None


def reason(error: grpc.aio.AioRpcError) -> str | None:
    """The machine-readable reason a service attaches to a refusal (`tandem-reason`)."""
    return trailer(error, "tandem-reason")


async def join_by_link(sessions: sessions_pb2_grpc.SessionsServiceStub, session_id: str,
                       owner: SignedIn, user: SignedIn, role: spb.Role.ValueType) -> None:
    """`user` joins the session with `role` through an invitation link `owner` made."""
    invitation = await sessions.CreateInvitation(
        spb.CreateInvitationRequest(session_id=session_id, role=role), metadata=owner.metadata)
    await sessions.AcceptInvitation(
        spb.AcceptInvitationRequest(token=invitation.invitation.token), metadata=user.metadata)
