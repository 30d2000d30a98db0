"""The one peer-call helper against a real gRPC server running the kit's interceptor.

What a service raises on purpose arrives at its caller as the same DomainError (class,
message, reason, field violations, Retry-After); a peer that is down, too slow or broken
becomes Unavailable or Internal; every call carries the credential, the request id and
whom it is for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import psycopg
import pytest
from grpc.aio import AioRpcError, Metadata

from services.common.context import request_id_var
from services.common.errors import (
    REASON_KEY,
    RETRY_AFTER_KEY,
    Conflict,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    Gone,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    StaleVersion,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from services.common.grpcerrors import STATUS, from_rpc_error, status_of
from services.common.grpcserver import ServerInterceptor
from services.common.identity import ON_BEHALF_OF_METADATA
from services.common.peers import Peer

TOKEN = "peer-test-token"
SERVICE = "tandem.test.v1.Probe"


@dataclass
class Probe:
    """A server whose one RPC raises what the test tells it to, or echoes the metadata."""

    port: int
    raise_next: Exception | None = None

    async def handle(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        if self.raise_next is not None:
            raise self.raise_next
        return repr(sorted((k, v) for k, v in context.invocation_metadata() or ()
                           if k.startswith("x-") or k == "authorization")).encode()


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    server = grpc.aio.server(interceptors=[ServerInterceptor(TOKEN)])
    state = Probe(0)
    handler = grpc.unary_unary_rpc_method_handler(
        state.handle, request_deserializer=bytes, response_serializer=bytes)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Call": handler}),))
    state.port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield state
    await server.stop(None)


@pytest.fixture
async def channel(probe: Probe) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{probe.port}") as ch:
        yield ch


def _method(channel: grpc.aio.Channel) -> Callable[..., Any]:
    return channel.unary_unary(f"/{SERVICE}/Call", request_serializer=bytes,
                               response_deserializer=bytes)


@pytest.mark.parametrize("raised", [
    InvalidArgument("title is required", [FieldViolation("title", "must not be empty")]),
    NotFound("no such session"),
    Conflict("already a member", reason="in_progress"),
    StaleVersion("the session changed"),
    FailedPrecondition("the session has ended"),
    Gone("the invitation expired"),
    PermissionDenied("viewers cannot edit"),
    Unauthenticated("the token expired"),
    ResourceExhausted("slow down", reason="rate_limited", retry_after=7),
    ResourceExhausted("3 jobs already queued", retry_after=5),
])
async def test_a_refusal_arrives_as_the_same_domain_error(
        probe: Probe, channel: grpc.aio.Channel, raised: DomainError) -> None:
    probe.raise_next = raised
    peer = Peer("sessions", channel, TOKEN, deadline=5.0)
    with pytest.raises(DomainError) as info:
        await peer.call(_method(channel), b"")
    got = info.value
    assert type(got) is type(raised)
    assert (got.message, got.reason, got.violations, got.retry_after) == (
        raised.message, raised.reason, raised.violations, raised.retry_after)


async def test_a_database_outage_arrives_as_unavailable_naming_the_peer_and_its_cause(
        probe: Probe, channel: grpc.aio.Channel) -> None:
    probe.raise_next = psycopg.OperationalError("connection refused")
    with pytest.raises(Unavailable) as info:
        await Peer("sessions", channel, TOKEN, 5.0).call(_method(channel), b"")
    assert info.value.reason == "database_unavailable"
    assert info.value.message == "sessions: database unavailable, try again shortly"
    assert info.value.retry_after == 1


async def test_an_unexpected_failure_is_internal_without_the_peers_text(
        probe: Probe, channel: grpc.aio.Channel) -> None:
    probe.raise_next = RuntimeError("secret traceback text")
    with pytest.raises(Internal) as info:
        await Peer("review", channel, TOKEN, 5.0).call(_method(channel), b"")
    assert "secret" not in info.value.message
    assert status_of(info.value) is grpc.StatusCode.INTERNAL


async def test_a_peer_that_is_down_is_unavailable_and_named() -> None:
    # Nothing listens on port 1: the channel fails to connect within the deadline.
    async with grpc.aio.insecure_channel("127.0.0.1:1") as dead:
        with pytest.raises(Unavailable) as info:
            await Peer("auth", dead, TOKEN, 2.0).call(_method(dead), b"")
    assert info.value.message == "the auth service is unavailable, try again shortly"
    assert (info.value.reason, info.value.retry_after) == ("auth_unavailable", 1)


async def test_a_missing_rpc_is_unimplemented(channel: grpc.aio.Channel) -> None:
    missing = channel.unary_unary(f"/{SERVICE}/Nope", request_serializer=bytes,
                                  response_deserializer=bytes)
    with pytest.raises(Unimplemented):
        await Peer("ai", channel, TOKEN, 5.0).call(missing, b"")


async def test_every_call_carries_credential_request_id_and_whom_it_is_for(
        channel: grpc.aio.Channel) -> None:
    peer = Peer("sessions", channel, TOKEN, 5.0)
    request_id_var.set("req-42")
    echoed = (await peer.call(_method(channel), b"", on_behalf_of="user-1")).decode()
    assert "('x-tandem-service-token', 'peer-test-token')" in echoed
    assert "('x-request-id', 'req-42')" in echoed
    assert f"('{ON_BEHALF_OF_METADATA}', 'user-1')" in echoed
    forwarded = (await peer.call(_method(channel), b"", token="jwt")).decode()
    assert "('authorization', 'Bearer jwt')" in forwarded
    assert ON_BEHALF_OF_METADATA not in forwarded


async def test_a_call_without_the_credential_is_refused(channel: grpc.aio.Channel) -> None:
    with pytest.raises(Unauthenticated):
        await Peer("sessions", channel, "wrong-token", 5.0).call(_method(channel), b"")


def test_the_table_goes_both_ways_for_every_error() -> None:
    # Every class the kit maps to a status comes back as itself from that status.
    for kind, code in STATUS.items():
        sent = kind("m", reason=kind.default_reason, retry_after=3)
        trailers = [(REASON_KEY, sent.reason)] if sent.reason else []
        trailers.append((RETRY_AFTER_KEY, "3"))
        back = from_rpc_error(AioRpcError(code, Metadata(), Metadata(*trailers), details="m"), "x")
        assert type(back) is kind, kind


def test_grpcs_own_resource_exhausted_is_internal_without_the_library_text() -> None:
    text = "Received message larger than max (20285020 vs. 16777216)"
    err = from_rpc_error(AioRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, Metadata(), Metadata(),
                                     details=text), "sessions")
    assert isinstance(err, Internal)
    assert "larger than max" not in err.message
