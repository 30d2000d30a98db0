"""What a job reviews: a review's changed files at its head, or the session's live document."""

from __future__ import annotations

import asyncio

from services.ai.domain import (
    FileContent,
    Job,
    JobKind,
    SourceFile,
    Sources,
    document_path,
    scope_from_hunks,
)
from services.ai.ports import Peers

# GetFile calls in flight at once for one job (each may reach GitHub).
FETCH_PARALLELISM = 4


class SourceLoader:
    """Reads a job's files through the review and sessions services, as its requester."""

    def __init__(self, peers: Peers, max_files: int, max_file_bytes: int) -> None:
        self._peers = peers
        self._max_files = max_files
        self._max_bytes = max_file_bytes

    async def load(self, job: Job) -> Sources:
        if job.kind is JobKind.DOCUMENT:
            return await self._document(job)
        return await self._review(job)

    async def _document(self, job: Job) -> Sources:
        language, text = await asyncio.gather(
            self._peers.session_language(job.session_id, job.requested_by),
            self._peers.document(job.session_id, job.requested_by))
        path = document_path(language)
        if not self._reviewable(text):
            return Sources([], 1)
        return Sources([SourceFile(path, text)], 0)

    async def _review(self, job: Job) -> Sources:
        assert job.review_id is not None  # noqa: S101 - review jobs always name their review
        review = await self._peers.review(job.review_id, job.requested_by)
        wanted = [f for f in review.files
                  if f.status != "removed" and (not job.paths or f.path in job.paths)]
        overflow = max(0, len(wanted) - self._max_files)
        wanted = wanted[:self._max_files]
        gate = asyncio.Semaphore(FETCH_PARALLELISM)

        async def fetch(path: str) -> FileContent:
            async with gate:
                return await self._peers.review_file(review.id, path, job.requested_by)

        contents = await asyncio.gather(*(fetch(f.path) for f in wanted))
        files: list[SourceFile] = []
        skipped = overflow
        for content in contents:
            if content.content is None:
                continue
            if not self._reviewable(content.content):
                skipped += 1
                continue
            files.append(SourceFile(content.path, content.content,
                                    scope_from_hunks(content.status, content.target_lines)))
        return Sources(files, skipped)

    def _reviewable(self, text: str) -> bool:
        return "\x00" not in text and len(text.encode("utf-8", errors="surrogatepass")) <= self._max_bytes
