"""Calling a peer service: one set of channel options, one call wrapper, one error table.

Every service's clients.py and the gateway call their peers through `Peer.call`: it
sends the deadline, the service credential (`x-tandem-service-token`), the request id
and whom the call is for (the user's access token, or the user id a service acts for),
and turns a failed call into the DomainError of services/common/grpcerrors.py.

    peer = res.peer("sessions")                       # in a service's build_spec
    stub = sessions_pb2_grpc.SessionsServiceStub(peer.channel)
    reply = await peer.call(stub.GetSession, request, on_behalf_of=user_id)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc
from tandem.sessions.v1 import sessions_pb2, sessions_pb2_grpc

from services.common import metrics
from services.common.config import DOCUMENT_MAX_BYTES, CommonConfig, grpc_message_limit, message_options
from services.common.context import REQUEST_ID_METADATA, request_id_var
from services.common.errors import InvalidArgument, NotFound
from services.common.grpcerrors import from_rpc_error
from services.common.identity import (
    ON_BEHALF_OF_METADATA,
    SERVICE_TOKEN_METADATA,
    Authenticator,
    JwksFetcher,
    TokenVerifier,
    service_metadata,
)
from services.common.membership import Membership
from services.common.ttlcache import TtlCache

Resp = TypeVar("Resp")

PEERS = ("auth", "sessions", "review", "ai")


def channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Every channel to a peer; message limits agree with the servers' (grpc_message_limit)."""
    return [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        *message_options(max_message_bytes),
        # Reconnect quickly after a service restarts instead of backing off for minutes.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
        ("grpc.enable_retries", 0),
    ]


# At the default document limit (the benchmark's bare channels use them).
CHANNEL_OPTIONS = channel_options(grpc_message_limit(DOCUMENT_MAX_BYTES))


def peer_address(config: CommonConfig, service: str) -> str:
    """Where `service` listens (AUTH_ADDR, SESSIONS_ADDR, REVIEW_ADDR, AI_ADDR)."""
    return {"auth": config.auth_addr, "sessions": config.sessions_addr,
            "review": config.review_addr, "ai": config.ai_addr}[service]


def open_channel(config: CommonConfig, service: str) -> grpc.aio.Channel:
    """A new long-lived channel to `service` (share it: channels multiplex calls)."""
    return grpc.aio.insecure_channel(peer_address(config, service),
                                     options=channel_options(config.grpc_max_message_bytes))


class Peer:
    """One peer service on a shared channel, called with the service credential."""

    __slots__ = ("_credential", "channel", "deadline", "name")

    def __init__(self, name: str, channel: grpc.aio.Channel, service_token: str,
                 deadline: float) -> None:
        self.name = name
        self.channel = channel
        self.deadline = deadline
        self._credential = (SERVICE_TOKEN_METADATA, service_token)

    def metadata(self, *, on_behalf_of: str | None = None,
                 token: str | None = None) -> list[tuple[str, str]]:
        """The call's metadata: credential, request id, and the user's token or id if given."""
        meta = [self._credential]
        request_id = request_id_var.get()
        if request_id:
            meta.append((REQUEST_ID_METADATA, request_id))
        if token is not None:
            meta.append(("authorization", "Bearer " + token))
        if on_behalf_of:
            meta.append((ON_BEHALF_OF_METADATA, on_behalf_of))
        return meta

    async def call(self, fn: Callable[..., Awaitable[Resp]], request: Any, *,
                   on_behalf_of: str | None = None, token: str | None = None,
                   timeout: float | None = None) -> Resp:
        """`fn(request)` with the deadline (`timeout` or the peer's) and metadata; a failure
        raises the DomainError of the one table (services/common/grpcerrors.py)."""
        try:
            return await fn(request, timeout=timeout or self.deadline,
                            metadata=self.metadata(on_behalf_of=on_behalf_of, token=token))
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, self.name) from None


ROLE_NAMES = {sessions_pb2.ROLE_OWNER: "owner", sessions_pb2.ROLE_EDITOR: "editor",
              sessions_pb2.ROLE_VIEWER: "viewer"}


class MembershipClient:
    """Asks the sessions service for a user's role in a session (review and ai authorize by it).

    With a `ttl`, positive answers are cached that many seconds: a removed member keeps
    access for at most that long, and a "not a member" answer is never cached, so a new
    member is let in at once.
    """

    def __init__(self, sessions: Peer, *, ttl: float = 0.0, timeout: float | None = None) -> None:
        self._peer = sessions
        self._stub = sessions_pb2_grpc.SessionsServiceStub(sessions.channel)
        self._timeout = timeout
        self._cache: TtlCache[tuple[str, str], Membership] | None = (
            TtlCache(ttl) if ttl > 0 else None)

    async def membership(self, session_id: str, user_id: str) -> Membership | None:
        """The user's place in the session; None when they are not a member (or it is gone).

        Any other failure raises the peer table's error (Unavailable while sessions is down).
        """
        key = (session_id, user_id)
        if self._cache is not None:
            cached = self._cache.get(key)
            if cached is not None:
                metrics.CACHE_REQUESTS.labels("membership", "hit").inc()
                return cached
            metrics.CACHE_REQUESTS.labels("membership", "miss").inc()
        try:
            reply = await self._peer.call(
                self._stub.GetMembership,
                sessions_pb2.GetMembershipRequest(session_id=session_id, user_id=user_id),
                on_behalf_of=user_id, timeout=self._timeout)
        except (NotFound, InvalidArgument):
            return None
        role = ROLE_NAMES.get(reply.role)
        if role is None:
            return None
        found = Membership(role, reply.status != sessions_pb2.SESSION_STATUS_ENDED)
        if self._cache is not None:
            self._cache.put(key, found)
        return found


def auth_jwks_fetcher(channel: grpc.aio.Channel, service_token: str,
                      timeout: float = 2.0) -> JwksFetcher:
    """Fetch the JWKS from the auth service over gRPC."""
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    metadata = service_metadata(service_token)

    async def fetch() -> str:
        reply = await stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=timeout, metadata=metadata)
        return reply.jwks_json

    return fetch


def service_authenticator(res: Any) -> Authenticator:
    """An Authenticator for a service other than auth: JWKS over gRPC from the auth service.

    `res` is the kit's Resources; the verifier loads keys on first use and
    whenever it meets an unknown `kid`.
    """
    verifier = TokenVerifier(auth_jwks_fetcher(res.channel("auth"), res.config.service_token),
                             res.config.jwt_issuer, res.config.jwt_audience)
    return Authenticator(verifier, res.config.service_token)
