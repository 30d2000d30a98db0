"""Composition root of the ai service: its spec for the kit's gRPC runtime."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from tandem.ai.v1 import ai_pb2, ai_pb2_grpc

from services.ai.servicer import AiServiceServicer
from services.common.config import CommonConfig, Env
from services.common.db import load_migrations
from services.common.grpcserver import Resources, ServiceSpec

SERVICE_NAME = ai_pb2.DESCRIPTOR.services_by_name["AiService"].full_name


async def _register(server: grpc.aio.Server, res: Resources) -> Sequence[str]:
    ai_pb2_grpc.add_AiServiceServicer_to_server(AiServiceServicer(res), server)
    return [SERVICE_NAME]


def build_spec(env: Env, config: CommonConfig) -> ServiceSpec:
    return ServiceSpec(
        name="ai",
        schema="ai",
        migrations=lambda: load_migrations("services.ai.migrations"),
        grpc_port=env.port("AI_GRPC_PORT", 50054),
        metrics_port=env.port("AI_METRICS_PORT", 9104),
        register=_register,
    )
