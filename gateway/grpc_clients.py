"""Channels and stubs to the four services, and the one way the gateway calls them."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import Counter, Histogram
from tandem.ai.v1 import ai_pb2_grpc
from tandem.auth.v1 import auth_pb2_grpc
from tandem.review.v1 import review_pb2_grpc
from tandem.sessions.v1 import sessions_pb2_grpc

from gateway.errors import from_grpc
from services.common import metrics
from services.common.config import CommonConfig
from services.common.peers import PEERS, Peer, open_channel, peer_address

Resp = TypeVar("Resp")

SERVICES = PEERS


class Backends:
    """One long-lived channel per service (channels multiplex; never one per request)."""

    def __init__(self, config: CommonConfig) -> None:
        self.deadline = config.grpc_deadline
        # Every call carries the service credential: services refuse any RPC without it
        # (a user's token alone too).
        self.peers = {name: Peer(name, open_channel(config, name), config.service_token,
                                 config.grpc_deadline) for name in SERVICES}
        self.channels = {name: peer.channel for name, peer in self.peers.items()}
        self.addrs = {name: peer_address(config, name) for name in SERVICES}
        self.auth = auth_pb2_grpc.AuthServiceStub(self.channels["auth"])
        self.sessions = sessions_pb2_grpc.SessionsServiceStub(self.channels["sessions"])
        self.review = review_pb2_grpc.ReviewServiceStub(self.channels["review"])
        self.ai = ai_pb2_grpc.AiServiceStub(self.channels["ai"])
        self.health = {name: health_pb2_grpc.HealthStub(ch) for name, ch in self.channels.items()}
        self._children: dict[tuple[str, str], tuple[Histogram, dict[str, Counter]]] = {}

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(grace=None)

    async def call(self, service: str, method: str,
                   fn: Callable[..., Awaitable[Resp]], request: Any, *,
                   token: str | None = None, timeout: float | None = None) -> Resp:
        """Call `fn(request)` as the kit's Peer.call does (deadline, service credential,
        request id, the caller's token); failures become the HTTP error of the one table."""
        start = time.perf_counter()
        code = "OK"
        try:
            return await fn(request, timeout=timeout or self.deadline,
                            metadata=self.peers[service].metadata(token=token))
        except grpc.aio.AioRpcError as exc:
            # Not Peer.call: the metric below is labelled with the gRPC code itself.
            code = exc.code().name
            raise from_grpc(exc, service) from None
        finally:
            self._observe(service, method, code, time.perf_counter() - start)

    def _observe(self, service: str, method: str, code: str, seconds: float) -> None:
        # Cache labelled children: .labels() per request is measurable on the hot path.
        key = (service, method)
        entry = self._children.get(key)
        if entry is None:
            entry = (metrics.GRPC_CLIENT_SECONDS.labels(service, method), {})
            self._children[key] = entry
        entry[0].observe(seconds)
        counter = entry[1].get(code)
        if counter is None:
            counter = metrics.GRPC_CLIENT_HANDLED.labels(service, method, code)
            entry[1][code] = counter
        counter.inc()

    async def check_health(self, service: str, timeout: float) -> tuple[bool, str | None]:
        """Ask a service's grpc.health.v1 for its overall status."""
        try:
            reply = await self.health[service].Check(health_pb2.HealthCheckRequest(service=""),
                                                     timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return False, f"no answer within {timeout:g}s"
            return False, f"unreachable at {self.addrs[service]}: {exc.code().name.lower()}"
        if reply.status == health_pb2.HealthCheckResponse.SERVING:
            return True, None
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return False, f"reports {name} (its PostgreSQL or Redis is unreachable)"
