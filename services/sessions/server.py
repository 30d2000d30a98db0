"""Composition root of the sessions service: its spec for the kit's gRPC runtime."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from tandem.sessions.v1 import sessions_pb2, sessions_pb2_grpc

from services.sessions.servicer import SessionsServiceServicer
from services.common.config import CommonConfig, Env
from services.common.db import load_migrations
from services.common.grpcserver import Resources, ServiceSpec

SERVICE_NAME = sessions_pb2.DESCRIPTOR.services_by_name["SessionsService"].full_name


async def _register(server: grpc.aio.Server, res: Resources) -> Sequence[str]:
    sessions_pb2_grpc.add_SessionsServiceServicer_to_server(SessionsServiceServicer(res), server)
    return [SERVICE_NAME]


def build_spec(env: Env, config: CommonConfig) -> ServiceSpec:
    return ServiceSpec(
        name="sessions",
        schema="sessions",
        migrations=lambda: load_migrations("services.sessions.migrations"),
        grpc_port=env.port("SESSIONS_GRPC_PORT", 50052),
        metrics_port=env.port("SESSIONS_METRICS_PORT", 9102),
        register=_register,
    )
