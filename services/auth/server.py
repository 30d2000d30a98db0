"""Composition root of the auth service: config, repository, keys, GitHub client, use cases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc

from services.auth.config import AuthConfig
from services.auth.crypto import Sealer
from services.auth.github import GitHubOAuth
from services.auth.keys import SigningKeys
from services.auth.repository import AuthRepository
from services.auth.servicer import AuthServicer
from services.auth.states import RedisLoginStates
from services.auth.usecases import AuthUseCases
from services.common.config import CommonConfig, Env
from services.common.db import load_migrations
from services.common.grpcserver import Resources, ServiceSpec
from services.common.identity import Authenticator, TokenVerifier
from services.common.lazyhttp import LazyHttpClient

if TYPE_CHECKING:
    import httpx

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


class _Wired:
    """register() builds the keys; the background loop (the kit starts it after) reloads them."""

    keys: SigningKeys | None = None

    def get(self) -> SigningKeys:
        if self.keys is None:
            raise RuntimeError("register() has not run")
        return self.keys


def build_spec(env: Env, config: CommonConfig) -> ServiceSpec:
    auth_config = AuthConfig.from_env(env)
    wired = _Wired()

    async def register(server: grpc.aio.Server, res: Resources) -> Sequence[str]:
        sealer = Sealer(auth_config.encryption_key)
        repo = AuthRepository(res.pool)
        keys = SigningKeys(repo, sealer, config.jwt_issuer, config.jwt_audience,
                           auth_config.access_ttl)
        wired.keys = keys

        def make_http() -> httpx.AsyncClient:
            import httpx  # noqa: PLC0415 - made with the first login, not at start-up

            return httpx.AsyncClient(timeout=httpx.Timeout(auth_config.http_timeout, connect=3.0),
                                     headers={"User-Agent": "tandem-auth"})

        http = LazyHttpClient(make_http)
        res.closers.append(http.aclose)
        github = GitHubOAuth(http, auth_config.github_oauth_url, auth_config.github_api_url,
                             auth_config.github_client_id, auth_config.github_client_secret)
        usecases = AuthUseCases(auth_config, repo, keys, github,
                                RedisLoginStates(res.redis, res.keys), sealer)

        async def own_jwks() -> str:
            return keys.jwks_json.decode()

        verifier = TokenVerifier(own_jwks, config.jwt_issuer, config.jwt_audience,
                                 min_refresh_interval=1.0)
        authn = Authenticator(verifier, config.service_token)
        auth_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthServicer(usecases, keys, authn), server)

        async def keys_ready() -> str | None:
            # Not SERVING until a key signs: a login must never fail for want of one.
            if not keys.can_sign:
                await keys.ensure_active()
                await verifier.refresh(force=True)
            return None

        res.ready_checks["signing_keys"] = keys_ready
        return [SERVICE_NAME]

    async def reload_keys(res: Resources) -> None:
        # Picks up keys other replicas created or rotated.
        await wired.get().reload_forever()

    return ServiceSpec(
        name="auth",
        schema="auth",
        migrations=lambda: load_migrations("services.auth.migrations"),
        grpc_port=env.port("AUTH_GRPC_PORT", 50051),
        metrics_port=env.port("AUTH_METRICS_PORT", 9101),
        register=register,
        background=(reload_keys,),
    )
