"""Signing users in for tests through the real OAuth flow (GitHub stand-in + auth service)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import httpx
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc


@dataclass(frozen=True)
class SignedIn:
    user_id: str
    login: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.access_token}"),)


def _code_in(reply: httpx.Response) -> str:
    assert reply.status_code == 302, reply.text
    location = httpx.URL(reply.headers["location"])
    code = location.params.get("code")
    assert code, location
    return code


def _code_from(authorize_url: str, login: str) -> str:
    """Let the stand-in sign `login` in and return the code it redirects back with."""
    return _code_in(httpx.get(_with_login(authorize_url, login), timeout=10))


async def _code_from_async(authorize_url: str, login: str) -> str:
    # The stand-in may run in this very event loop: a blocking client would deadlock.
    async with httpx.AsyncClient(timeout=10) as client:
        return _code_in(await client.get(_with_login(authorize_url, login)))


def _with_login(authorize_url: str, login: str) -> str:
    # httpx's params= would replace the query string; add to it instead.
    return str(httpx.URL(authorize_url).copy_add_param("login", login))


async def sign_in_grpc(channel: grpc.aio.Channel, login: str) -> SignedIn:
    """The OAuth flow against the auth service directly (for in-process integration tests)."""
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    start = await stub.StartLogin(auth_pb2.StartLoginRequest())
    code = await _code_from_async(start.authorize_url, login)
    done = await stub.CompleteLogin(auth_pb2.CompleteLoginRequest(code=code, state=start.state))
    return SignedIn(done.user.id, done.user.github_login, done.tokens.access_token,
                    done.tokens.refresh_token)


def sign_in_http(gateway_url: str, login: str) -> SignedIn:
    """The OAuth flow as a browser does it, through the gateway."""
    with httpx.Client(base_url=gateway_url, timeout=10) as client:
        start = client.get("/api/v1/auth/github/login", follow_redirects=False)
        assert start.status_code == 302, start.text
        authorize = httpx.URL(start.headers["location"])
        code = _code_from(str(authorize), login)
        done = client.get("/api/v1/auth/github/callback",
                          params={"code": code, "state": authorize.params["state"]})
        assert done.status_code == 200, done.text
        body = done.json()
    return SignedIn(body["user"]["id"], body["user"]["github_login"], body["access_token"],
                    body["refresh_token"])
