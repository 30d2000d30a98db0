"""A private platform for one soak run: its own database and Redis prefix, removed after."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator

import psycopg
import redis

from bench.local import DEFAULT_PG, DEFAULT_REDIS, READY_TIMEOUT, bench_env, shielded, with_db
from scripts.platform import LocalPlatform


class SoakError(RuntimeError):
    """A one-line reason the soak cannot run."""


@contextlib.contextmanager
def soak_platform() -> Iterator[LocalPlatform]:
    """Every process on a fresh database (tandem_soak_<id>); stopped and dropped however we leave."""
    source = dict(os.environ)
    server = source.get("DATABASE_URL") or DEFAULT_PG
    redis_url = source.get("REDIS_URL") or DEFAULT_REDIS
    run_id = secrets.token_hex(4)
    dbname, prefix = f"tandem_soak_{run_id}", f"tandem-soak-{run_id}:"
    admin_url = with_db(server, "postgres")
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{dbname}"')
    except (redis.RedisError, psycopg.OperationalError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SoakError(f"PostgreSQL or Redis does not answer ({reason}); `make soak` starts "
                        "private ones when none answer") from None
    try:
        # The bench's environment: the developer's GitHub/LLM settings never leak in, and the
        # per-user limits are out of the way (the soak's people share one IP).
        env = bench_env(source, with_db(server, dbname), redis_url, prefix)
        platform = LocalPlatform.create(env)
        try:
            print(f"==> starting the platform (database {dbname}, logs in {platform.log_dir})",
                  file=sys.stderr)
            platform.start()
            try:
                platform.wait_ready(READY_TIMEOUT)
            except TimeoutError as exc:
                raise SoakError(str(exc)) from None
            yield platform
        finally:
            print("==> stopping the platform", file=sys.stderr)
            with shielded():
                platform.stop_all()
    finally:
        with shielded():
            _drop(admin_url, dbname, redis_url, prefix)


def _drop(admin_url: str, dbname: str, redis_url: str, prefix: str) -> None:
    # Best effort: a leftover must never hide the soak's own result.
    with contextlib.suppress(psycopg.Error), psycopg.connect(admin_url, autocommit=True,
                                                             connect_timeout=3) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])

