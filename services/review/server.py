"""Composition root of the review service: config, repository, peers, GitHub, use cases, servicer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc
from tandem.review.v1 import review_pb2, review_pb2_grpc

from services.common.config import CommonConfig, Env
from services.common.db import load_migrations
from services.common.grpcserver import Resources, ServiceSpec
from services.common.lazyhttp import LazyHttpClient
from services.common.peers import MembershipClient, service_authenticator
from services.common.sessionevents import PurgeSettings
from services.review.clients import CALL_DEADLINE, AuthDirectory, SessionEvents
from services.review.config import ReviewConfig
from services.review.deletions import purge_jobs
from services.review.domain import Limits
from services.review.events import JsonRenderer
from services.review.github import GitHub
from services.review.repository import ReviewRepository
from services.review.servicer import ReviewServicer
from services.review.stores import RedisContents, RedisDeliveries, RedisEtags
from services.review.usecases import ReviewUseCases

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

SERVICE_NAME = review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name


def build_spec(env: Env, common: CommonConfig) -> ServiceSpec:
    config = ReviewConfig.from_env(env)
    purge = PurgeSettings.from_env(env)

    async def register(server: grpc.aio.Server, res: Resources) -> Sequence[str]:
        def make_http() -> httpx.AsyncClient:
            import httpx  # noqa: PLC0415 - made with the first GitHub call, not at start-up

            return httpx.AsyncClient(
                timeout=httpx.Timeout(config.github_timeout,
                                      connect=config.github_connect_timeout),
                headers={"User-Agent": "tandem-review"},
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )

        http = LazyHttpClient(make_http)
        res.closers.append(http.aclose)
        github = GitHub(http, config.github_api_url,
                        RedisEtags(res.redis, res.keys, config.etag_ttl),
                        timeout=config.github_timeout, retries=config.github_retries)
        sessions = res.peer("sessions", CALL_DEADLINE)
        usecases = ReviewUseCases(
            repo=ReviewRepository(res.pool),
            github=github,
            members=MembershipClient(sessions, ttl=config.membership_ttl),
            directory=AuthDirectory(res.peer("auth", CALL_DEADLINE), config.token_ttl),
            events=SessionEvents(sessions),
            contents=RedisContents(res.redis, res.keys),
            deliveries=RedisDeliveries(res.redis, res.keys),
            render=JsonRenderer(),
            limits=Limits(config.max_file_bytes, config.max_files),
            webhook_secret=config.webhook_secret,
        )
        review_pb2_grpc.add_ReviewServiceServicer_to_server(
            ReviewServicer(usecases, service_authenticator(res)), server)
        return [SERVICE_NAME]

    return ServiceSpec(
        name="review",
        schema="review",
        migrations=lambda: load_migrations("services.review.migrations"),
        grpc_port=env.port("REVIEW_GRPC_PORT", 50053),
        metrics_port=env.port("REVIEW_METRICS_PORT", 9103),
        register=register,
        # Deleted sessions: their reviews go, also when review was down at the deletion.
        background=purge_jobs(purge),
    )
