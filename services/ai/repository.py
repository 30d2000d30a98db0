"""All SQL of the ai service: jobs and findings (the queue, heartbeats, limits, recovery), the
result cache, deleted sessions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from services.ai.domain import Finding, Job, JobKind, JobStatus, severity
from services.common import metrics
from services.common.errors import ResourceExhausted
from services.common.grpcserver import Pool

# The result cache's name in the cache metrics.
CACHE_NAME = "ai_results"

# First key of the two-key advisory locks that serialize one user's (one session's)
# job creation (the second is a hash of the id); classes of their own avoid other locks.
_USER_LOCK_CLASS = 0x7A1
_SESSION_LOCK_CLASS = 0x7A2
# Claims take turns (every replica's workers): the fair order counts running jobs, and two
# claims reading one snapshot would both see a user at 0 and both take that user's jobs.
_CLAIM_LOCK_CLASS = 0x7A3
_JOB_COLUMNS = """id::text, session_id::text, review_id::text, kind, paths, requested_by::text,
    provider, model, status, summary, error, files_reviewed, files_reused, attempts,
    created_at, started_at, finished_at"""
# A job leaves `running` without finishing when its runner stops: cancelled if a
# member asked for that, queued again if it streamed nothing yet and has
# attempts left (nobody saw any of it), failed otherwise (its findings stay).
_RELEASE = f"""
    UPDATE jobs j SET
        status = CASE WHEN t.cancel_requested THEN 'cancelled'
                      WHEN t.retry THEN 'queued' ELSE 'failed' END,
        error = CASE WHEN t.cancel_requested THEN 'cancelled'
                     WHEN t.retry THEN NULL ELSE %(reason)s END,
        finished_at = CASE WHEN t.retry AND NOT t.cancel_requested THEN NULL ELSE now() END,
        runner = NULL, heartbeat_at = NULL
    FROM target t WHERE j.id = t.id
    RETURNING {", ".join("j." + c.strip() for c in _JOB_COLUMNS.split(","))}"""
_TARGET = """
    SELECT id, cancel_requested,
           attempts < %(max_attempts)s
           AND NOT EXISTS (SELECT 1 FROM findings f WHERE f.job_id = jobs.id) AS retry
    FROM jobs"""


# The next job a free worker takes: fair shares, not first come first served. Users
# with fewer jobs running go first, then sessions with fewer running, then the user
# served longest ago (a user never served first), and only then the oldest job. So a
# user who queued many jobs gets one turn, then everyone else waiting gets theirs.
_CLAIM = f"""
    UPDATE jobs SET status = 'running', runner = %(runner)s, attempts = attempts + 1,
        started_at = coalesce(started_at, now()), heartbeat_at = now()
    WHERE id = (
        SELECT q.id FROM jobs q WHERE q.status = 'queued'
        ORDER BY
            (SELECT count(*) FROM jobs r
             WHERE r.requested_by = q.requested_by AND r.status = 'running'),
            (SELECT count(*) FROM jobs r
             WHERE r.session_id = q.session_id AND r.status = 'running'),
            (SELECT max(s.started_at) FROM jobs s WHERE s.requested_by = q.requested_by)
                NULLS FIRST,
            q.created_at, q.id
        LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING {_JOB_COLUMNS},
        extract(epoch FROM started_at + make_interval(secs => %(deadline)s) - now())::float8
            AS seconds_left"""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job a runner took, and how much of its deadline is left (negative: none)."""

    job: Job
    seconds_left: float


def job_from_row(row: dict[str, Any], findings: Sequence[Finding] = ()) -> Job:
    return Job(
        id=row["id"], session_id=row["session_id"], review_id=row["review_id"],
        kind=JobKind(row["kind"]), paths=tuple(row["paths"] or ()),
        requested_by=row["requested_by"], provider=row["provider"], model=row["model"],
        status=JobStatus(row["status"]), summary=row["summary"], error=row["error"],
        created_at=row["created_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], files_reviewed=row["files_reviewed"],
        files_reused=row["files_reused"], attempts=row["attempts"], findings=list(findings))


def finding_from_row(row: dict[str, Any]) -> Finding:
    return Finding(path=row["path"], line=row["line"], end_line=row["end_line"],
                   severity=severity(row["severity"]), category=row["category"],
                   message=row["message"], suggestion=row["suggestion"], source=row["source"])


class AiRepository:
    """Jobs and the result cache in PostgreSQL: several ai replicas share them safely."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def create(self, job: Job, per_user_limit: int, per_session_limit: int,
                     retry_after: int) -> Job:
        """Insert a queued job unless the user already has `per_user_limit` unfinished ones,
        or the session `per_session_limit` (however many people asked for them)."""
        async with self._pool.connection() as conn, conn.transaction():
            # Two concurrent requests of one user (or one session) must not both pass the
            # count. Always user first, then session: no two creations wait on each other.
            await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                               (_USER_LOCK_CLASS, job.requested_by))
            await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                               (_SESSION_LOCK_CLASS, job.session_id))
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM jobs WHERE requested_by = %s"
                "        AND status IN ('queued', 'running')) AS mine,"
                "       (SELECT count(*) FROM jobs WHERE session_id = %s"
                "        AND status IN ('queued', 'running')) AS session",
                (job.requested_by, job.session_id))
            row = await cur.fetchone()
            active = int(row["mine"]) if row else 0
            in_session = int(row["session"]) if row else 0
            if active >= per_user_limit:
                raise ResourceExhausted(
                    f"you already have {active} AI reviews queued or running (limit "
                    f"{per_user_limit}); try again when one finishes", retry_after=retry_after)
            if in_session >= per_session_limit:
                raise ResourceExhausted(
                    f"this session already has {in_session} AI reviews queued or running "
                    f"(limit {per_session_limit}); try again when one finishes",
                    retry_after=retry_after)
            cur = await conn.execute(
                f"INSERT INTO jobs (id, session_id, review_id, kind, paths, requested_by, provider,"
                f" model, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'queued')"
                f" RETURNING {_JOB_COLUMNS}",
                (job.id, job.session_id, job.review_id, job.kind.value, list(job.paths),
                 job.requested_by, job.provider, job.model))
            created = await cur.fetchone()
        assert created is not None  # noqa: S101 - INSERT ... RETURNING always returns the row
        return job_from_row(created)

    async def get(self, job_id: str) -> Job | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
            row = await cur.fetchone()
            if row is None:
                return None
            cur = await conn.execute(
                "SELECT path, line, end_line, severity, category, message, suggestion, source"
                " FROM findings WHERE job_id = %s ORDER BY idx", (job_id,))
            findings = [finding_from_row(r) for r in await cur.fetchall()]
        return job_from_row(row, findings)

    async def list_jobs(self, *, session_id: str, review_id: str | None, kind: JobKind | None,
                        limit: int, after: tuple[datetime, str] | None) -> list[Job]:
        """A session's jobs (or one review's), newest first, after a (created_at, id) keyset
        cursor, each with its findings: two queries in all."""
        where = ["session_id = %s"]
        params: list[Any] = [session_id]
        if review_id is not None:
            where.append("review_id = %s")
            params.append(review_id)
        if kind is not None:
            where.append("kind = %s")
            params.append(kind.value)
        if after is not None:
            where.append("(created_at, id) < (%s, %s)")
            params.extend(after)
        params.append(limit)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)}"
                " ORDER BY created_at DESC, id DESC LIMIT %s", params)
            rows = await cur.fetchall()
            if not rows:
                return []
            cur = await conn.execute(
                "SELECT job_id::text, path, line, end_line, severity, category, message,"
                " suggestion, source FROM findings WHERE job_id = ANY(%s) ORDER BY job_id, idx",
                ([r["id"] for r in rows],))
            findings: dict[str, list[Finding]] = {}
            for r in await cur.fetchall():
                findings.setdefault(r["job_id"], []).append(finding_from_row(r))
        return [job_from_row(row, findings.get(row["id"], ())) for row in rows]

    async def status(self, job_id: str) -> JobStatus | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT status FROM jobs WHERE id = %s", (job_id,))
            row = await cur.fetchone()
        return JobStatus(row["status"]) if row else None

    async def findings_after(self, job_id: str, after: int) -> list[tuple[int, Finding]]:
        """(index, finding) with index > `after`, in order."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT idx, path, line, end_line, severity, category, message, suggestion, source"
                " FROM findings WHERE job_id = %s AND idx > %s ORDER BY idx", (job_id, after))
            return [(r["idx"], finding_from_row(r)) for r in await cur.fetchall()]

    async def claim(self, runner: str, deadline: float) -> Claimed | None:
        """Take the next queued job in fair order (see _CLAIM) for `runner`; None when the
        queue is empty. `deadline` seconds count from the job's first start."""
        async with self._pool.connection() as conn, conn.transaction():
            # Held to the commit: the next claim's statement starts after it and sees this one.
            await conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_CLAIM_LOCK_CLASS,))
            cur = await conn.execute(_CLAIM, {"runner": runner, "deadline": deadline})
            row = await cur.fetchone()
        return Claimed(job_from_row(row), float(row["seconds_left"])) if row else None

    async def heartbeat(self, job_id: str, runner: str) -> bool | None:
        """Mark the job alive; whether a cancel was asked, or None when it is no longer ours."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE jobs SET heartbeat_at = now() WHERE id = %s AND runner = %s"
                " AND status = 'running' RETURNING cancel_requested", (job_id, runner))
            row = await cur.fetchone()
        return bool(row["cancel_requested"]) if row else None

    async def add_finding(self, job_id: str, runner: str, index: int, finding: Finding) -> bool:
        """Store a finding of a job `runner` holds; False when it no longer holds the job."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO findings (job_id, idx, path, line, end_line, severity, category,"
                " message, suggestion, source)"
                " SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM jobs"
                " WHERE id = %s AND runner = %s AND status = 'running'",
                (job_id, index, finding.path, finding.line, finding.end_line, finding.severity,
                 finding.category, finding.message, finding.suggestion, finding.source, job_id,
                 runner))
            return cur.rowcount == 1

    async def finish(self, job_id: str, runner: str, status: JobStatus, *, summary: str = "",
                     error: str | None = None, reviewed: int = 0, reused: int = 0) -> Job | None:
        """End a running job of `runner`; None when it is not (any longer) ours to end."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE jobs SET status = %s, summary = %s, error = %s, files_reviewed = %s,"
                " files_reused = %s, finished_at = now(), heartbeat_at = NULL"
                " WHERE id = %s AND runner = %s AND status = 'running'"
                f" RETURNING {_JOB_COLUMNS}",
                (status.value, summary, error, reviewed, reused, job_id, runner))
            row = await cur.fetchone()
        return job_from_row(row) if row else None

    async def cancel_queued(self, job_id: str) -> Job | None:
        """Cancel a job nobody has started; None when it is not queued."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE jobs SET status = 'cancelled', error = 'cancelled', finished_at = now()"
                f" WHERE id = %s AND status = 'queued' RETURNING {_JOB_COLUMNS}", (job_id,))
            row = await cur.fetchone()
        return job_from_row(row) if row else None

    async def request_cancel(self, job_id: str) -> bool:
        """Flag a running job for cancellation (its runner notices at the next heartbeat)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE jobs SET cancel_requested = true WHERE id = %s AND status = 'running'"
                " RETURNING id", (job_id,))
            return await cur.fetchone() is not None

    async def release(self, job_id: str, runner: str, max_attempts: int, reason: str) -> Job | None:
        """Give a running job up (this runner is stopping): queued again, or failed."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"WITH target AS ({_TARGET} WHERE id = %(id)s AND runner = %(runner)s"
                f" AND status = 'running' FOR UPDATE) {_RELEASE}",
                {"id": job_id, "runner": runner, "max_attempts": max_attempts, "reason": reason})
            row = await cur.fetchone()
        return job_from_row(row) if row else None

    async def reap(self, stale_after: float, max_attempts: int, reason: str) -> list[Job]:
        """Recover jobs whose runner stopped beating (a crashed or partitioned replica)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"WITH target AS ({_TARGET} WHERE status = 'running'"
                " AND heartbeat_at < now() - make_interval(secs => %(stale)s::float8)"
                f" FOR UPDATE SKIP LOCKED) {_RELEASE}",
                {"stale": stale_after, "max_attempts": max_attempts, "reason": reason})
            return [job_from_row(r) for r in await cur.fetchall()]

    # --- deleted sessions --------------------------------------------------------------

    async def purge_session(self, session_id: str) -> list[str]:
        """Forget a deleted session: its jobs go, with their findings. Idempotent; returns
        the ids of the jobs that were running, for the caller to cut."""
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("INSERT INTO deleted_sessions (session_id) VALUES (%s)"
                               " ON CONFLICT (session_id) DO NOTHING", (session_id,))
            cur = await conn.execute("DELETE FROM jobs WHERE session_id = %s"
                                     " RETURNING id::text, status", (session_id,))
            return [r["id"] for r in await cur.fetchall() if r["status"] == "running"]

    async def sweep_deleted_sessions(self, keep_seconds: float) -> list[str]:
        """Delete jobs created for a deleted session after its purge and forget deletions
        older than `keep_seconds`; returns the ids of the jobs that were running."""
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute("DELETE FROM jobs j USING deleted_sessions d"
                                     " WHERE j.session_id = d.session_id"
                                     " RETURNING j.id::text, j.status")
            running = [r["id"] for r in await cur.fetchall() if r["status"] == "running"]
            await conn.execute("DELETE FROM deleted_sessions"
                               " WHERE deleted_at < now() - make_interval(secs => %s)",
                               (keep_seconds,))
        return running

    # --- the result cache: findings per (provider, model, content key) ------------------
    # A file reviewed once by a provider and model is not sent to it again while cached.

    async def cached_findings(self, provider: str, model: str,
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

    async def cache_findings(self, provider: str, model: str, key: str,
                             findings: Sequence[Finding]) -> None:
        payload = orjson.dumps([f.stored() for f in findings]).decode()
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO result_cache (provider, model, content_key, findings)"
                " VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (provider, model, content_key)"
                " DO UPDATE SET findings = EXCLUDED.findings, used_at = now()",
                (provider, model, key, payload))

    async def prune_cache(self, older_than: float) -> int:
        """Drop cache entries nobody used for `older_than` seconds; how many went."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM result_cache WHERE used_at < now() - make_interval(secs => %s::float8)",
                (older_than,))
            return cur.rowcount
