"""Composition root of the ai service: its spec for the kit's gRPC runtime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import grpc
from redis.asyncio import Redis
from tandem.ai.v1 import ai_pb2, ai_pb2_grpc

from services.ai.cache import ResultCache
from services.ai.clients import Peers
from services.ai.config import AiConfig
from services.ai.deletions import GROUP as PURGE_GROUP
from services.ai.deletions import SessionPurge
from services.ai.events import Events
from services.ai.jobs import JobExecutor, JobRunner, runner_identity
from services.ai.providers import Provider
from services.ai.providers.builtin import BuiltinProvider
from services.ai.providers.openai import OpenAIProvider
from services.ai.repository import JobRepository
from services.ai.servicer import AiServiceServicer
from services.ai.sources import SourceLoader
from services.ai.usecases import AiApp
from services.common.config import CommonConfig, Env
from services.common.db import load_migrations
from services.common.grpcserver import Register, Resources, ServiceSpec
from services.common.peers import service_authenticator
from services.common.sessionevents import PurgeSettings, run_purge

SERVICE_NAME = ai_pb2.DESCRIPTOR.services_by_name["AiService"].full_name


def _registrar(config: AiConfig, purge_settings: PurgeSettings) -> Register:
    async def register(server: grpc.aio.Server, res: Resources) -> Sequence[str]:
        builtin = BuiltinProvider(timeout=config.builtin_timeout,
                                  processes=config.analyzer_processes)
        providers: dict[str, Provider] = {"builtin": builtin}
        if config.openai.available:
            providers["openai"] = OpenAIProvider(config.openai)
        peers = Peers(res)
        repo = JobRepository(res.pool)
        cache = ResultCache(res.pool)
        events = Events(res.redis, res.config.redis_prefix, res.keys, peers)
        loader = SourceLoader(peers, config.max_files, config.max_file_bytes)
        executor = JobExecutor(repo, cache, providers, loader, events, config, runner_identity())

        def ready() -> bool:
            return res.health is not None and res.health.migrated

        runner = JobRunner(repo, executor, events, cache, config, res.keys, res.config.redis_url,
                           ready)
        listener = Redis.from_url(res.config.redis_url, socket_connect_timeout=1.0,
                                  socket_timeout=None, socket_keepalive=True)
        app = AiApp(repo, peers, providers, runner, events, config, res.keys, res.redis, listener)
        ai_pb2_grpc.add_AiServiceServicer_to_server(
            AiServiceServicer(app, service_authenticator(res)), server)
        # The runner and the analyzer's worker processes start now; the runner takes
        # jobs once the schema is migrated.
        # Deleted sessions: their jobs go (running ones are cut), also when ai was down.
        purge = SessionPurge(repo, lambda job_id: runner.request_cancel(res.redis, job_id),
                             purge_settings.keep_seconds)
        tasks = [asyncio.create_task(runner.run(), name="ai-runner"),
                 asyncio.create_task(builtin.warm_up(), name="ai-warm-up"),
                 asyncio.create_task(run_purge(res, PURGE_GROUP, purge, purge_settings), name="ai-purge")]

        async def close() -> None:
            # Running jobs are released (queued again or failed) before the pool closes.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for provider in providers.values():
                with contextlib.suppress(Exception):
                    await provider.close()
            await listener.aclose()

        res.closers.append(close)
        return [SERVICE_NAME]

    return register


def build_spec(env: Env, config: CommonConfig) -> ServiceSpec:
    ai_config = AiConfig.from_env(env)
    purge_settings = PurgeSettings.from_env(env)
    return ServiceSpec(
        name="ai",
        schema="ai",
        migrations=lambda: load_migrations("services.ai.migrations"),
        grpc_port=env.port("AI_GRPC_PORT", 50054),
        metrics_port=env.port("AI_METRICS_PORT", 9104),
        register=_registrar(ai_config, purge_settings),
    )
