"""The ai service's operations: who may ask for a review, read a job, cancel or watch it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence

from services.ai.config import PROVIDERS, AiConfig
from services.ai.domain import (
    Finding,
    Job,
    JobKind,
    JobStatus,
    check_paths,
    new_job,
    page_size,
    parse_uuid,
)
from services.ai.ports import JobEvents, JobQueue, JobSignals, JobStore, Peers
from services.ai.providers import Provider
from services.common import metrics
from services.common.context import session_id_var
from services.common.cursors import decode_cursor, encode_cursor
from services.common.errors import (
    Conflict,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.common.identity import Caller
from services.common.membership import Membership

log = logging.getLogger(__name__)

# What a client is told to wait before asking again beyond the per-user or per-session limit.
LIMIT_RETRY_AFTER = 5
# How long CancelJob waits for a running job to stop before answering.
CANCEL_WAIT = 3.0
# WatchJob re-reads the job this often when nothing arrives (a missed publish).
WATCH_RECHECK = 1.0

WatchItem = tuple[int, Finding] | Job


class AiUseCases:
    """Authorization against session membership, limits, and the job queue."""

    def __init__(self, repo: JobStore, peers: Peers, providers: Mapping[str, Provider],
                 queue: JobQueue, events: JobEvents, signals: JobSignals,
                 config: AiConfig) -> None:
        self._repo = repo
        self._events = events
        self._peers = peers
        self._providers = providers
        self._queue = queue
        self._signals = signals
        self._config = config

    def provider(self, name: str) -> Provider:
        """The provider a request names (empty: the configured default)."""
        chosen = name.strip().lower() or self._config.default_provider
        if chosen not in PROVIDERS:
            raise InvalidArgument(f"unknown provider {name!r}", [
                FieldViolation("provider", "must be one of " + ", ".join(PROVIDERS))])
        provider = self._providers.get(chosen)
        if provider is None:
            raise InvalidArgument(f"the {chosen} provider is not configured on this server", [
                FieldViolation("provider", f"{chosen} is not configured on this server")])
        return provider

    async def _member(self, session_id: str, user_id: str, what: str) -> Membership:
        membership = await self._peers.membership(session_id, user_id)
        if membership is None:
            raise NotFound(f"{what} not found")
        return membership

    @staticmethod
    def _may_request(membership: Membership) -> None:
        if membership.role == "viewer":
            raise PermissionDenied("viewers can read AI reviews but not request them")
        if not membership.active:
            raise FailedPrecondition("the session has ended; it is read-only")

    async def _enqueue(self, job: Job) -> Job:
        created = await self._repo.create(job, self._config.max_jobs_per_user,
                                          self._config.max_jobs_per_session, LIMIT_RETRY_AFTER)
        self._queue.wake()
        log.info("job queued", extra={"job_id": created.id, "provider": created.provider,
                                      "kind": created.kind.value})
        return created

    async def create_review_job(self, caller: Caller, review_id: str, paths: Sequence[str],
                                provider_name: str) -> Job:
        user = caller.require_user()
        provider = self.provider(provider_name)
        wanted = check_paths(paths)
        review = await self._peers.review(parse_uuid(review_id, "review"), user)
        session_id_var.set(review.session_id)
        self._may_request(await self._member(review.session_id, user, "review"))
        changed = {f.path for f in review.files if f.status != "removed"}
        unknown = [(i, p) for i, p in enumerate(wanted) if p not in changed]
        if unknown:
            raise InvalidArgument("paths must name changed files of the review", [
                FieldViolation(f"paths.{i}", f"{p!r} is not a changed file of this review")
                for i, p in unknown])
        return await self._enqueue(new_job(
            session_id=review.session_id, review_id=review.id, kind=JobKind.REVIEW,
            paths=wanted, requested_by=user, provider=provider.name, model=provider.model))

    async def create_document_job(self, caller: Caller, session_id: str,
                                  provider_name: str) -> Job:
        user = caller.require_user()
        provider = self.provider(provider_name)
        sid = parse_uuid(session_id, "session")
        session_id_var.set(sid)
        self._may_request(await self._member(sid, user, "session"))
        return await self._enqueue(new_job(
            session_id=sid, review_id=None, kind=JobKind.DOCUMENT, paths=(), requested_by=user,
            provider=provider.name, model=provider.model))

    async def _readable(self, caller: Caller, job_id: str) -> tuple[Job, Membership | None]:
        job = await self._repo.get(parse_uuid(job_id, "job"))
        if job is None:
            raise NotFound("job not found")
        session_id_var.set(job.session_id)
        if caller.user_id is None:
            if caller.internal:
                return job, None
            raise NotFound("job not found")
        # Existence is not disclosed to people outside the session.
        return job, await self._member(job.session_id, caller.user_id, "job")

    async def list_jobs(self, caller: Caller, *, review_id: str | None, session_id: str | None,
                        kind: JobKind | None, limit: int, cursor: str) -> tuple[list[Job], str]:
        """A review's jobs, or a session's (of one kind, or all), newest first, for members:
        anyone else is told the review or session does not exist."""
        user = caller.require_user()
        size = page_size(limit)
        after = decode_cursor(cursor)
        if review_id is not None:
            # The review service answers NotFound to people outside the review's session.
            review = await self._peers.review(parse_uuid(review_id, "review"), user)
            session_id_var.set(review.session_id)
            await self._member(review.session_id, user, "review")
            sid, rid = review.session_id, review.id
        else:
            sid, rid = parse_uuid(session_id or "", "session"), None
            session_id_var.set(sid)
            await self._member(sid, user, "session")
        jobs = await self._repo.list_jobs(session_id=sid, review_id=rid, kind=kind,
                                          limit=size + 1, after=after)
        more = len(jobs) > size
        jobs = jobs[:size]
        last = jobs[-1] if more else None
        next_cursor = (encode_cursor(last.created_at, last.id)
                       if last is not None and last.created_at is not None else "")
        return jobs, next_cursor

    async def get_job(self, caller: Caller, job_id: str) -> Job:
        job, _ = await self._readable(caller, job_id)
        return job

    async def cancel_job(self, caller: Caller, job_id: str) -> Job:
        user = caller.require_user()
        job, membership = await self._readable(caller, job_id)
        if membership is not None and job.requested_by != user:
            self._may_request(membership)
        if job.status.terminal:
            if job.status is JobStatus.CANCELLED:
                return job
            raise Conflict(f"the job has already ended ({job.status.value})")
        cancelled = await self._repo.cancel_queued(job.id)
        if cancelled is not None:
            await self._announce_end(cancelled)
            return await self._reload(job.id)
        if await self._repo.request_cancel(job.id):
            await self._queue.request_cancel(job.id)
        return await self._wait_terminal(job.id)

    async def _announce_end(self, job: Job) -> None:
        metrics.AI_JOBS.labels(job.provider, job.status.value).inc()
        await self._events.ended(job, 0)

    async def _reload(self, job_id: str) -> Job:
        job = await self._repo.get(job_id)
        if job is None:
            raise NotFound("job not found")
        return job

    async def _wait_terminal(self, job_id: str) -> Job:
        """The job once it has stopped, or as it is after CANCEL_WAIT."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CANCEL_WAIT
        while True:
            job = await self._reload(job_id)
            if job.status.terminal or loop.time() >= deadline:
                return job
            await asyncio.sleep(0.05)

    async def watch(self, caller: Caller, job_id: str) -> AsyncGenerator[WatchItem, None]:
        """The job's findings in order (stored ones first, then live), then the final job."""
        job, _ = await self._readable(caller, job_id)
        # Listening starts before what is stored is read, so nothing falls in between.
        async with self._signals.watch(job.id) as signal:
            sent = -1
            while True:
                for index, finding in await self._repo.findings_after(job.id, sent):
                    yield index, finding
                    sent = index
                status = await self._repo.status(job.id)
                if status is None:
                    raise NotFound("job not found")
                if status.terminal:
                    # Findings stored before the final status was written are all out.
                    for index, finding in await self._repo.findings_after(job.id, sent):
                        yield index, finding
                        sent = index
                    yield await self._reload(job.id)
                    return
                await signal.wait_newer(sent, WATCH_RECHECK)
