"""Composition root of the sessions service: its spec for the kit's gRPC runtime."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from tandem.sessions.v1 import sessions_pb2, sessions_pb2_grpc

from services.common.config import CommonConfig, Env
from services.common.db import load_migrations
from services.common.grpcserver import Background, Resources, ServiceSpec
from services.common.peers import service_authenticator
from services.sessions.cache import Cache, MembershipChecker, RedisGuard
from services.sessions.documents import DocumentService
from services.sessions.events import Publisher, run_outbox_relay
from services.sessions.notifications import ConsumerSettings, run_notifications
from services.sessions.repository import Repository
from services.sessions.servicer import SessionsServiceServicer
from services.sessions.usecases import SessionsApp
from services.sessions.users import UserDirectory

SERVICE_NAME = sessions_pb2.DESCRIPTOR.services_by_name["SessionsService"].full_name


@dataclass(frozen=True, slots=True)
class SessionsSettings:
    """Sessions-only settings from the environment."""

    cache_ttl: float
    notifications: ConsumerSettings
    # Loaded documents of this replica, counted as DocumentService counts a document's size.
    document_cache_bytes: int

    @classmethod
    def from_env(cls, env: Env) -> SessionsSettings:
        return cls(
            cache_ttl=env.float("SESSIONS_CACHE_TTL_SECONDS", 30.0, minimum=0.1),
            notifications=ConsumerSettings(
                claim_idle_ms=int(env.float("NOTIFICATIONS_CLAIM_IDLE_SECONDS", 30.0,
                                            minimum=0.01) * 1000)),
            document_cache_bytes=env.int("SESSIONS_DOCUMENT_CACHE_BYTES", 16 * 1024 * 1024,
                                         minimum=0),
        )


def build_app(res: Resources, settings: SessionsSettings) -> tuple[SessionsApp, MembershipChecker]:
    """Wire the use cases over a service's resources (tests use it on a running runtime)."""
    repo = Repository(res.pool)
    guard = RedisGuard(res.redis)
    checker = MembershipChecker(repo, Cache(guard), res.keys, settings.cache_ttl)
    users = UserDirectory(res.channel("auth"), res.config.service_token, res.config.grpc_deadline)
    return SessionsApp(repo, checker, Publisher(res.keys, guard, repo), users), checker


def build_spec(env: Env, config: CommonConfig) -> ServiceSpec:
    settings = SessionsSettings.from_env(env)

    async def register(server: grpc.aio.Server, res: Resources) -> Sequence[str]:
        app, checker = build_app(res, settings)
        documents = DocumentService(res, checker, cache_bytes=settings.document_cache_bytes)
        servicer = SessionsServiceServicer(app, documents, service_authenticator(res))
        sessions_pb2_grpc.add_SessionsServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    async def notifications(res: Resources) -> None:
        await run_notifications(res, settings.notifications)

    async def outbox(res: Resources) -> None:
        repo = Repository(res.pool)
        await run_outbox_relay(Publisher(res.keys, RedisGuard(res.redis), repo))

    background: tuple[Background, ...] = (notifications, outbox)
    return ServiceSpec(
        name="sessions",
        schema="sessions",
        migrations=lambda: load_migrations("services.sessions.migrations"),
        grpc_port=env.port("SESSIONS_GRPC_PORT", 50052),
        metrics_port=env.port("SESSIONS_METRICS_PORT", 9102),
        register=register,
        background=background,
    )
