"""Composition root of the review service: its spec for the kit's gRPC runtime."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from tandem.review.v1 import review_pb2, review_pb2_grpc

from services.review.servicer import ReviewServiceServicer
from services.common.config import CommonConfig, Env
from services.common.db import load_migrations
from services.common.grpcserver import Resources, ServiceSpec

SERVICE_NAME = review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name


async def _register(server: grpc.aio.Server, res: Resources) -> Sequence[str]:
    review_pb2_grpc.add_ReviewServiceServicer_to_server(ReviewServiceServicer(res), server)
    return [SERVICE_NAME]


def build_spec(env: Env, config: CommonConfig) -> ServiceSpec:
    return ServiceSpec(
        name="review",
        schema="review",
        migrations=lambda: load_migrations("services.review.migrations"),
        grpc_port=env.port("REVIEW_GRPC_PORT", 50053),
        metrics_port=env.port("REVIEW_METRICS_PORT", 9103),
        register=_register,
    )
