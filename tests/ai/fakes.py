"""In-memory implementations of the ai use cases' ports (services/ai/ports.py) and a provider."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.ai.domain import (
    FileContent,
    FileDone,
    Finding,
    Job,
    JobKind,
    JobStatus,
    ReviewInfo,
    SourceFile,
    Sources,
)
from services.ai.providers import ProviderItem
from services.common.errors import NotFound, ResourceExhausted
from services.common.membership import Membership

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class MemoryJobs:
    """JobStore and RunStore over dicts, with the repository's limits and cancel rules."""

    jobs: dict[str, Job] = field(default_factory=dict)
    findings: dict[str, list[Finding]] = field(default_factory=dict)
    cache: dict[tuple[str, str, str], list[Finding]] = field(default_factory=dict)
    cancel_requested: set[str] = field(default_factory=set)

    def _with_findings(self, job: Job) -> Job:
        return replace(job, findings=list(self.findings.get(job.id, [])))

    async def create(self, job: Job, per_user_limit: int, per_session_limit: int,
                     retry_after: int) -> Job:
        active = [j for j in self.jobs.values() if not j.status.terminal]
        if sum(j.requested_by == job.requested_by for j in active) >= per_user_limit:
            raise ResourceExhausted("user limit", retry_after=retry_after)
        if sum(j.session_id == job.session_id for j in active) >= per_session_limit:
            raise ResourceExhausted("session limit", retry_after=retry_after)
        # Distinct, increasing creation times, as the database's now() across requests.
        stored = replace(job, created_at=_EPOCH + timedelta(seconds=len(self.jobs)))
        self.jobs[job.id] = stored
        return stored

    async def get(self, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        return self._with_findings(job) if job else None

    async def list_jobs(self, *, session_id: str, review_id: str | None, kind: JobKind | None,
                        limit: int, after: tuple[datetime, str] | None) -> list[Job]:
        jobs = sorted((j for j in self.jobs.values() if j.session_id == session_id
                       and (review_id is None or j.review_id == review_id)
                       and (kind is None or j.kind is kind)),
                      key=lambda j: (j.created_at or _EPOCH, j.id), reverse=True)
        if after is not None:
            jobs = [j for j in jobs if (j.created_at or _EPOCH, j.id) < after]
        return [self._with_findings(j) for j in jobs[:limit]]

    async def status(self, job_id: str) -> JobStatus | None:
        job = self.jobs.get(job_id)
        return job.status if job else None

    async def findings_after(self, job_id: str, after: int) -> list[tuple[int, Finding]]:
        return [(i, f) for i, f in enumerate(self.findings.get(job_id, [])) if i > after]

    async def cancel_queued(self, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None or job.status is not JobStatus.QUEUED:
            return None
        self.jobs[job_id] = replace(job, status=JobStatus.CANCELLED, error="cancelled")
        return self.jobs[job_id]

    async def request_cancel(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None or job.status is not JobStatus.RUNNING:
            return False
        self.cancel_requested.add(job_id)
        return True

    def set_status(self, job_id: str, status: JobStatus) -> None:
        self.jobs[job_id] = replace(self.jobs[job_id], status=status)

    # RunStore: what running a job writes.

    async def add_finding(self, job_id: str, runner: str, index: int, finding: Finding) -> bool:
        stored = self.findings.setdefault(job_id, [])
        assert index == len(stored)
        stored.append(finding)
        return job_id in self.jobs

    async def finish(self, job_id: str, runner: str, status: JobStatus, *, summary: str = "",
                     error: str | None = None, reviewed: int = 0, reused: int = 0) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None:
            return None
        self.jobs[job_id] = replace(job, status=status, summary=summary, error=error,
                                    files_reviewed=reviewed, files_reused=reused)
        return self._with_findings(self.jobs[job_id])

    async def release(self, job_id: str, runner: str, max_attempts: int,
                      reason: str) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None:
            return None
        self.jobs[job_id] = replace(job, status=JobStatus.QUEUED)
        return self.jobs[job_id]

    async def cached_findings(self, provider: str, model: str,
                              keys: Sequence[str]) -> dict[str, list[Finding]]:
        return {k: list(self.cache[provider, model, k]) for k in keys
                if (provider, model, k) in self.cache}

    async def cache_findings(self, provider: str, model: str, key: str,
                             findings: Sequence[Finding]) -> None:
        self.cache[provider, model, key] = list(findings)


@dataclass
class MemoryPeers:
    """Peers: the sessions and reviews a test declares; anyone else is told NotFound."""

    members: dict[tuple[str, str], Membership] = field(default_factory=dict)
    reviews: dict[str, ReviewInfo] = field(default_factory=dict)
    files: dict[tuple[str, str], FileContent] = field(default_factory=dict)
    languages: dict[str, str] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    async def membership(self, session_id: str, user_id: str) -> Membership | None:
        return self.members.get((session_id, user_id))

    async def session_language(self, session_id: str, user_id: str) -> str:
        return self.languages.get(session_id, "")

    async def document(self, session_id: str, user_id: str) -> str:
        return self.documents.get(session_id, "")

    async def append_event(self, session_id: str, event_type: str,
                           payload: dict[str, Any]) -> None:
        self.events.append((session_id, event_type, payload))

    async def review(self, review_id: str, user_id: str) -> ReviewInfo:
        review = self.reviews.get(review_id)
        # The review service hides reviews from people outside their session.
        if review is None or (review.session_id, user_id) not in self.members:
            raise NotFound("review not found")
        return review

    async def review_file(self, review_id: str, path: str, user_id: str) -> FileContent:
        return self.files[review_id, path]


@dataclass
class RecordingQueue:
    """JobQueue: counts wake-ups and remembers cancel requests."""

    wakes: int = 0
    cancels: list[str] = field(default_factory=list)

    def wake(self) -> None:
        self.wakes += 1

    async def request_cancel(self, job_id: str) -> None:
        self.cancels.append(job_id)


@dataclass
class RecordingEvents:
    """JobEvents: what the room and the watchers were told."""

    findings: list[tuple[str, int, Finding]] = field(default_factory=list)
    ends: list[tuple[str, JobStatus, int]] = field(default_factory=list)

    async def finding(self, job: Job, index: int, finding: Finding) -> None:
        self.findings.append((job.id, index, finding))

    async def ended(self, job: Job, findings_count: int) -> None:
        self.ends.append((job.id, job.status, findings_count))


class _QuietSignal:
    async def wait_newer(self, sent: int, timeout: float) -> None:
        await asyncio.sleep(0)


class QuietSignals:
    """JobSignals that never signal: watchers re-read the store at once."""

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[_QuietSignal]:
        yield _QuietSignal()


@dataclass
class FixedSources:
    """SourceReader: the same files for every job."""

    files: list[SourceFile]

    async def load(self, job: Job) -> Sources:
        return Sources(list(self.files), 0)


@dataclass
class ScriptedProvider:
    """A Provider answering with the findings a test gives per path; records what it saw."""

    answers: dict[str, list[Finding]] = field(default_factory=dict)
    seen: list[list[str]] = field(default_factory=list)
    name: str = "builtin"
    model: str = "scripted-1"
    scoped: bool = False

    async def review(self, files: Sequence[SourceFile]) -> AsyncGenerator[ProviderItem, None]:
        self.seen.append([f.path for f in files])
        for source in files:
            for finding in self.answers.get(source.path, []):
                yield finding
            yield FileDone(source.path)

    async def close(self) -> None:
        return None
