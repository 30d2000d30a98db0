"""Composition root of the auth service: settings, store, keys, GitHub client, servicer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc

from services.auth.crypto import Sealer
from services.auth.domain import AuthDomain
from services.auth.github import GitHubOAuth
from services.auth.keys import SigningKeys
from services.auth.repository import AuthRepository
from services.auth.servicer import AuthServiceServicer
from services.auth.settings import AuthSettings
from services.common.config import CommonConfig, Env
from services.common.db import load_migrations
from services.common.grpcserver import Resources, ServiceSpec
from services.common.identity import Authenticator, TokenVerifier
from services.common.lazyhttp import LazyHttpClient

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


def build_spec(env: Env, config: CommonConfig) -> ServiceSpec:
    settings = AuthSettings.from_env(env)

    async def register(server: grpc.aio.Server, res: Resources) -> Sequence[str]:
        sealer = Sealer(settings.encryption_key)
        keys = SigningKeys(res.pool, sealer, config.jwt_issuer, config.jwt_audience,
                           settings.access_ttl)

        def make_http() -> httpx.AsyncClient:
            import httpx  # noqa: PLC0415 - made with the first login, not at start-up

            return httpx.AsyncClient(timeout=httpx.Timeout(settings.http_timeout, connect=3.0),
                                     headers={"User-Agent": "tandem-auth"})

        http = LazyHttpClient(make_http)
        res.closers.append(http.aclose)
        github = GitHubOAuth(http, settings.github_oauth_url, settings.github_api_url,
                             settings.github_client_id, settings.github_client_secret)
        domain = AuthDomain(settings, AuthRepository(res.pool), keys, github, res.redis,
                            res.keys, sealer)

        async def own_jwks() -> str:
            return keys.jwks_json.decode()

        verifier = TokenVerifier(own_jwks, config.jwt_issuer, config.jwt_audience,
                                 min_refresh_interval=1.0)
        authn = Authenticator(verifier, config.service_token)
        auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServiceServicer(domain, keys, authn), server)

        async def keys_ready() -> str | None:
            # Not SERVING until a key signs: a login must never fail for want of one.
            if not keys.can_sign:
                await keys.ensure_active()
                await verifier.refresh(force=True)
            return None

        res.ready_checks["signing_keys"] = keys_ready

        async def keys_loop() -> None:
            await keys.reload_forever()

        task = asyncio.create_task(keys_loop(), name="auth-keys")

        async def stop_task() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        res.closers.append(stop_task)
        return [SERVICE_NAME]

    return ServiceSpec(
        name="auth",
        schema="auth",
        migrations=lambda: load_migrations("services.auth.migrations"),
        grpc_port=env.port("AUTH_GRPC_PORT", 50051),
        metrics_port=env.port("AUTH_METRICS_PORT", 9101),
        register=register,
    )
