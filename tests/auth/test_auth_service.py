"""The auth service over real gRPC with PostgreSQL, Redis and the GitHub stand-in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import httpx
import psycopg
import pytest
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc

from services.common.identity import service_metadata
from tests.helpers.identity import SignedIn, code_from_async, gateway_metadata, sign_in_grpc


async def _rpc_error(coro: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro
    return info.value


async def test_refresh_rotates_and_reuse_revokes_the_family(stack: Callable[..., Any]) -> None:
    async with stack() as s, grpc.aio.insecure_channel(s.addr("auth")) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        me = await sign_in_grpc(ch, "octocat")
        first = await stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=me.refresh_token),
                                  metadata=gateway_metadata())
        second_token = first.tokens.refresh_token
        assert second_token != me.refresh_token
        # Presenting the spent token again is reuse: 401 and the whole family dies.
        err = await _rpc_error(stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=me.refresh_token),
                                  metadata=gateway_metadata()))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        err = await _rpc_error(stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=second_token),
                                                 metadata=gateway_metadata()))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_logout_revokes_the_family(stack: Callable[..., Any]) -> None:
    async with stack() as s, grpc.aio.insecure_channel(s.addr("auth")) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        me = await sign_in_grpc(ch, "hubot")
        await stub.Logout(auth_pb2.LogoutRequest(refresh_token=me.refresh_token), metadata=gateway_metadata())
        err = await _rpc_error(stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=me.refresh_token),
                                  metadata=gateway_metadata()))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_state_is_single_use_and_forged_state_is_refused(stack: Callable[..., Any]) -> None:
    async with stack() as s, grpc.aio.insecure_channel(s.addr("auth")) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        start = await stub.StartLogin(auth_pb2.StartLoginRequest(), metadata=gateway_metadata())
        code = await code_from_async(start.authorize_url, "monalisa")
        await stub.CompleteLogin(auth_pb2.CompleteLoginRequest(code=code, state=start.state),
                                 metadata=gateway_metadata())
        replay = await _rpc_error(stub.CompleteLogin(auth_pb2.CompleteLoginRequest(code=code, state=start.state),
                                 metadata=gateway_metadata()))
        assert replay.code() == grpc.StatusCode.INVALID_ARGUMENT
        forged = await _rpc_error(stub.CompleteLogin(auth_pb2.CompleteLoginRequest(code="x", state="forged"),
                                                 metadata=gateway_metadata()))
        assert forged.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_redirect_uri_outside_allow_list_is_refused(stack: Callable[..., Any]) -> None:
    async with stack() as s, grpc.aio.insecure_channel(s.addr("auth")) as ch:
        err = await _rpc_error(auth_pb2_grpc.AuthServiceStub(ch).StartLogin(
            auth_pb2.StartLoginRequest(redirect_uri="https://evil.example/cb"),
            metadata=gateway_metadata()))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_authorize_url_carries_pkce_and_state(stack: Callable[..., Any]) -> None:
    async with stack() as s, grpc.aio.insecure_channel(s.addr("auth")) as ch:
        start = await auth_pb2_grpc.AuthServiceStub(ch).StartLogin(auth_pb2.StartLoginRequest(),
                                                                     metadata=gateway_metadata())
        params = httpx.URL(start.authorize_url).params
        assert params["client_id"] == "tandem-local"
        assert params["code_challenge_method"] == "S256"
        assert len(params["code_challenge"]) == 43
        assert params["state"] == start.state
        assert "repo" in params["scope"]


async def test_github_token_is_internal_only_and_encrypted_at_rest(
        stack: Callable[..., Any], database_url: str, base_env: dict[str, str]) -> None:
    async with stack() as s, grpc.aio.insecure_channel(s.addr("auth")) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        me: SignedIn = await sign_in_grpc(ch, "octocat")
        refused = await _rpc_error(stub.GetGitHubToken(
            auth_pb2.GetGitHubTokenRequest(user_id=me.user_id), metadata=me.metadata))
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
        wrong = await _rpc_error(stub.GetGitHubToken(
            auth_pb2.GetGitHubTokenRequest(user_id=me.user_id),
            metadata=service_metadata("not-the-credential")))
        assert wrong.code() == grpc.StatusCode.UNAUTHENTICATED
        reply = await stub.GetGitHubToken(auth_pb2.GetGitHubTokenRequest(user_id=me.user_id),
                                          metadata=service_metadata(base_env["SERVICE_TOKEN"]))
        assert reply.access_token.startswith("gho_")
    with psycopg.connect(database_url) as conn:
        sealed = conn.execute("SELECT sealed FROM auth.github_tokens WHERE user_id = %s",
                              (me.user_id,)).fetchone()
        hashes = conn.execute("SELECT token_hash FROM auth.refresh_tokens WHERE user_id = %s",
                              (me.user_id,)).fetchall()
    assert sealed is not None
    assert reply.access_token.encode() not in bytes(sealed[0])
    assert all(me.refresh_token.encode() not in bytes(h[0]) for h in hashes)
    assert all(len(bytes(h[0])) == 32 for h in hashes)


async def test_rotated_key_keeps_old_tokens_valid_and_signs_new_ones(
        stack: Callable[..., Any], base_env: dict[str, str]) -> None:
    async with stack() as s, grpc.aio.insecure_channel(s.addr("auth")) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        me = await sign_in_grpc(ch, "octocat")
        user_rotation = await _rpc_error(stub.RotateSigningKey(auth_pb2.RotateSigningKeyRequest(),
                                                               metadata=me.metadata))
        assert user_rotation.code() == grpc.StatusCode.PERMISSION_DENIED
        rotated = await stub.RotateSigningKey(auth_pb2.RotateSigningKeyRequest(),
                                              metadata=service_metadata(base_env["SERVICE_TOKEN"]))
        kids = [k["kid"] for k in __import__("json").loads(
            (await stub.GetJwks(auth_pb2.GetJwksRequest(), metadata=gateway_metadata())).jwks_json)["keys"]]
        assert rotated.kid in kids
        assert len(kids) >= 2
        # The token signed before the rotation still works...
        still = await stub.GetUser(auth_pb2.GetUserRequest(user_id=me.user_id), metadata=me.metadata)
        assert still.user.github_login == "octocat"
        # ...and new tokens carry the new kid.
        fresh = await stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=me.refresh_token),
                                  metadata=gateway_metadata())
        import jwt

        assert jwt.get_unverified_header(fresh.tokens.access_token)["kid"] == rotated.kid


async def test_sign_in_again_keeps_one_user_per_github_id(stack: Callable[..., Any]) -> None:
    async with stack() as s, grpc.aio.insecure_channel(s.addr("auth")) as ch:
        first = await sign_in_grpc(ch, "newcomer-one")
        second = await sign_in_grpc(ch, "newcomer-one")
        assert first.user_id == second.user_id
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        by_login = await stub.GetUserByLogin(auth_pb2.GetUserByLoginRequest(github_login="NEWCOMER-ONE"),
                                             metadata=first.metadata)
        assert by_login.user.id == first.user_id
        missing = await _rpc_error(stub.GetUser(auth_pb2.GetUserRequest(user_id="not-a-uuid"),
                                                metadata=first.metadata))
        assert missing.code() == grpc.StatusCode.NOT_FOUND


async def test_user_rpcs_need_a_token(stack: Callable[..., Any]) -> None:
    async with stack() as s, grpc.aio.insecure_channel(s.addr("auth")) as ch:
        err = await _rpc_error(auth_pb2_grpc.AuthServiceStub(ch).GetUser(
            auth_pb2.GetUserRequest(user_id="00000000-0000-0000-0000-000000000000")))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_changed_encryption_key_retires_unreadable_signing_keys_instead_of_wedging(
        service_runtime: Any, pg_server_url: str, run_id: str) -> None:
    import base64
    import os

    from grpc_health.v1 import health_pb2, health_pb2_grpc

    # A database of its own: retiring keys here must not disturb other tests' services.
    name = f"tandem_test_{run_id}_rekey"
    admin = pg_server_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_server_url.rsplit("/", 1)[0] + "/" + name
    try:
        first_key = base64.b64encode(os.urandom(32)).decode()
        async with service_runtime("auth", DATABASE_URL=url, TOKEN_ENCRYPTION_KEY=first_key):
            pass
        other_key = base64.b64encode(os.urandom(32)).decode()
        async with service_runtime("auth", DATABASE_URL=url, TOKEN_ENCRYPTION_KEY=other_key) as rt, \
                grpc.aio.insecure_channel(f"127.0.0.1:{rt.grpc_port}") as ch:
            health = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            jwks = __import__("json").loads(
                (await auth_pb2_grpc.AuthServiceStub(ch).GetJwks(auth_pb2.GetJwksRequest(),
                                                           metadata=gateway_metadata())).jwks_json)
            # The old key still verifies the tokens it signed; a new one signs.
            assert len(jwks["keys"]) == 2
        with psycopg.connect(url) as conn:
            active = conn.execute("SELECT count(*) FROM auth.signing_keys WHERE retired_at IS NULL").fetchone()
        assert active == (1,)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
