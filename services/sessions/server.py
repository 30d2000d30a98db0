"""Composition root of the sessions service: its spec for the kit's gRPC runtime."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from tandem.sessions.v1 import sessions_pb2, sessions_pb2_grpc

from services.common.channels import RealtimeChannels
from services.common.config import CommonConfig, Env
from services.common.db import load_migrations
from services.common.domainevents import domain_events_stream
from services.common.grpcserver import Background, Resources, ServiceSpec
from services.common.peers import service_authenticator
from services.sessions.cache import Cache, MembershipChecker, RedisGuard
from services.sessions.clients import UserDirectory
from services.sessions.config import SessionsConfig
from services.sessions.documents import COMPACT_AFTER, DEFAULT_CACHE_BYTES, LoadedDocuments
from services.sessions.events import DocumentPublisher, Publisher, run_outbox_relay
from services.sessions.notifications import run_notifications
from services.sessions.repository import DocumentRepository, SessionsRepository
from services.sessions.servicer import SessionsServicer
from services.sessions.usecases import DocumentUseCases, SessionsUseCases

SERVICE_NAME = sessions_pb2.DESCRIPTOR.services_by_name["SessionsService"].full_name


@dataclass(frozen=True, slots=True)
class Wiring:
    """The use cases over one service's resources, and the membership cache they share."""

    sessions: SessionsUseCases
    documents: DocumentUseCases
    memberships: MembershipChecker


def _publisher(res: Resources, guard: RedisGuard, repo: SessionsRepository) -> Publisher:
    return Publisher(RealtimeChannels(res.config.redis_prefix),
                     domain_events_stream(res.config.redis_prefix), guard, repo)


def build_documents(res: Resources, memberships: MembershipChecker, *,
                    cache_bytes: int = DEFAULT_CACHE_BYTES,
                    compact_after: int = COMPACT_AFTER) -> DocumentUseCases:
    """The document use cases (tests build extra "replicas" with it on a running runtime)."""
    return DocumentUseCases(DocumentRepository(res.pool), memberships,
                            DocumentPublisher(res.redis, RealtimeChannels(res.config.redis_prefix)),
                            max_bytes=res.config.document_max_bytes, compact_after=compact_after,
                            loaded=LoadedDocuments(cache_bytes))


def wire(res: Resources, config: SessionsConfig) -> Wiring:
    """Wire the use cases over a service's resources (tests use it on a running runtime)."""
    repo = SessionsRepository(res.pool)
    guard = RedisGuard(res.redis)
    memberships = MembershipChecker(repo, Cache(guard), res.keys, config.cache_ttl)
    sessions = SessionsUseCases(repo, memberships, _publisher(res, guard, repo),
                                UserDirectory(res.peer("auth")))
    documents = build_documents(res, memberships, cache_bytes=config.document_cache_bytes)
    return Wiring(sessions, documents, memberships)


def build_spec(env: Env, common: CommonConfig) -> ServiceSpec:
    config = SessionsConfig.from_env(env)

    async def register(server: grpc.aio.Server, res: Resources) -> Sequence[str]:
        wiring = wire(res, config)
        servicer = SessionsServicer(wiring.sessions, wiring.documents,
                                           service_authenticator(res))
        sessions_pb2_grpc.add_SessionsServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    async def notifications(res: Resources) -> None:
        await run_notifications(res, config.notifications)

    async def outbox(res: Resources) -> None:
        repo = SessionsRepository(res.pool)
        await run_outbox_relay(_publisher(res, RedisGuard(res.redis), repo))

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
