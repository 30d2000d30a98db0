"""Shared fixtures: a private database and Redis key prefix per test run, services on port 0."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from scripts.platform import LocalPlatform, python_env
from services.common.config import CommonConfig, Env
from services.common.grpcserver import ServiceRuntime
from tests.helpers.services import serving

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def _with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


@pytest.fixture(scope="session")
def run_id() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_PG


@pytest.fixture(scope="session")
def database_url(pg_server_url: str, run_id: str) -> Iterator[str]:
    """A database of this run's own, dropped at the end: parallel runs cannot collide."""
    name = f"tandem_test_{run_id}"
    admin_url = _with_db(pg_server_url, "postgres")
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.exit(f"PostgreSQL at {admin_url} does not answer ({exc}); run `make test`, "
                    "which starts a private one when none answers", returncode=3)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(pg_server_url, name)
    with contextlib.suppress(psycopg.Error), psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_REDIS
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.exit(f"Redis at {url} does not answer ({exc}); run `make test`, which starts "
                    "a private one when none answers", returncode=3)
    return url


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str, run_id: str) -> Iterator[str]:
    prefix = f"tandem-test-{run_id}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def base_env(database_url: str, redis_url: str, redis_prefix: str) -> dict[str, str]:
    """Environment for a platform under test (processes or in-process runtimes)."""
    env = python_env()
    for key in list(env):
        # Never let the developer's own settings leak into a test platform.
        if key.startswith(("GITHUB_", "OPENAI_", "AI_", "GATEWAY_", "AUTH_", "SESSIONS_",
                           "REVIEW_")) or key in ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX"):
            del env[key]
    env.update({
        # Development mode (local default secrets, reflection on), as `make run`; tests of
        # production behaviour set TANDEM_ENV themselves.
        "TANDEM_ENV": "development",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": redis_prefix,
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "json",
        "HEALTH_INTERVAL_SECONDS": "0.5",
        "SHUTDOWN_GRACE_SECONDS": "2",
        "SERVICE_TOKEN": "test-service-token-" + secrets.token_hex(8),
        "TOKEN_ENCRYPTION_KEY": "7cXu5YdQz8yT4vVnqkR9cH1o0mQmJb5q3VtQ0y2Lw8c=",
        "ACCESS_LOG": "false",
        # Several platforms and in-process services run at once in a test run; small pools
        # keep them well inside PostgreSQL's default max_connections (100).
        "DB_POOL_MAX": "4",
        # Every test signs in from 127.0.0.1: the per-IP auth limit would trip across the
        # run. Tests of the limits start platforms of their own with small ones.
        "RATE_LIMIT_AUTH_PER_MINUTE": "100000",
        "RATE_LIMIT_USER_PER_MINUTE": "100000",
    })
    # Tests calling services directly present this run's credential as the gateway does:
    # SignedIn.metadata and tests.helpers.identity.gateway_metadata read it from here.
    os.environ["SERVICE_TOKEN"] = env["SERVICE_TOKEN"]
    return env


@pytest.fixture(scope="session")
def platform(base_env: dict[str, str]) -> Iterator[LocalPlatform]:
    """One platform of real processes shared by the end-to-end tests of a run (one per run:
    each platform holds database connections, so folders must not start their own copy)."""
    plat = LocalPlatform.create(base_env)
    with plat:
        plat.wait_ready(90)
        yield plat


RuntimeFactory = Callable[..., contextlib.AbstractAsyncContextManager[ServiceRuntime]]


@pytest.fixture
async def github_standin() -> AsyncIterator[str]:
    """The GitHub stand-in in-process on a free port; yields its base URL."""
    from standins.github.app import create_app
    from standins.github.config import StandinConfig

    # Every instance gives a login the same id (derived from it, as across restarts), so
    # the same login in two tests of a run is the same Tandem user, as with GitHub.
    async with serving(create_app(StandinConfig())) as url:
        yield url


@dataclass
class Stack:
    """In-process services wired to each other (and to the GitHub stand-in) on free ports."""

    env: dict[str, str]
    runtimes: dict[str, ServiceRuntime]

    def addr(self, name: str) -> str:
        return f"127.0.0.1:{self.runtimes[name].grpc_port}"


@pytest.fixture
def stack(
    service_runtime: RuntimeFactory, github_standin: str, base_env: dict[str, str]
) -> Callable[..., contextlib.AbstractAsyncContextManager[Stack]]:
    """Start the named services in-process (auth always first), wired together."""

    @contextlib.asynccontextmanager
    async def start(*names: str, **overrides: Any) -> AsyncIterator[Stack]:
        env = {"GITHUB_OAUTH_URL": github_standin, "GITHUB_API_URL": github_standin,
               "GITHUB_CLIENT_ID": "tandem-local", "GITHUB_CLIENT_SECRET": "tandem-local-secret",
               **{k: str(v) for k, v in overrides.items()}}
        runtimes: dict[str, ServiceRuntime] = {}
        async with contextlib.AsyncExitStack() as exits:
            for name in ("auth", *[n for n in names if n != "auth"]):
                runtime = await exits.enter_async_context(service_runtime(name, **env))
                runtimes[name] = runtime
                env[f"{name.upper()}_ADDR"] = f"127.0.0.1:{runtime.grpc_port}"
            yield Stack(env=env, runtimes=runtimes)

    return start


@pytest.fixture
def service_runtime(base_env: dict[str, str]) -> RuntimeFactory:
    """Start a service in-process on port 0 over the run's PostgreSQL and Redis."""

    @contextlib.asynccontextmanager
    async def start(name: str, **overrides: Any) -> AsyncIterator[ServiceRuntime]:
        values = {**base_env, f"{name.upper()}_GRPC_PORT": "0", f"{name.upper()}_METRICS_PORT": "0"}
        values.update({k: str(v) for k, v in overrides.items()})
        env = Env(values)
        config = CommonConfig.from_env(env)
        spec = import_module(f"services.{name}.server").build_spec(env, config)
        runtime = ServiceRuntime(spec, config)
        await runtime.start()
        try:
            yield runtime
        finally:
            await runtime.stop(grace=0.5)

    return start
