"""PostgreSQL access: one async pool per service, its own schema, migrations under a lock."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

# The database is down or saturated: what code around a query treats as the dependency's
# failure (UNAVAILABLE, the gateway answers 503; the caller may retry later) rather than a bug.
# The one tuple of the tree, as REDIS_ERRORS is for Redis.
DB_ERRORS = (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg_pool.TooManyRequests)

_MIGRATION_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(package: str) -> list[Migration]:
    """Read numbered plain-SQL files (`001_init.sql`, ...) shipped in a package folder."""
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in {package}: {versions}")
    return found


def _lock_key(schema: str) -> int:
    # pg_advisory_lock takes a signed 64-bit key; derive a stable one per schema.
    digest = hashlib.sha256(f"tandem.migrate.{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def migrate(database_url: str, schema: str, migrations: list[Migration],
                  connect_timeout: float = 5.0) -> list[str]:
    """Apply pending migrations in order; replicas starting together serialize on a lock.

    Returns the names applied by this call (empty when another replica did the work).
    """
    applied: list[str] = []
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, connect_timeout=max(1, int(connect_timeout))
    ) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_lock_key(schema),))
        try:
            await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(sql.Identifier(schema))
            )
            cur = await conn.execute(
                sql.SQL("SELECT version FROM {}.schema_migrations").format(sql.Identifier(schema))
            )
            done = {row[0] for row in await cur.fetchall()}
            for migration in migrations:
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(
                        sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema))
                    )
                    await conn.execute(migration.sql.encode())
                    await conn.execute(
                        sql.SQL("INSERT INTO {}.schema_migrations (version, name) VALUES (%s, %s)")
                        .format(sql.Identifier(schema)),
                        (migration.version, migration.name),
                    )
                applied.append(migration.name)
                log.info("applied migration", extra={"schema": schema, "migration": migration.name})
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_lock_key(schema),))
    return applied


def create_pool(database_url: str, schema: str, min_size: int, max_size: int,
                name: str) -> AsyncConnectionPool[psycopg.AsyncConnection[dict[str, Any]]]:
    """A closed pool whose connections use the service's schema and return dict rows.

    The caller opens it with `open(wait=False)` so a database that is down at
    start-up does not stop the process: connections are made when it returns.
    """
    return AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        name=name,
        timeout=3.0,
        # Keep trying to reconnect for as long as the outage lasts.
        reconnect_timeout=3600.0,
        max_idle=300.0,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "options": f"-c search_path={schema}",
            "connect_timeout": 3,
            # Prepared statements cut parse/plan work on the hot queries.
            "prepare_threshold": 2,
        },
        connection_class=psycopg.AsyncConnection[dict[str, Any]],
    )
