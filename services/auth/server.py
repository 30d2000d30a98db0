"""Composition root of the auth service: its spec for the kit's gRPC runtime."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc

from services.auth.servicer import AuthServiceServicer
from services.common.config import CommonConfig, Env
from services.common.db import load_migrations
from services.common.grpcserver import Resources, ServiceSpec

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


async def _register(server: grpc.aio.Server, res: Resources) -> Sequence[str]:
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServiceServicer(res), server)
    return [SERVICE_NAME]


def build_spec(env: Env, config: CommonConfig) -> ServiceSpec:
    return ServiceSpec(
        name="auth",
        schema="auth",
        migrations=lambda: load_migrations("services.auth.migrations"),
        grpc_port=env.port("AUTH_GRPC_PORT", 50051),
        metrics_port=env.port("AUTH_METRICS_PORT", 9101),
        register=_register,
    )
