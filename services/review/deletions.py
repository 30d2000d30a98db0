"""A deleted session leaves nothing in review: a consumer of `session.deleted` and a sweep.

Review's consumer group on the sessions domain-events stream deletes the session's
reviews (files, threads, comments and verdicts with them) when the event arrives,
also when review was down at the deletion; the sweep deletes again, for a while,
what an import still under way at that moment wrote afterwards.
"""

from __future__ import annotations

import logging

from services.common.domainevents import DomainEvent, deleted_session
from services.common.grpcserver import Background, Resources
from services.common.sessionevents import PurgeSettings, run_purge
from services.review.repository import ReviewRepository

log = logging.getLogger(__name__)

GROUP = "review-session-deletions"


class SessionPurge:
    """Deletes what review holds for deleted sessions (idempotent: redelivery is harmless)."""

    def __init__(self, repo: ReviewRepository, keep_seconds: float) -> None:
        self._repo = repo
        self._keep = keep_seconds

    async def handle(self, event: DomainEvent) -> None:
        session_id = deleted_session(event)
        if session_id is None:
            return
        reviews = await self._repo.purge_session(session_id)
        log.info("deleted session purged", extra={"session_id": session_id, "reviews": reviews})

    async def sweep(self) -> None:
        reviews = await self._repo.sweep_deleted_sessions(self._keep)
        if reviews:
            log.info("deleted sessions swept", extra={"reviews": reviews})


def purge_jobs(settings: PurgeSettings) -> tuple[Background, ...]:
    """The consumer and the sweep, as one supervised background job of the review service."""

    async def purge(res: Resources) -> None:
        await run_purge(res, GROUP, SessionPurge(ReviewRepository(res.pool), settings.keep_seconds),
                        settings)

    return (purge,)
