"""A deleted session leaves nothing in ai: a consumer of `session.deleted` and a sweep.

Ai's consumer group on the sessions domain-events stream deletes the session's jobs
and findings when the event arrives, also when ai was down at the deletion, and cuts
the jobs of the session that were running (their provider calls stop); the sweep
deletes again, for a while, a job that was being created at that moment.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from services.ai.repository import AiRepository
from services.common.domainevents import DomainEvent, deleted_session

log = logging.getLogger(__name__)

GROUP = "ai-session-deletions"

# Cancels a running job wherever it runs (JobRunner.request_cancel).
Cancel = Callable[[str], Awaitable[None]]


class SessionPurge:
    """Deletes what ai holds for deleted sessions (idempotent: redelivery is harmless)."""

    def __init__(self, repo: AiRepository, cancel: Cancel, keep_seconds: float) -> None:
        self._repo = repo
        self._cancel = cancel
        self._keep = keep_seconds

    async def handle(self, event: DomainEvent) -> None:
        session_id = deleted_session(event)
        if session_id is None:
            return
        running = await self._repo.purge_session(session_id)
        await self._cut(running)
        log.info("deleted session purged", extra={"session_id": session_id,
                                                  "running_jobs": len(running)})

    async def sweep(self) -> None:
        await self._cut(await self._repo.sweep_deleted_sessions(self._keep))

    async def _cut(self, running: list[str]) -> None:
        # The rows are gone already: a runner that misses this notices at its next
        # heartbeat (its job is no longer there) and stops without writing.
        for job_id in running:
            await self._cancel(job_id)
