"""Signing in while GitHub fails: a clear error, nothing stored, and the next sign-in works.

GitHub is the stand-in, made to fail through its control API (every answer a 500), or
replaced by a port nobody listens on (GitHub unreachable).
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import psycopg
import pytest
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc

from services.common.errors import RETRY_AFTER_KEY
from tests.helpers.identity import code_from_async, gateway_metadata, sign_in_grpc


def _login() -> str:
    return f"gh-down-{secrets.token_hex(4)}"


@pytest.fixture
def closed_url() -> Iterator[str]:
    """An address where nothing listens (bound, never listening, so no one else takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def _stored(database_url: str, login: str) -> tuple[int, int, int]:
    """(users, GitHub tokens, refresh tokens) stored for `login`."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT u.id), count(DISTINCT g.user_id), count(DISTINCT r.id)"
            " FROM auth.users u LEFT JOIN auth.github_tokens g ON g.user_id = u.id"
            " LEFT JOIN auth.refresh_tokens r ON r.user_id = u.id"
            " WHERE lower(u.github_login) = lower(%s)", (login,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


async def _start(stub: auth_pb2_grpc.AuthServiceStub, login: str,
                 standin: str) -> tuple[str, str]:
    """StartLogin, then the stand-in's consent for `login`: (code, state)."""
    start = await stub.StartLogin(auth_pb2.StartLoginRequest(), metadata=gateway_metadata())
    # The authorize page is the stand-in's even when auth was told GitHub is elsewhere.
    page = httpx.URL(start.authorize_url).copy_with(
        scheme="http", host="127.0.0.1", port=httpx.URL(standin).port)
    return await code_from_async(str(page), login), start.state


async def _refused(stub: auth_pb2_grpc.AuthServiceStub, code: str,
                   state: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CompleteLogin(auth_pb2.CompleteLoginRequest(code=code, state=state),
                                 metadata=gateway_metadata())
    return info.value


def _retry_after(err: grpc.aio.AioRpcError) -> str | None:
    value = dict(err.trailing_metadata() or ()).get(RETRY_AFTER_KEY)
    return value if value is None or isinstance(value, str) else value.decode()


async def test_github_failing_on_the_code_exchange_stores_nothing_and_the_next_sign_in_works(
        stack: Callable[..., Any], github_standin: str, database_url: str) -> None:
    login = _login()
    async with stack() as s, grpc.aio.insecure_channel(s.addr("auth")) as ch, \
            httpx.AsyncClient(base_url=github_standin, timeout=10) as control:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        code, state = await _start(stub, login, github_standin)
        (await control.post("/_standin/faults", json={"status": 500})).raise_for_status()
        try:
            err = await _refused(stub, code, state)
        finally:
            (await control.delete("/_standin/faults")).raise_for_status()
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert err.details() == "GitHub answered 500 to the code exchange"
        assert _retry_after(err) == "5"
        assert _stored(database_url, login) == (0, 0, 0)
        # The state was spent with the attempt: the login starts again, and then works.
        again = await _refused(stub, code, state)
        assert again.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "start the login again" in (again.details() or "")
        me = await sign_in_grpc(ch, login)
        assert me.login == login
        assert _stored(database_url, login) == (1, 1, 1)


async def test_github_unreachable_for_the_code_exchange_is_a_clear_unavailable(
        stack: Callable[..., Any], github_standin: str, database_url: str,
        closed_url: str) -> None:
    login = _login()
    async with stack(GITHUB_OAUTH_URL=closed_url) as s, \
            grpc.aio.insecure_channel(s.addr("auth")) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        code, state = await _start(stub, login, github_standin)
        err = await _refused(stub, code, state)
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert err.details() == "GitHub did not answer the code exchange (ConnectError)"
        assert _retry_after(err) == "5"
    assert _stored(database_url, login) == (0, 0, 0)


async def test_github_unreachable_after_the_code_exchange_stores_nothing(
        stack: Callable[..., Any], github_standin: str, database_url: str,
        closed_url: str) -> None:
    # The code is exchanged for a token, then reading the user fails (retried, then given
    # up): the token is dropped, no user and no session are made.
    login = _login()
    async with stack(GITHUB_API_URL=closed_url) as s, \
            grpc.aio.insecure_channel(s.addr("auth")) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        code, state = await _start(stub, login, github_standin)
        err = await _refused(stub, code, state)
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert err.details() == "GitHub is not answering /user"
        assert _stored(database_url, login) == (0, 0, 0)
    async with stack() as s, grpc.aio.insecure_channel(s.addr("auth")) as ch:
        me = await sign_in_grpc(ch, login)
        assert me.login == login
    assert _stored(database_url, login) == (1, 1, 1)
