"""The in-process stack signs a user in through the stand-in and the auth service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc

from tests.helpers.identity import sign_in_grpc


async def test_sign_in_through_auth_service(stack: Callable[..., Any]) -> None:
    async with stack() as s, grpc.aio.insecure_channel(s.addr("auth")) as channel:
        me = await sign_in_grpc(channel, "octocat")
        assert me.login == "octocat"
        reply = await auth_pb2_grpc.AuthServiceStub(channel).GetUser(
            auth_pb2.GetUserRequest(user_id=me.user_id), metadata=me.metadata)
        assert reply.user.github_login == "octocat"
