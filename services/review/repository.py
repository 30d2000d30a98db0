"""All SQL of the review service: typed records in and out, driver errors as domain errors."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from services.common.db import DB_ERRORS
from services.common.errors import NotFound, Unavailable
from services.common.grpcserver import Pool
from services.review.diffs import hunks_from_json, hunks_to_json
from services.review.domain import (
    Comment,
    FileSummary,
    PublishClaim,
    Published,
    Review,
    ReviewFile,
    Thread,
    Verdict,
    current_verdicts,
)

log = logging.getLogger(__name__)

Conn = AsyncConnection[dict[str, Any]]

_REVIEW_COLS = ("id, session_id, repo, pull_number, ref, head_sha, base_sha, title, state, "
                "created_by, created_at, updated_at, github_review_id, github_review_url, "
                "published_at")
_THREAD_COLS = ("id, review_id, path, side, line, start_line, commit_sha, anchor_text, "
                "resolved, outdated, created_by, created_at, updated_at")
_FILE_COLS = "path, status, additions, deletions, previous_path, patch, hunks"
_VERDICT_COLS = "id, review_id, author_id, state, body, created_at"


def _verdict(row: dict[str, Any]) -> Verdict:
    return Verdict(str(row["id"]), str(row["review_id"]), str(row["author_id"]), row["state"],
                   row["body"], row["created_at"])


def _review(row: dict[str, Any], files: list[FileSummary], verdict: Verdict | None,
            verdicts: list[Verdict] | None = None) -> Review:
    return Review(
        id=str(row["id"]), session_id=str(row["session_id"]), repo=row["repo"],
        pull_number=row["pull_number"], ref=row["ref"], head_sha=row["head_sha"],
        base_sha=row["base_sha"], title=row["title"], state=row["state"],
        created_by=str(row["created_by"]), created_at=row["created_at"],
        updated_at=row["updated_at"], github_review_id=row["github_review_id"],
        github_review_url=row["github_review_url"], published_at=row["published_at"],
        files=files, verdict=verdict, verdicts=verdicts or [])


def _file(row: dict[str, Any]) -> ReviewFile:
    return ReviewFile(row["path"], row["status"], row["additions"], row["deletions"],
                      row["previous_path"], row["patch"], hunks_from_json(row["hunks"]))


def _comment(row: dict[str, Any]) -> Comment:
    return Comment(str(row["id"]), str(row["thread_id"]), str(row["author_id"]), row["body"],
                   row["created_at"])


def _thread(row: dict[str, Any], comments: list[Comment]) -> Thread:
    return Thread(
        id=str(row["id"]), review_id=str(row["review_id"]), path=row["path"], side=row["side"],
        line=row["line"], start_line=row["start_line"], commit_sha=row["commit_sha"],
        anchor_text=row["anchor_text"], resolved=row["resolved"], outdated=row["outdated"],
        created_by=str(row["created_by"]), created_at=row["created_at"],
        updated_at=row["updated_at"], comments=comments)


class ReviewRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        """A pooled connection; what the driver raises leaves as a domain error."""
        try:
            async with self._pool.connection() as conn:
                yield conn
        except DB_ERRORS as exc:
            log.warning("database unavailable: %s", type(exc).__name__)
            raise Unavailable("database unavailable, try again shortly",
                              reason="database_unavailable") from exc
        except psycopg.errors.ForeignKeyViolation as exc:
            # Every foreign key points at a review, or at a thread that goes only with its
            # review: the review was deleted (its session was) while this write ran.
            raise NotFound("review not found") from exc

    # --- reviews and files -----------------------------------------------------

    async def insert_review(self, review: Review, files: Sequence[ReviewFile]) -> None:
        """The review and every file in one transaction: an import is whole or absent."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO reviews (id, session_id, repo, pull_number, ref, head_sha, base_sha, "
                "title, state, created_by, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (review.id, review.session_id, review.repo, review.pull_number, review.ref,
                 review.head_sha, review.base_sha, review.title, review.state, review.created_by,
                 review.created_at, review.updated_at))
            await self._insert_files(conn, review.id, files)

    @staticmethod
    async def _insert_files(conn: Conn, review_id: str, files: Sequence[ReviewFile]) -> None:
        if not files:
            return
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO review_files (review_id, path, ordinal, status, additions, deletions, "
                "previous_path, patch, hunks) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(review_id, f.path, index, f.status, f.additions, f.deletions, f.previous_path,
                  f.patch, Jsonb(hunks_to_json(f.hunks))) for index, f in enumerate(files)])

    async def get_review(self, review_id: str) -> Review | None:
        async with self._connection() as conn:
            cur = await conn.execute(f"SELECT {_REVIEW_COLS} FROM reviews WHERE id = %s",
                                     (review_id,))
            row = await cur.fetchone()
            if row is None:
                return None
            return (await self._complete(conn, [row]))[0]

    async def list_reviews(self, session_id: str, limit: int,
                           after: tuple[datetime, str] | None) -> list[Review]:
        """A session's reviews, newest first, after a (created_at, id) keyset cursor."""
        async with self._connection() as conn:
            if after is None:
                cur = await conn.execute(
                    f"SELECT {_REVIEW_COLS} FROM reviews WHERE session_id = %s "
                    "ORDER BY created_at DESC, id DESC LIMIT %s", (session_id, limit))
            else:
                cur = await conn.execute(
                    f"SELECT {_REVIEW_COLS} FROM reviews WHERE session_id = %s "
                    "AND (created_at, id) < (%s, %s) "
                    "ORDER BY created_at DESC, id DESC LIMIT %s",
                    (session_id, after[0], after[1], limit))
            rows = await cur.fetchall()
            return await self._complete(conn, rows)

    async def reviews_for_pull(self, repo: str, number: int) -> list[Review]:
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT {_REVIEW_COLS} FROM reviews WHERE lower(repo) = lower(%s) "
                "AND pull_number = %s ORDER BY created_at", (repo, number))
            rows = await cur.fetchall()
        return [_review(row, [], None) for row in rows]

    @staticmethod
    async def _complete(conn: Conn, rows: list[dict[str, Any]]) -> list[Review]:
        """Attach file summaries and the verdicts to review rows, two queries in all."""
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        cur = await conn.execute(
            "SELECT review_id, path, status, additions, deletions, previous_path "
            "FROM review_files WHERE review_id = ANY(%s) ORDER BY review_id, ordinal", (ids,))
        files: dict[Any, list[FileSummary]] = {}
        for f in await cur.fetchall():
            files.setdefault(f["review_id"], []).append(
                FileSummary(f["path"], f["status"], f["additions"], f["deletions"],
                            f["previous_path"]))
        # Each reviewer's latest verdict; the newest of those is the review's latest.
        cur = await conn.execute(
            f"SELECT DISTINCT ON (review_id, author_id) {_VERDICT_COLS} FROM verdicts "
            "WHERE review_id = ANY(%s) ORDER BY review_id, author_id, created_at DESC, id DESC",
            (ids,))
        verdicts: dict[Any, list[Verdict]] = {}
        for v in await cur.fetchall():
            verdicts.setdefault(v["review_id"], []).append(_verdict(v))
        out = []
        for row in rows:
            current = current_verdicts(verdicts.get(row["id"], []))
            out.append(_review(row, files.get(row["id"], []), current[-1] if current else None,
                               current))
        return out

    async def get_file(self, review_id: str, path: str) -> ReviewFile | None:
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT {_FILE_COLS} FROM review_files WHERE review_id = %s AND path = %s",
                (review_id, path))
            row = await cur.fetchone()
        return _file(row) if row else None

    async def get_files(self, review_id: str) -> list[ReviewFile]:
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT {_FILE_COLS} FROM review_files WHERE review_id = %s ORDER BY ordinal",
                (review_id,))
            return [_file(row) for row in await cur.fetchall()]

    async def apply_refresh(self, review_id: str, expected_head: str, head_sha: str,
                            base_sha: str, title: str, files: Sequence[ReviewFile],
                            outdated: Sequence[str]) -> bool:
        """Move a review to a new head with its new files and outdated threads, atomically.

        False when the review is no longer at `expected_head` (a concurrent
        refresh got there first): nothing is written then.
        """
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE reviews SET head_sha = %s, base_sha = %s, title = %s, updated_at = now() "
                "WHERE id = %s AND head_sha = %s", (head_sha, base_sha, title, review_id,
                                                    expected_head))
            if cur.rowcount != 1:
                return False
            await conn.execute("DELETE FROM review_files WHERE review_id = %s", (review_id,))
            await self._insert_files(conn, review_id, files)
            if outdated:
                await conn.execute(
                    "UPDATE threads SET outdated = true, updated_at = now() "
                    "WHERE review_id = %s AND id = ANY(%s::uuid[])", (review_id, list(outdated)))
        return True

    # --- threads and comments --------------------------------------------------

    async def insert_thread(self, thread: Thread, comment: Comment) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO threads (id, review_id, path, side, line, start_line, commit_sha, "
                "anchor_text, resolved, outdated, created_by, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (thread.id, thread.review_id, thread.path, thread.side, thread.line,
                 thread.start_line, thread.commit_sha, thread.anchor_text, thread.resolved,
                 thread.outdated, thread.created_by, thread.created_at, thread.updated_at))
            await conn.execute(
                "INSERT INTO comments (id, thread_id, author_id, body, created_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (comment.id, comment.thread_id, comment.author_id, comment.body,
                 comment.created_at))

    async def list_threads(self, review_id: str, limit: int,
                           after: tuple[datetime, str] | None) -> list[Thread]:
        """A review's threads, oldest first, after a (created_at, id) keyset cursor."""
        async with self._connection() as conn:
            if after is None:
                cur = await conn.execute(
                    f"SELECT {_THREAD_COLS} FROM threads WHERE review_id = %s "
                    "ORDER BY created_at, id LIMIT %s", (review_id, limit))
            else:
                cur = await conn.execute(
                    f"SELECT {_THREAD_COLS} FROM threads WHERE review_id = %s "
                    "AND (created_at, id) > (%s, %s) ORDER BY created_at, id LIMIT %s",
                    (review_id, after[0], after[1], limit))
            return await self._with_comments(conn, await cur.fetchall())

    async def current_threads(self, review_id: str) -> list[Thread]:
        """Every thread that is not outdated, with its comments (refresh and publish)."""
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT {_THREAD_COLS} FROM threads WHERE review_id = %s AND NOT outdated "
                "ORDER BY created_at, id", (review_id,))
            return await self._with_comments(conn, await cur.fetchall())

    @staticmethod
    async def _with_comments(conn: Conn, rows: list[dict[str, Any]]) -> list[Thread]:
        if not rows:
            return []
        cur = await conn.execute(
            "SELECT id, thread_id, author_id, body, created_at FROM comments "
            "WHERE thread_id = ANY(%s) ORDER BY thread_id, created_at, id",
            ([row["id"] for row in rows],))
        comments: dict[Any, list[Comment]] = {}
        for c in await cur.fetchall():
            comments.setdefault(c["thread_id"], []).append(_comment(c))
        return [_thread(row, comments.get(row["id"], [])) for row in rows]

    async def insert_comment(self, review_id: str, comment: Comment) -> bool:
        """Add a reply; False when the thread is not one of this review's."""
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE threads SET updated_at = now() WHERE id = %s AND review_id = %s",
                (comment.thread_id, review_id))
            if cur.rowcount != 1:
                return False
            await conn.execute(
                "INSERT INTO comments (id, thread_id, author_id, body, created_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (comment.id, comment.thread_id, comment.author_id, comment.body,
                 comment.created_at))
        return True

    async def set_resolved(self, review_id: str, thread_id: str,
                           resolved: bool) -> tuple[Thread | None, bool]:
        """(thread, changed): setting the state it already has changes nothing."""
        async with self._connection() as conn:
            cur = await conn.execute(
                "UPDATE threads SET resolved = %s, updated_at = now() "
                "WHERE id = %s AND review_id = %s AND resolved <> %s",
                (resolved, thread_id, review_id, resolved))
            changed = cur.rowcount == 1
            cur = await conn.execute(
                f"SELECT {_THREAD_COLS} FROM threads WHERE id = %s AND review_id = %s",
                (thread_id, review_id))
            row = await cur.fetchone()
            if row is None:
                return None, False
            return (await self._with_comments(conn, [row]))[0], changed

    # --- verdicts --------------------------------------------------------------

    async def insert_verdict(self, verdict: Verdict) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO verdicts (id, review_id, author_id, state, body, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (verdict.id, verdict.review_id, verdict.author_id, verdict.state, verdict.body,
                 verdict.created_at))

    # --- publishing ------------------------------------------------------------

    async def begin_publish(self, review_id: str, lease_seconds: float) -> PublishClaim:
        """Claim the right to post a review, under a row lock so two publishes cannot both post.

        What it finds is a PublishClaim (domain.py): "published", "busy", "missing",
        "claimed" or "claimed_uncertain".
        """
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT publish_state, publish_started_at > now() - make_interval(secs => %s) "
                "AS live FROM reviews WHERE id = %s FOR UPDATE", (lease_seconds, review_id))
            row = await cur.fetchone()
            if row is None:
                return "missing"
            state = row["publish_state"]
            if state == "published":
                return "published"
            if state == "publishing" and row["live"]:
                return "busy"
            await conn.execute(
                "UPDATE reviews SET publish_state = 'publishing', publish_started_at = now() "
                "WHERE id = %s", (review_id,))
            # A lapsed lease means a publisher died mid-way: its POST may have landed.
            return "claimed_uncertain" if state in ("uncertain", "publishing") else "claimed"

    async def finish_publish(self, review_id: str, github_review_id: int,
                             html_url: str) -> datetime:
        async with self._connection() as conn:
            cur = await conn.execute(
                "UPDATE reviews SET publish_state = 'published', state = 'published', "
                "github_review_id = %s, github_review_url = %s, published_at = now(), "
                "updated_at = now() WHERE id = %s RETURNING published_at",
                (github_review_id, html_url, review_id))
            row = await cur.fetchone()
        assert row is not None  # noqa: S101 - the review is locked to us by begin_publish
        published_at: datetime = row["published_at"]
        return published_at

    async def release_publish(self, review_id: str, *, uncertain: bool) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "UPDATE reviews SET publish_state = %s, publish_started_at = NULL "
                "WHERE id = %s AND publish_state = 'publishing'",
                ("uncertain" if uncertain else None, review_id))

    async def published(self, review_id: str) -> Published | None:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT github_review_id, github_review_url, published_at FROM reviews "
                "WHERE id = %s AND publish_state = 'published'", (review_id,))
            row = await cur.fetchone()
        if row is None:
            return None
        return Published(row["github_review_id"], row["github_review_url"], row["published_at"])

    # --- deleted sessions --------------------------------------------------------------

    async def purge_session(self, session_id: str) -> int:
        """Forget a deleted session: its reviews go, with their files, threads, comments and
        verdicts (foreign keys cascade). Idempotent; returns how many reviews went."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute("INSERT INTO deleted_sessions (session_id) VALUES (%s) "
                               "ON CONFLICT (session_id) DO NOTHING", (session_id,))
            cur = await conn.execute("DELETE FROM reviews WHERE session_id = %s", (session_id,))
            return cur.rowcount

    async def sweep_deleted_sessions(self, keep_seconds: float) -> int:
        """Delete reviews written for a deleted session after its purge; forget deletions
        older than `keep_seconds`. Returns how many reviews went."""
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute("DELETE FROM reviews r USING deleted_sessions d "
                                     "WHERE r.session_id = d.session_id")
            swept = cur.rowcount
            await conn.execute("DELETE FROM deleted_sessions "
                               "WHERE deleted_at < now() - make_interval(secs => %s)",
                               (keep_seconds,))
        return swept
