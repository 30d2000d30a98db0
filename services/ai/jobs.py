"""Running jobs: a bounded pool of runners over a shared PostgreSQL queue, and one job's life.

Each replica runs AI_MAX_CONCURRENCY workers that take queued jobs with
`FOR UPDATE SKIP LOCKED`, so replicas share the queue without taking the same
job twice, in a fair order (users and sessions take turns, see the repository's
claim). Every job has AI_JOB_DEADLINE_SECONDS from its first start, over all
its attempts: past it the job's task (and its provider call) is cut and the job
fails, saying so. A running job's worker beats every AI_HEARTBEAT_SECONDS; a job
whose heartbeat is older than AI_STALE_SECONDS belongs to a replica that
stopped, and the reaper of any replica queues it again (when it streamed
nothing yet) or fails it. Cancellation reaches the job's task at once on the
replica that received the request, through Redis on the others, and through
the heartbeat (which reads the cancel flag) if Redis is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from redis.asyncio import Redis

from services.ai.config import AiConfig
from services.ai.domain import FileDone, Finding, Job, JobStatus, SourceFile, cache_key, summary
from services.ai.events import Events
from services.ai.ports import JobEvents, RunStore, SourceReader
from services.ai.providers import Provider, ProviderError
from services.ai.repository import AiRepository, Claimed
from services.common import metrics
from services.common.errors import DomainError, NotFound, Unavailable
from services.common.keyspace import KeySpace
from services.common.redisutil import REDIS_ERRORS, stop_if_cancelled

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the ai service stopped while reviewing; request the review again"
PRUNE_INTERVAL = 3600.0


def runner_identity() -> str:
    """Names this replica in the jobs it holds (for logs and for heartbeats)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class JobControl:
    """Why a job's task was cancelled: "user" (a member asked) or "lost" (no longer ours)."""

    reason: str | None = None
    # Set once the job is writing its final status: too late to cancel it.
    finishing: bool = False

    def cancel(self, task: asyncio.Task[None], reason: str) -> None:
        if self.finishing or task.done():
            return
        self.reason = reason
        task.cancel()


class JobLost(Exception):
    """The job was taken over by another replica (this one looked dead): stop, write nothing."""


@dataclass
class _Stream:
    """A job's findings as they go out: stored first, then published, in one order."""

    job: Job
    runner: str
    repo: RunStore
    events: JobEvents
    findings: list[Finding] = field(default_factory=list)

    async def emit(self, source: SourceFile, finding: Finding) -> None:
        placed = source.anchor(finding)
        if placed is None:
            return
        index = len(self.findings)
        if not await self.repo.add_finding(self.job.id, self.runner, index, placed):
            raise JobLost(self.job.id)
        self.findings.append(placed)
        await self.events.finding(self.job, index, placed)


@dataclass(frozen=True, slots=True)
class _Outcome:
    summary: str
    reviewed: int
    reused: int


