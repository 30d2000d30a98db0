"""A private platform for one benchmark run: its own database and Redis prefix, removed after."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

from scripts.platform import LocalPlatform, python_env

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
READY_TIMEOUT = 90.0


class BenchError(RuntimeError):
    """A one-line reason the benchmark cannot run."""


def with_db(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def bench_env(source: Mapping[str, str], database_url: str, redis_url: str,
              redis_prefix: str) -> dict[str, str]:
    """The platform's environment: the developer's own GitHub/LLM settings never leak in."""
    env = python_env()
    env.update({k: v for k, v in source.items() if k not in env})
    for key in list(env):
        if key.startswith(("GITHUB_", "OPENAI_", "AI_", "GATEWAY_", "AUTH_", "SESSIONS_",
                           "REVIEW_")):
            del env[key]
    env.update({
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": redis_prefix,
        "LOG_LEVEL": "warning",
        "ACCESS_LOG": "false",
        # Limits high enough never to trip, so the limiter's Redis round trip is still paid.
        "RATE_LIMIT_USER_PER_MINUTE": "100000000",
        "RATE_LIMIT_AUTH_PER_MINUTE": "100000000",
    })
    # Fresh per run: the stored data is thrown away with the database anyway.
    env.setdefault("TOKEN_ENCRYPTION_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    return env


@contextlib.contextmanager
def private_platform(source: Mapping[str, str] | None = None, *,
                     label: str = "bench") -> Iterator[LocalPlatform]:
    """Start the platform on a fresh database; stop it and drop the data however we leave.

    `label` names the run's database and key prefix (tandem_<label>_<id>) and the make
    target in error messages; `make soak` uses the same platform with label "soak".
    """
    source = dict(os.environ if source is None else source)
    server = source.get("DATABASE_URL") or DEFAULT_PG
    redis_url = source.get("REDIS_URL") or DEFAULT_REDIS
    run_id = secrets.token_hex(4)
    dbname, prefix = f"tandem_{label}_{run_id}", f"tandem-{label}-{run_id}:"
    admin_url = with_db(server, "postgres")
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis at {redis_url} does not answer ({exc}); `make {label}` starts "
                         "one when none answers") from None
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{dbname}"')
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BenchError(f"PostgreSQL at {admin_url} does not answer ({reason}); `make {label}` "
                         "starts one when none answers") from None
    try:
        env = bench_env(source, with_db(server, dbname), redis_url, prefix)
        platform = LocalPlatform.create(env)
        try:
            print(f"==> starting the platform (database {dbname}, logs in {platform.log_dir})",
                  file=sys.stderr)
            platform.start()
            try:
                platform.wait_ready(READY_TIMEOUT)
            except TimeoutError as exc:
                raise BenchError(str(exc)) from None
            yield platform
        finally:
            print("==> stopping the platform", file=sys.stderr)
            with shielded():
                platform.stop_all()
    finally:
        with shielded():
            _drop(admin_url, dbname, redis_url, prefix)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Ignore Ctrl-C/SIGTERM while cleaning up: a second Ctrl-C must not orphan processes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _drop(admin_url: str, dbname: str, redis_url: str, prefix: str) -> None:
    # Best effort: a leftover must never hide the run's own result or error.
    with contextlib.suppress(psycopg.Error), psycopg.connect(admin_url, autocommit=True,
                                                             connect_timeout=3) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
