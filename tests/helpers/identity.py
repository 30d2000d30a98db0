"""Signing users in for tests through the real OAuth flow (GitHub stand-in + auth service)."""

from __future__ import annotations

import os

import grpc
import httpx
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc

from scripts.devlogin import SignedIn, code_in, sign_in_http, with_login
from services.common.identity import service_metadata

__all__ = ["SignedIn", "code_from_async", "gateway_metadata", "sign_in_grpc", "sign_in_http"]


def gateway_metadata() -> list[tuple[str, str]]:
    """What the gateway sends on an RPC that has no user yet (sign-in, refresh, the JWKS):
    the service credential alone, from SERVICE_TOKEN (tests/conftest.py's base_env sets it)."""
    return service_metadata(os.environ["SERVICE_TOKEN"])


async def code_from_async(authorize_url: str, login: str) -> str:
    """Let the stand-in sign `login` in and return the code it redirects back with.

    Async: the stand-in may run in this very event loop, where a blocking client would deadlock.
    """
    async with httpx.AsyncClient(timeout=10) as client:
        return code_in(await client.get(with_login(authorize_url, login)))


async def sign_in_grpc(channel: grpc.aio.Channel, login: str) -> SignedIn:
    """The OAuth flow against the auth service directly (for in-process integration tests)."""
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    start = await stub.StartLogin(auth_pb2.StartLoginRequest(), metadata=gateway_metadata())
    code = await code_from_async(start.authorize_url, login)
    done = await stub.CompleteLogin(auth_pb2.CompleteLoginRequest(code=code, state=start.state),
                                    metadata=gateway_metadata())
    return SignedIn(done.user.id, done.user.github_login, done.tokens.access_token,
                    done.tokens.refresh_token)