class JobExecutor:
    """Runs one job from its sources to its final status and events."""

    def __init__(self, repo: RunStore, providers: Mapping[str, Provider],
                 loader: SourceReader, events: JobEvents, config: AiConfig,
                 runner_id: str) -> None:
        self._repo = repo
        self._providers = providers
        self._loader = loader
        self._events = events
        self._config = config
        self.runner_id = runner_id

    async def run(self, job: Job, control: JobControl, seconds_left: float) -> None:
        """Run `job` to its end; past `seconds_left` (its deadline) it fails as timed out."""
        stream = _Stream(job, self.runner_id, self._repo, self._events)
        started = time.perf_counter()
        log.info("job started", extra={"job_id": job.id, "provider": job.provider,
                                       "kind": job.kind.value, "attempt": job.attempts,
                                       "seconds_left": round(seconds_left, 3)})
        if seconds_left <= 0:
            # An earlier attempt used the whole budget (its replica stopped late on).
            control.finishing = True
            await self._timed_out(job, stream)
            return
        budget = asyncio.timeout(seconds_left)
        try:
            async with budget:
                outcome = await self._review(job, stream)
            control.finishing = True
        except asyncio.CancelledError:
            control.finishing = True
            if control.reason == "user":
                await self._end(job, stream, JobStatus.CANCELLED, error="cancelled")
                return
            if control.reason != "lost":
                await self._release(job, len(stream.findings))
            raise
        except JobLost:
            log.warning("job taken over by another runner; stopping", extra={"job_id": job.id})
            return
        except ProviderError as exc:
            control.finishing = True
            log.warning("job failed: provider", extra={"job_id": job.id, "kind": exc.kind})
            await self._end(job, stream, JobStatus.FAILED, error=exc.message)
        except DomainError as exc:
            control.finishing = True
            await self._end(job, stream, JobStatus.FAILED, error=_peer_failure(exc))
        except TimeoutError:
            control.finishing = True
            if not budget.expired():
                log.exception("job failed unexpectedly", extra={"job_id": job.id})
                await self._end(job, stream, JobStatus.FAILED,
                                error="internal error while reviewing; request the review again")
            else:
                await self._timed_out(job, stream)
        except Exception:
            control.finishing = True
            log.exception("job failed unexpectedly", extra={"job_id": job.id})
            await self._end(job, stream, JobStatus.FAILED,
                            error="internal error while reviewing; request the review again")
        else:
            await self._end(job, stream, JobStatus.DONE, outcome=outcome)
        log.info("job ended", extra={"job_id": job.id, "findings": len(stream.findings),
                                     "seconds": round(time.perf_counter() - started, 3)})

    async def _timed_out(self, job: Job, stream: _Stream) -> None:
        log.warning("job failed: deadline", extra={"job_id": job.id,
                                                  "deadline_seconds": self._config.job_deadline,
                                                  "findings": len(stream.findings)})
        metrics.AI_JOB_DEADLINES.labels(job.provider).inc()
        await self._end(job, stream, JobStatus.FAILED,
                        error=deadline_error(self._config.job_deadline))

    async def _review(self, job: Job, stream: _Stream) -> _Outcome:
        provider = self._providers.get(job.provider)
        if provider is None:
            raise ProviderError(f"the {job.provider} provider is not configured on this server")
        sources = await self._loader.load(job)
        keyed = [(source, cache_key(source.path, source.content,
                                    source.scope if provider.scoped else None))
                 for source in sources.files]
        cached = await self._repo.cached_findings(provider.name, provider.model, [k for _, k in keyed])
        fresh: dict[str, tuple[SourceFile, str]] = {}
        for source, key in keyed:
            hit = cached.get(key)
            if hit is None:
                fresh[source.path] = (source, key)
                continue
            for finding in hit:
                await stream.emit(source, finding)
        if fresh:
            await self._ask(provider, fresh, stream)
        return _Outcome(
            summary(findings=stream.findings, files=len(sources.files), reviewed=len(fresh),
                    reused=len(sources.files) - len(fresh), skipped=sources.skipped,
                    kind=job.kind),
            len(fresh), len(sources.files) - len(fresh))

    async def _ask(self, provider: Provider, fresh: Mapping[str, tuple[SourceFile, str]],
                   stream: _Stream) -> None:
        """Stream the provider's findings out; cache each file's result once it is complete."""
        produced: dict[str, list[Finding]] = {path: [] for path in fresh}
        async with contextlib.aclosing(provider.review([s for s, _ in fresh.values()])) as items:
            async for item in items:
                if isinstance(item, FileDone):
                    entry = fresh.get(item.path)
                    if entry is not None:
                        await self._repo.cache_findings(provider.name, provider.model, entry[1],
                                                        produced.pop(item.path, []))
                    continue
                target = fresh.get(item.path)
                if target is None:
                    continue
                produced[item.path].append(item)
                await stream.emit(target[0], item)

    async def _end(self, job: Job, stream: _Stream, status: JobStatus, *,
                   outcome: _Outcome | None = None, error: str | None = None) -> None:
        ended = await self._repo.finish(
            job.id, self.runner_id, status, summary=outcome.summary if outcome else "",
            error=error, reviewed=outcome.reviewed if outcome else 0,
            reused=outcome.reused if outcome else 0)
        if ended is None:
            log.warning("job was no longer ours to finish", extra={"job_id": job.id})
            return
        metrics.AI_JOBS.labels(job.provider, status.value).inc()
        await self._events.ended(ended, len(stream.findings))

    async def _release(self, job: Job, findings: int) -> None:
        released = await self._repo.release(job.id, self.runner_id, self._config.max_attempts,
                                            INTERRUPTED)
        if released is None:
            return
        log.info("job released", extra={"job_id": job.id, "status": released.status.value})
        if released.status.terminal:
            metrics.AI_JOBS.labels(job.provider, released.status.value).inc()
            await self._events.ended(released, findings)


def deadline_error(seconds: float) -> str:
    """What the room is told about a job that ran out of time (findings so far are kept)."""
    return (f"timed out: the review did not finish within {seconds:g} seconds; "
            "request it again later")


def _peer_failure(exc: DomainError) -> str:
    """Why a job could not read what it reviews, in words for the room."""
    if isinstance(exc, NotFound):
        return f"{exc.message} (it was deleted, or the requester left the session)"
    if isinstance(exc, Unavailable):
        return exc.message
    return f"could not read what to review: {exc.message}"


