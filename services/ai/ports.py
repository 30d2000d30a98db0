"""What the ai use cases need from the outside world, as typing.Protocol interfaces."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from services.ai.domain import (
    FileContent,
    Finding,
    Job,
    JobKind,
    JobStatus,
    ReviewInfo,
    Sources,
)
from services.common.membership import Membership


class JobStore(Protocol):
    """The jobs and their findings, shared by every ai replica (PostgreSQL)."""

    async def create(self, job: Job, per_user_limit: int, per_session_limit: int,
                     retry_after: int) -> Job:
        """Store a queued job; ResourceExhausted past the user's or the session's limit."""
        ...

    async def get(self, job_id: str) -> Job | None:
        """The job with its findings."""
        ...

    async def list_jobs(self, *, session_id: str, review_id: str | None, kind: JobKind | None,
                        limit: int, after: tuple[datetime, str] | None) -> list[Job]:
        """Newest first, after a (created_at, id) cursor, each with its findings."""
        ...

    async def status(self, job_id: str) -> JobStatus | None: ...

    async def findings_after(self, job_id: str, after: int) -> list[tuple[int, Finding]]: ...

    async def cancel_queued(self, job_id: str) -> Job | None:
        """Cancel the job if it is still queued (then it is returned)."""
        ...

    async def request_cancel(self, job_id: str) -> bool:
        """Flag a running job for cancellation; False when it is not running."""
        ...


class RunStore(Protocol):
    """What running one job writes: its findings, its end, and the result cache."""

    async def add_finding(self, job_id: str, runner: str, index: int, finding: Finding) -> bool:
        """Store a finding of a job `runner` holds; False when it no longer holds the job."""
        ...

    async def finish(self, job_id: str, runner: str, status: JobStatus, *, summary: str = "",
                     error: str | None = None, reviewed: int = 0, reused: int = 0) -> Job | None:
        """End a running job of `runner`; None when it is not (any longer) ours to end."""
        ...

    async def release(self, job_id: str, runner: str, max_attempts: int,
                      reason: str) -> Job | None:
        """Give a running job up (this runner is stopping): queued again, or failed."""
        ...

    async def cached_findings(self, provider: str, model: str,
                              keys: Sequence[str]) -> dict[str, list[Finding]]:
        """The cached findings of every key that has an entry."""
        ...

    async def cache_findings(self, provider: str, model: str, key: str,
                             findings: Sequence[Finding]) -> None: ...


class SourceReader(Protocol):
    """What a job reviews (services/ai/sources.py reads it from the peers)."""

    async def load(self, job: Job) -> Sources: ...


class Peers(Protocol):
    """The sessions and review services, asked as the requesting user."""

    async def membership(self, session_id: str, user_id: str) -> Membership | None:
        """The user's role in the session; None when they are not a member (or it is gone)."""
        ...

    async def session_language(self, session_id: str, user_id: str) -> str: ...

    async def document(self, session_id: str, user_id: str) -> str: ...

    async def append_event(self, session_id: str, event_type: str,
                           payload: dict[str, Any]) -> None: ...

    async def review(self, review_id: str, user_id: str) -> ReviewInfo: ...

    async def review_file(self, review_id: str, path: str, user_id: str) -> FileContent: ...


class JobQueue(Protocol):
    """The runners taking queued jobs (services/ai/jobs.py)."""

    def wake(self) -> None:
        """A job was queued: a free worker takes it now rather than at its next poll."""
        ...

    async def request_cancel(self, job_id: str) -> None:
        """Cut a running job wherever it runs."""
        ...


class JobEvents(Protocol):
    """Telling the room and the watchers about a job (services/ai/events.py); a failed
    publish never fails the job."""

    async def finding(self, job: Job, index: int, finding: Finding) -> None: ...

    async def ended(self, job: Job, findings_count: int) -> None: ...


class JobSignal(Protocol):
    async def wait_newer(self, sent: int, timeout: float) -> None:
        """Return once the job's channel tells of a finding after `sent` or of its end,
        or after `timeout` seconds (a publish may be missed: callers re-read the job)."""
        ...


class JobSignals(Protocol):
    def watch(self, job_id: str) -> contextlib.AbstractAsyncContextManager[JobSignal]:
        """Listen to the job's channel (subscribed on entry, before the caller reads what
        is stored, so nothing falls in between)."""
        ...
