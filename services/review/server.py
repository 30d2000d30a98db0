"""Composition root of the review service: settings, adapters, GitHub client, domain, servicer."""

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
from services.common.peers import service_authenticator
from services.common.sessionevents import PurgeSettings
from services.review.adapters import (
    AuthDirectory,
    RedisContents,
    RedisDeliveries,
    RedisEtags,
    SessionEvents,
    SessionsMembership,
)
from services.review.convert import JsonRenderer
from services.review.deletions import purge_jobs
from services.review.domain import Limits, ReviewDomain
from services.review.github import GitHub
from services.review.repository import ReviewRepository
from services.review.servicer import ReviewServiceServicer
from services.review.settings import ReviewSettings

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

SERVICE_NAME = review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name


def build_spec(env: Env, config: CommonConfig) -> ServiceSpec:
    settings = ReviewSettings.from_env(env)
    purge = PurgeSettings.from_env(env)

    async def register(server: grpc.aio.Server, res: Resources) -> Sequence[str]:
        def make_http() -> httpx.AsyncClient:
            import httpx  # noqa: PLC0415 - made with the first GitHub call, not at start-up

            return httpx.AsyncClient(
                timeout=httpx.Timeout(settings.github_timeout, connect=settings.github_connect_timeout),
                headers={"User-Agent": "tandem-review"},
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )

        http = LazyHttpClient(make_http)
        res.closers.append(http.aclose)
        github = GitHub(http, settings.github_api_url,
                        RedisEtags(res.redis, res.keys, settings.etag_ttl),
                        timeout=settings.github_timeout, retries=settings.github_retries)
        domain = ReviewDomain(
            ReviewRepository(res.pool),
            github,
            SessionsMembership(res.channel("sessions"), config.service_token,
                               settings.membership_ttl),
            AuthDirectory(res.channel("auth"), config.service_token, settings.token_ttl),
            SessionEvents(res.channel("sessions"), config.service_token),
            RedisContents(res.redis, res.keys),
            RedisDeliveries(res.redis, res.keys),
            JsonRenderer(),
            Limits(settings.max_file_bytes, settings.max_files),
            settings.webhook_secret,
        )
        review_pb2_grpc.add_ReviewServiceServicer_to_server(
            ReviewServiceServicer(domain, service_authenticator(res)), server)
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