class JobRunner:
    """AI_MAX_CONCURRENCY workers taking jobs from the shared queue, plus recovery loops."""

    def __init__(self, repo: AiRepository, executor: JobExecutor, events: Events,
                 config: AiConfig, keys: KeySpace, redis: Redis, redis_url: str,
                 is_ready: Callable[[], bool]) -> None:
        self._repo = repo
        self._executor = executor
        self._events = events
        self._config = config
        self._keys = keys
        self._redis = redis
        self._redis_url = redis_url
        self._is_ready = is_ready
        self._wake = asyncio.Event()
        self._active: dict[str, tuple[asyncio.Task[None], JobControl]] = {}

    @property
    def runner_id(self) -> str:
        return self._executor.runner_id

    @property
    def cancel_channel(self) -> str:
        return self._keys.key("cancel")

    def wake(self) -> None:
        """A job was queued here: a free worker takes it now rather than at its next poll."""
        self._wake.set()

    def cancel_local(self, job_id: str) -> bool:
        """Cancel a job running on this replica; False when it does not run here."""
        entry = self._active.get(job_id)
        if entry is None:
            return False
        entry[1].cancel(entry[0], "user")
        return True

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._worker(), name=f"ai-worker-{n}")
                 for n in range(self._config.max_concurrency)]
        tasks += [asyncio.create_task(self._reaper(), name="ai-reaper"),
                  asyncio.create_task(self._listen_cancels(), name="ai-cancels")]
        try:
            await asyncio.gather(*tasks)
        finally:
            # Cancel each task once: a second cancel would interrupt a job that is
            # releasing itself (writing that it can run again elsewhere).
            for task in tasks:
                if not task.done() and not task.cancelling():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            if not self._is_ready():
                # Until the schema is migrated there is no queue to read.
                await asyncio.sleep(0.1)
                continue
            self._wake.clear()
            try:
                claimed = await self._repo.claim(self.runner_id, self._config.job_deadline)
            except Exception as exc:  # database trouble: the service is not ready; wait it out
                stop_if_cancelled()  # a stop the driver turned into an error of its own
                log.warning("could not take a job: %s", type(exc).__name__)
                claimed = None
            if claimed is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._config.poll_interval)
                # Python 3.11's wait_for can swallow a cancel that lands as its timeout fires:
                # without this a stopping service waits forever for this loop.
                stop_if_cancelled()
                continue
            await self._execute(claimed)

    async def _execute(self, claimed: Claimed) -> None:
        job = claimed.job
        control = JobControl()
        task = asyncio.create_task(self._executor.run(job, control, claimed.seconds_left),
                                   name=f"ai-job-{job.id}")
        self._active[job.id] = (task, control)
        beat = asyncio.create_task(self._heartbeat(job.id, task, control))
        try:
            # Cancelling the worker (shutdown) cancels the job task, which releases
            # the job before this await ends.
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            # Only the job's task was cancelled (it was taken over): take the next job.
        except Exception:
            log.exception("job task failed", extra={"job_id": job.id})
        finally:
            beat.cancel()
            self._active.pop(job.id, None)

    async def _heartbeat(self, job_id: str, task: asyncio.Task[None], control: JobControl) -> None:
        while not task.done():
            await asyncio.sleep(self._config.heartbeat_interval)
            try:
                state = await self._repo.heartbeat(job_id, self.runner_id)
            except Exception as exc:
                log.warning("heartbeat failed: %s", type(exc).__name__)
                continue
            if state is None:
                # Another replica's reaper took the job over: stop without writing.
                control.cancel(task, "lost")
                return
            if state:
                control.cancel(task, "user")
                return

    async def _reaper(self) -> None:
        interval = max(self._config.heartbeat_interval, self._config.stale_after / 3)
        next_prune = time.monotonic() + 60.0
        while True:
            if not self._is_ready():
                await asyncio.sleep(0.1)
                continue
            try:
                for job in await self._repo.reap(self._config.stale_after,
                                                 self._config.max_attempts, INTERRUPTED):
                    log.warning("recovered a job of a stopped runner",
                                extra={"job_id": job.id, "status": job.status.value})
                    if job.status is JobStatus.QUEUED:
                        self.wake()
                    else:
                        metrics.AI_JOBS.labels(job.provider, job.status.value).inc()
                        stored = await self._repo.get(job.id)
                        await self._events.ended(job, len(stored.findings) if stored else 0)
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_INTERVAL
                    pruned = await self._repo.prune_cache(self._config.cache_ttl)
                    if pruned:
                        log.info("pruned the result cache", extra={"entries": pruned})
            except Exception as exc:
                log.warning("reaper round failed: %s", type(exc).__name__)
            await asyncio.sleep(interval)

    async def _listen_cancels(self) -> None:
        """Cancel requests made on other replicas for jobs running here."""
        while True:
            client = Redis.from_url(self._redis_url, socket_connect_timeout=1.0,
                                    socket_timeout=None, socket_keepalive=True)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.cancel_channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message is None:
                        await pubsub.ping()
                        continue
                    if message.get("type") == "message":
                        data = message["data"]
                        self.cancel_local(data.decode() if isinstance(data, bytes) else str(data))
            except Exception as exc:
                # The heartbeat still carries cancellations while Redis is away.
                log.debug("cancel listener reconnecting: %s", type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(1.0)

    async def request_cancel(self, job_id: str) -> None:
        """Cancel a running job wherever it runs."""
        if self.cancel_local(job_id):
            return
        try:
            await self._redis.publish(self.cancel_channel, job_id.encode())
        except REDIS_ERRORS as exc:
            log.info("cancel not published, the heartbeat will carry it: %s", type(exc).__name__)
