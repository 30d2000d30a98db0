"""Composition root of the ai service: its spec for the kit's gRPC runtime."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from redis.asyncio import Redis
from tandem.ai.v1 import ai_pb2, ai_pb2_grpc

from services.ai.clients import Peers
from services.ai.config import AiConfig
from services.ai.deletions import GROUP as PURGE_GROUP
from services.ai.deletions import SessionPurge
from services.ai.events import Events, JobSignals
from services.ai.jobs import JobExecutor, JobRunner, runner_identity
from services.ai.providers import Provider
from services.ai.providers.builtin import BuiltinProvider
from services.ai.providers.openai import OpenAIProvider
from services.ai.repository import AiRepository
from services.ai.servicer import AiServicer
from services.ai.sources import SourceLoader
from services.ai.usecases import AiUseCases
from services.common.config import CommonConfig, Env
from services.common.db import load_migrations
from services.common.grpcserver import Background, Resources, ServiceSpec
from services.common.peers import service_authenticator
from services.common.sessionevents import PurgeSettings, run_purge

SERVICE_NAME = ai_pb2.DESCRIPTOR.services_by_name["AiService"].full_name


@dataclass(frozen=True, slots=True)
class _Parts:
    builtin: BuiltinProvider
    runner: JobRunner
    purge: SessionPurge


class _Wired:
    """register() builds the parts; the background jobs (the kit starts them after it) run them."""

    parts: _Parts | None = None

    def get(self) -> _Parts:
        if self.parts is None:
            raise RuntimeError("register() has not run")
        return self.parts


def build_spec(env: Env, config: CommonConfig) -> ServiceSpec:
    ai_config = AiConfig.from_env(env)
    purge_settings = PurgeSettings.from_env(env)
    wired = _Wired()

    async def register(server: grpc.aio.Server, res: Resources) -> Sequence[str]:
        builtin = BuiltinProvider(timeout=ai_config.builtin_timeout,
                                  processes=ai_config.analyzer_processes)
        providers: dict[str, Provider] = {"builtin": builtin}
        if ai_config.openai.available:
            providers["openai"] = OpenAIProvider(ai_config.openai)
        peers = Peers(res)
        repo = AiRepository(res.pool)
        events = Events(res.redis, res.config.redis_prefix, res.keys, peers)
        loader = SourceLoader(peers, ai_config.max_files, ai_config.max_file_bytes)
        executor = JobExecutor(repo, providers, loader, events, ai_config, runner_identity())

        def ready() -> bool:
            return res.health is not None and res.health.migrated

        runner = JobRunner(repo, executor, events, ai_config, res.keys, res.redis,
                           res.config.redis_url, ready)
        # A client without a read timeout, for WatchJob subscriptions that sit idle.
        listener = Redis.from_url(res.config.redis_url, socket_connect_timeout=1.0,
                                  socket_timeout=None, socket_keepalive=True)
        usecases = AiUseCases(repo, peers, providers, runner, events,
                              JobSignals(listener, res.keys), ai_config)
        ai_pb2_grpc.add_AiServiceServicer_to_server(
            AiServicer(usecases, service_authenticator(res)), server)
        # Deleted sessions: their jobs go (running ones are cut), also when ai was down.
        purge = SessionPurge(repo, runner.request_cancel, purge_settings.keep_seconds)
        wired.parts = _Parts(builtin, runner, purge)

        async def close() -> None:
            # The kit has stopped the background jobs (running jobs were released, queued
            # again or failed) before its closers run, so the providers are idle now.
            for provider in providers.values():
                with contextlib.suppress(Exception):
                    await provider.close()
            await listener.aclose()

        res.closers.append(close)
        return [SERVICE_NAME]

    async def run_jobs(res: Resources) -> None:
        # The workers take jobs once the schema is migrated.
        await wired.get().runner.run()

    async def warm_up(res: Resources) -> None:
        # One-shot: the kit does not restart a job that returns, only one that fails.
        await wired.get().builtin.warm_up()

    async def purge_deleted(res: Resources) -> None:
        await run_purge(res, PURGE_GROUP, wired.get().purge, purge_settings)

    background: tuple[Background, ...] = (run_jobs, warm_up, purge_deleted)
    return ServiceSpec(
        name="ai",
        schema="ai",
        migrations=lambda: load_migrations("services.ai.migrations"),
        grpc_port=env.port("AI_GRPC_PORT", 50054),
        metrics_port=env.port("AI_METRICS_PORT", 9104),
        register=register,
        background=background,
    )
