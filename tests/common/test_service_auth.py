"""Every RPC to a service needs the calling service's credential as well as the user's identity.

A user's access token alone, sent straight to a service's gRPC port, is refused: only the
gateway and the services hold SERVICE_TOKEN, so nothing else can skip the gateway (its rate
limits, its checks) or act as a user. The standard health service stays open for probes;
reflection is served only in development mode.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tandem.ai.v1 import ai_pb2, ai_pb2_grpc
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc
from tandem.review.v1 import review_pb2, review_pb2_grpc
from tandem.sessions.v1 import sessions_pb2, sessions_pb2_grpc

from services.common.identity import ON_BEHALF_OF_METADATA, SERVICE_TOKEN_METADATA
from tests.conftest import RuntimeFactory, Stack
from tests.helpers.identity import SignedIn, sign_in_grpc

Metadata = tuple[tuple[str, str], ...]
Call = Callable[[grpc.aio.Channel, SignedIn, Metadata], Awaitable[Any]]


async def _auth(ch: grpc.aio.Channel, me: SignedIn, md: Metadata) -> Any:
    return await auth_pb2_grpc.AuthServiceStub(ch).GetUser(
        auth_pb2.GetUserRequest(user_id=me.user_id), metadata=md)


async def _sessions(ch: grpc.aio.Channel, me: SignedIn, md: Metadata) -> Any:
    return await sessions_pb2_grpc.SessionsServiceStub(ch).ListSessions(
        sessions_pb2.ListSessionsRequest(), metadata=md)


async def _review(ch: grpc.aio.Channel, me: SignedIn, md: Metadata) -> Any:
    # A session nobody has: served means NOT_FOUND, refused means UNAUTHENTICATED.
    return await review_pb2_grpc.ReviewServiceStub(ch).ListReviews(
        review_pb2.ListReviewsRequest(session_id=str(uuid.uuid4())), metadata=md)


async def _ai(ch: grpc.aio.Channel, me: SignedIn, md: Metadata) -> Any:
    return await ai_pb2_grpc.AiServiceStub(ch).GetJob(
        ai_pb2.GetJobRequest(job_id=str(uuid.uuid4())), metadata=md)


CALLS: dict[str, Call] = {"auth": _auth, "sessions": _sessions, "review": _review, "ai": _ai}
SERVED = {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND}


async def _code(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.fixture
async def platform_stack(stack: Callable[..., Any]) -> Any:
    async with stack("sessions", "review", "ai") as s:
        yield s


async def test_a_user_token_alone_is_refused_by_every_service(
        platform_stack: Stack, base_env: dict[str, str]) -> None:
    s = platform_stack
    async with grpc.aio.insecure_channel(s.addr("auth")) as auth_ch:
        me = await sign_in_grpc(auth_ch, f"direct-{uuid.uuid4().hex[:8]}")
    bearer = (("authorization", f"Bearer {me.access_token}"),)
    wrong = ((SERVICE_TOKEN_METADATA, "not-" + base_env["SERVICE_TOKEN"]), *bearer)
    for name, call in CALLS.items():
        async with grpc.aio.insecure_channel(s.addr(name)) as ch:
            alone = await _code(call(ch, me, bearer))
            assert alone == grpc.StatusCode.UNAUTHENTICATED, f"{name}: {alone}"
            assert await _code(call(ch, me, wrong)) == grpc.StatusCode.UNAUTHENTICATED, name
            # What the gateway sends: the credential and the user's token.
            served = await _code(call(ch, me, me.metadata))
            assert served in SERVED, f"{name}: {served}"


async def test_acting_for_a_user_needs_the_credential(
        platform_stack: Stack, base_env: dict[str, str]) -> None:
    s = platform_stack
    async with grpc.aio.insecure_channel(s.addr("auth")) as auth_ch:
        me = await sign_in_grpc(auth_ch, f"behalf-{uuid.uuid4().hex[:8]}")
    on_behalf = ((ON_BEHALF_OF_METADATA, me.user_id),)
    for name, call in CALLS.items():
        async with grpc.aio.insecure_channel(s.addr(name)) as ch:
            assert await _code(call(ch, me, on_behalf)) == grpc.StatusCode.UNAUTHENTICATED, name
            internal = ((SERVICE_TOKEN_METADATA, base_env["SERVICE_TOKEN"]), *on_behalf)
            assert await _code(call(ch, me, internal)) in SERVED, name


async def test_rpcs_without_a_user_need_the_credential_too(
        platform_stack: Stack, base_env: dict[str, str]) -> None:
    """Sign-in, refresh and the JWKS have no user yet: still only for the gateway."""
    async with grpc.aio.insecure_channel(platform_stack.addr("auth")) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        for call in (stub.StartLogin(auth_pb2.StartLoginRequest()),
                     stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token="x")),
                     stub.GetJwks(auth_pb2.GetJwksRequest()),
                     stub.GetUserByLogin(auth_pb2.GetUserByLoginRequest(github_login="octocat"))):
            assert await _code(call) == grpc.StatusCode.UNAUTHENTICATED
        credential = ((SERVICE_TOKEN_METADATA, base_env["SERVICE_TOKEN"]),)
        assert (await stub.GetJwks(auth_pb2.GetJwksRequest(), metadata=credential)).jwks_json


async def test_health_stays_open_for_probes(platform_stack: Stack) -> None:
    for name in CALLS:
        async with grpc.aio.insecure_channel(platform_stack.addr(name)) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            for service in ("", "liveness"):
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING, (name, service)


async def _reflected(port: int) -> set[str] | grpc.StatusCode:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        names: set[str] = set()
        try:
            async for reply in stub.ServerReflectionInfo(requests(), timeout=5):
                names |= {s.name for s in reply.list_services_response.service}
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return names


@pytest.mark.parametrize("tandem_env", ["production", ""])
async def test_reflection_is_off_outside_development(
        service_runtime: RuntimeFactory, tandem_env: str) -> None:
    secrets = {"SERVICE_TOKEN": "production-credential-" + uuid.uuid4().hex,
               "GITHUB_WEBHOOK_SECRET": "production-webhook-" + uuid.uuid4().hex}
    async with service_runtime("review", TANDEM_ENV=tandem_env, **secrets) as runtime:
        assert await _reflected(runtime.grpc_port) == grpc.StatusCode.UNIMPLEMENTED
    async with service_runtime("review") as runtime:  # the fixtures' development mode
        names = await _reflected(runtime.grpc_port)
        assert isinstance(names, set)
        assert "tandem.review.v1.ReviewService" in names


async def test_the_interceptor_refuses_streaming_calls_without_the_credential_too() -> None:
    """Client-streaming RPCs go through the same gate (reflection stands in for one here:
    the kit never serves it without the credential outside the open services)."""
    from grpc_reflection.v1alpha import reflection

    from services.common.grpcserver import ServerInterceptor

    token = "interceptor-" + uuid.uuid4().hex
    server = grpc.aio.server(interceptors=[ServerInterceptor(token)])
    reflection.enable_server_reflection((reflection.SERVICE_NAME,), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)

            async def one() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
                yield reflection_pb2.ServerReflectionRequest(list_services="")

            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in stub.ServerReflectionInfo(one(), timeout=5):
                    pass
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert info.value.details() == "missing service credential"
            names = [s.name async for reply in stub.ServerReflectionInfo(
                one(), timeout=5, metadata=((SERVICE_TOKEN_METADATA, token),))
                for s in reply.list_services_response.service]
            assert names == [reflection.SERVICE_NAME]
    finally:
        await server.stop(None)
