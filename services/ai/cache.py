"""The result cache: findings per (provider, model, content key) in PostgreSQL, shared by replicas."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from services.ai.domain import Finding
from services.common import metrics
from services.common.grpcserver import Pool

CACHE_NAME = "ai_results"


class ResultCache:
    """A file reviewed once by a provider and model is not sent to it again while cached."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def get_many(self, provider: str, model: str,
                       keys: Sequence[str]) -> dict[str, list[Finding]]:
        """The cached findings of every key that has an entry (and mark those entries used)."""
        if not keys:
            return {}
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE result_cache SET used_at = now() WHERE provider = %s AND model = %s"
                " AND content_key = ANY(%s) RETURNING content_key, findings",
                (provider, model, list(keys)))
            rows = await cur.fetchall()
        found = {row["content_key"]: [Finding.from_stored(item) for item in row["findings"]]
                 for row in rows}
        hits = sum(1 for key in keys if key in found)
        if hits:
            metrics.CACHE_REQUESTS.labels(CACHE_NAME, "hit").inc(hits)
        if len(keys) - hits:
            metrics.CACHE_REQUESTS.labels(CACHE_NAME, "miss").inc(len(keys) - hits)
        return found

    async def put(self, provider: str, model: str, key: str, findings: Sequence[Finding]) -> None:
        payload = orjson.dumps([f.stored() for f in findings]).decode()
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO result_cache (provider, model, content_key, findings)"
                " VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (provider, model, content_key)"
                " DO UPDATE SET findings = EXCLUDED.findings, used_at = now()",
                (provider, model, key, payload))

    async def prune(self, older_than: float) -> int:
        """Drop entries nobody used for `older_than` seconds; how many went."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM result_cache WHERE used_at < now() - make_interval(secs => %s::float8)",
                (older_than,))
            return cur.rowcount
