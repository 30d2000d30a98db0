"""Review rules: importing, threads anchored to lines, verdicts, publishing once, webhooks.

The domain talks to the outside only through the ports below; the composition
root (server.py) hands it the gRPC, Redis and httpx adapters, and tests hand it
fakes where a real service is not wanted.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import orjson

from services.common.context import session_id_var
from services.common.cursors import decode_cursor, encode_cursor
from services.common.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from services.common.identity import Caller
from services.review.diffs import file_lines, parse_patch_lenient, side_lines
from services.review.github import (
    REPO_PATTERN,
    ChangedFile,
    CommitInfo,
    GitHub,
    GitHubUser,
    OutcomeUnknown,
    PostedReview,
    PullInfo,
)
from services.review.models import (
    SIDES,
    VERDICT_STATES,
    Comment,
    Membership,
    Person,
    Published,
    Review,
    ReviewFile,
    Thread,
    Verdict,
)
from services.review.repository import ReviewRepository, new_id

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BODY = 10_000
MAX_PATH = 4096
MAX_REF = 255
# A publish that has not finished within this long is presumed dead.
PUBLISH_LEASE_SECONDS = 120.0
DEFAULT_REVIEW_BODY = "Reviewed with Tandem."
# The sessions service takes event payloads up to 32 KiB; leave room for the envelope.
EVENT_MAX_BYTES = 30_000
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_GITHUB_EVENTS = {"approve": "APPROVE", "request_changes": "REQUEST_CHANGES",
                  "comment": "COMMENT"}


# --- ports --------------------------------------------------------------------


class MembershipPort(Protocol):
    async def membership(self, session_id: str, user_id: str) -> Membership | None: ...


class DirectoryPort(Protocol):
    async def github_token(self, user_id: str) -> str: ...

    def forget(self, user_id: str) -> None: ...

    async def logins(self, user_ids: list[str]) -> dict[str, str]: ...

    async def people(self, user_ids: list[str]) -> dict[str, Person]: ...


class EventsPort(Protocol):
    async def append(self, session_id: str, kind: str, payload: dict[str, Any],
                     user_id: str | None) -> None: ...


class ContentsPort(Protocol):
    async def get(self, sha: str, path: str) -> bytes | None: ...

    async def put(self, sha: str, path: str, data: bytes) -> None: ...


class DeliveriesPort(Protocol):
    """Webhook deliveries seen, by delivery id and by the digest of the signed body."""

    async def claim(self, delivery_id: str, body_digest: str) -> bool: ...

    async def done(self, delivery_id: str, body_digest: str) -> None: ...

    async def release(self, delivery_id: str, body_digest: str) -> None: ...


class Renderer(Protocol):
    """Turns records into the JSON the REST API shows (the event payloads)."""

    def review(self, review: Review) -> dict[str, Any]: ...

    def thread(self, thread: Thread) -> dict[str, Any]: ...

    def comment(self, comment: Comment) -> dict[str, Any]: ...

    def verdict(self, verdict: Verdict) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Limits:
    max_file_bytes: int
    max_files: int


@dataclass(frozen=True, slots=True)
class FileView:
    """A review file with its content at the head commit (None when removed there)."""

    file: ReviewFile
    content: str | None
    sha: str


# --- pure rules -----------------------------------------------------------------


def unprocessable(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, [FieldViolation(field, message)], reason="unprocessable")


def check_body(body: str, field: str = "body", *, allow_empty: bool = False) -> str:
    if not allow_empty and not body.strip():
        raise InvalidArgument(f"{field} must not be empty", [FieldViolation(field, "required")])
    if len(body) > MAX_BODY:
        raise InvalidArgument(f"{field} is longer than {MAX_BODY} characters",
                              [FieldViolation(field, f"at most {MAX_BODY} characters")])
    if "\x00" in body:
        # PostgreSQL text cannot hold NUL: refuse it here instead of failing the insert (500).
        raise InvalidArgument(f"{field} must not contain NUL characters",
                              [FieldViolation(field, "must not contain NUL characters")])
    return body


def storable_path(path: str) -> bool:
    """Whether `path` can name a file of a review (and be used in a query: no NUL)."""
    return 0 < len(path) <= MAX_PATH and "\x00" not in path


def check_import(repo: str, pull_number: int, ref: str) -> None:
    problems: list[FieldViolation] = []
    if not REPO_PATTERN.match(repo):
        problems.append(FieldViolation("repo", 'must be "owner/name"'))
    if pull_number < 0:
        problems.append(FieldViolation("pull_number", "must be a positive integer"))
    if (pull_number > 0) == bool(ref):
        problems.append(FieldViolation("pull_number", "give exactly one of pull_number or ref"))
    if ref and (len(ref) > MAX_REF or any(c.isspace() or ord(c) < 32 for c in ref)):
        problems.append(FieldViolation("ref", f"must be a git ref of at most {MAX_REF} "
                                              "characters without spaces"))
    if problems:
        raise InvalidArgument("invalid import request", problems)


def anchor(file: ReviewFile, content: str | None, side: str, line: int,
           start_line: int | None) -> str:
    """Check a thread's place in a file and return the text of the lines it covers.

    RIGHT lines must exist in the file at the head commit; LEFT lines must be
    removed or context lines of the file's diff (the only base lines a review
    can show), and a range must sit inside one hunk, as GitHub requires.
    """
    if side not in SIDES:
        raise InvalidArgument("side must be RIGHT or LEFT",
                              [FieldViolation("side", "must be RIGHT or LEFT")])
    if line < 1:
        raise InvalidArgument("line must be a positive integer",
                              [FieldViolation("line", "must be at least 1")])
    start = line if start_line is None else start_line
    if start < 1 or start > line:
        raise InvalidArgument("start_line must be between 1 and line",
                              [FieldViolation("start_line", "must be between 1 and line")])
    if side == "RIGHT":
        if content is None:
            raise unprocessable("path", f"{file.path} does not exist at the head commit; "
                                        "comment on the LEFT side")
        lines = file_lines(content)
        if line > len(lines):
            raise unprocessable("line", f"line {line} is outside {file.path} "
                                        f"(it has {len(lines)} lines at the head commit)")
        return "\n".join(lines[start - 1:line])
    shown = side_lines(file.hunks, "LEFT")
    if line not in shown or start not in shown:
        raise unprocessable("line", f"LEFT line {line if line not in shown else start} is not "
                                    f"a removed or context line of the diff of {file.path}")
    if shown[start][0] != shown[line][0]:
        raise unprocessable("start_line", "start_line and line must be in the same diff hunk")
    return "\n".join(shown[n][1] for n in range(start, line + 1) if n in shown)


def is_outdated(thread: Thread, new_file: ReviewFile | None, new_content: str | None) -> bool:
    """Whether a thread no longer fits the new head: its lines read differently, or are gone."""
    start = thread.start_line or thread.line
    if thread.side == "RIGHT":
        if new_content is None:
            return True
        lines = file_lines(new_content)
        if thread.line > len(lines):
            return True
        return "\n".join(lines[start - 1:thread.line]) != thread.anchor_text
    if new_file is None:
        return True
    shown = side_lines(new_file.hunks, "LEFT")
    if any(n not in shown for n in range(start, thread.line + 1)):
        return True
    return "\n".join(shown[n][1] for n in range(start, thread.line + 1)) != thread.anchor_text


def placeable(file: ReviewFile | None, thread: Thread) -> bool:
    """GitHub takes a line comment only on a line its diff shows (a range in one hunk)."""
    if file is None:
        return False
    shown = side_lines(file.hunks, thread.side)
    start = thread.start_line or thread.line
    return (thread.line in shown and start in shown
            and shown[start][0] == shown[thread.line][0])


def verify_signature(secret: str, body: bytes, signature: str) -> bool:
    """X-Hub-Signature-256: "sha256=" + hex HMAC-SHA256 of the raw body, compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _now() -> datetime:
    return datetime.now(UTC)


def _review_file(changed: ChangedFile) -> ReviewFile:
    return ReviewFile(changed.path, changed.status, changed.additions, changed.deletions,
                      changed.previous_path, changed.patch,
                      parse_patch_lenient(changed.path, changed.patch))


# --- the domain -------------------------------------------------------------------


class ReviewDomain:
    def __init__(self, repo: ReviewRepository, github: GitHub, members: MembershipPort,
                 directory: DirectoryPort, events: EventsPort, contents: ContentsPort,
                 deliveries: DeliveriesPort, render: Renderer, limits: Limits,
                 webhook_secret: str) -> None:
        self._repo = repo
        self._github = github
        self._members = members
        self._directory = directory
        self._events = events
        self._contents = contents
        self._deliveries = deliveries
        self._render = render
        self._limits = limits
        self._secret = webhook_secret

    # --- access ------------------------------------------------------------------

    async def _access(self, caller: Caller, session_id: str, need: str, what: str) -> None:
        """Let the caller in for `need` ("read", "write" or "owner"), or refuse.

        A user who is not a member learns nothing: NotFound, as if the thing
        did not exist. Internal callers without a user may read.
        """
        session_id_var.set(session_id)
        if caller.user_id is None:
            if caller.internal and need == "read":
                return
            raise Unauthenticated("a user access token is required")
        membership = await self._members.membership(session_id, caller.user_id)
        if membership is None:
            raise NotFound(f"{what} not found")
        if need == "read":
            return
        if need == "owner" and membership.role != "owner":
            raise PermissionDenied("only the session's owner can publish the review")
        if membership.role == "viewer":
            raise PermissionDenied("viewers can read the review but not change it")
        if not membership.active:
            raise FailedPrecondition("the session has ended; its review is read-only")

    async def _review(self, caller: Caller, review_id: str, need: str) -> Review:
        key = _uuid(review_id)
        review = await self._repo.get_review(key) if key else None
        if review is None:
            raise NotFound("review not found")
        await self._access(caller, review.session_id, need, "review")
        return review

    async def _shown(self, reviews: list[Review]) -> list[Review]:
        """Reviews as people see them: their verdicts with their authors' profiles."""
        ids = [v.author_id for r in reviews for v in r.verdicts]
        if not ids:
            return reviews
        people = await self._directory.people(ids)
        return [replace(r, verdicts=[replace(v, author=people.get(v.author_id))
                                     for v in r.verdicts]) for r in reviews]

    async def _fresh(self, review: Review) -> Review:
        """The review as stored now, as people see it (for an event after a change)."""
        return (await self._shown([await self._repo.get_review(review.id) or review]))[0]

    async def _as_user(self, user_id: str, call: Callable[[str], Awaitable[T]]) -> T:
        """Run a GitHub call with a user's token; a refused token is not asked for again."""
        token = await self._directory.github_token(user_id)
        try:
            return await call(token)
        except FailedPrecondition as exc:
            if exc.reason == "github_reauth":
                self._directory.forget(user_id)
            raise

    # --- import ------------------------------------------------------------------

    async def create_review(self, caller: Caller, session_id: str, repo: str, pull_number: int,
                            ref: str) -> Review:
        repo = repo.strip()
        ref = ref.strip()
        check_import(repo, pull_number, ref)
        if _uuid(session_id) is None:
            raise NotFound("session not found")
        await self._access(caller, session_id, "write", "session")
        user = caller.require_user()
        # Everything is fetched before anything is written: a GitHub failure
        # part-way leaves no trace. (Should a push land between the two reads,
        # its synchronize webhook brings the review to the new head.)
        if pull_number:
            async def fetch_pull(token: str) -> tuple[PullInfo, list[ChangedFile]]:
                return await asyncio.gather(
                    self._github.pull(token, user, repo, pull_number),
                    self._github.pull_files(token, user, repo, pull_number,
                                            self._limits.max_files))

            pull, changed = await self._as_user(user, fetch_pull)
            head, base, title = pull.head_sha, pull.base_sha, pull.title
        else:
            async def fetch_ref(token: str) -> CommitInfo:
                return await self._github.commit(token, repo, ref)

            commit = await self._as_user(user, fetch_ref)
            head, base, title, changed = (commit.sha, commit.parent_sha, commit.title,
                                          commit.files)
        files = [_review_file(c) for c in changed]
        now = _now()
        review = Review(id=new_id(), session_id=session_id, repo=repo,
                        pull_number=pull_number or None, ref=ref, head_sha=head, base_sha=base,
                        title=title, state="open", created_by=user, created_at=now,
                        updated_at=now, files=[f.summary for f in files])
        await self._repo.insert_review(review, files)
        log.info("review imported", extra={"review_id": review.id, "files": len(files)})
        await self._emit(review.session_id, "review.created", self._render.review(review),
                         review.id, user)
        return review

    async def list_reviews(self, caller: Caller, session_id: str, limit: int,
                           cursor: str) -> tuple[list[Review], str]:
        if _uuid(session_id) is None:
            raise NotFound("session not found")
        await self._access(caller, session_id, "read", "session")
        limit = min(max(limit or 50, 1), 100)
        reviews = await self._repo.list_reviews(session_id, limit + 1, decode_cursor(cursor))
        more = len(reviews) > limit
        reviews = reviews[:limit]
        next_cursor = encode_cursor(reviews[-1].created_at, reviews[-1].id) if more else ""
        return await self._shown(reviews), next_cursor

    async def get_review(self, caller: Caller, review_id: str) -> Review:
        return (await self._shown([await self._review(caller, review_id, "read")]))[0]

    # --- files -------------------------------------------------------------------

    async def get_file(self, caller: Caller, review_id: str, path: str) -> FileView:
        review = await self._review(caller, review_id, "read")
        file = await self._file(review, path)
        return FileView(file, await self._content(review, file, caller), review.head_sha)

    async def _file(self, review: Review, path: str) -> ReviewFile:
        file = await self._repo.get_file(review.id, path) if storable_path(path) else None
        if file is None:
            raise NotFound("file not found in this review")
        return file

    async def _content(self, review: Review, file: ReviewFile, caller: Caller) -> str | None:
        if file.status == "removed":
            return None
        data = await self._read_at(review, file.path, review.head_sha, caller.user_id)
        if data is None:
            return None
        return data.decode("utf-8", errors="replace")

    async def _read_at(self, review: Review, path: str, sha: str,
                       fallback_user: str | None) -> bytes | None:
        """A file's bytes at a commit, from the cache or GitHub; None when it does not exist.

        Read as the review's importer: members see what the import showed, even
        those whose own GitHub account cannot read the repository.
        """
        cached = await self._contents.get(sha, path)
        if cached is not None:
            return cached

        async def fetch(token: str) -> bytes:
            return await self._github.contents(token, review.repo, path, sha,
                                               self._limits.max_file_bytes)

        try:
            try:
                data = await self._as_user(review.created_by, fetch)
            except FailedPrecondition:
                if not fallback_user or fallback_user == review.created_by:
                    raise
                data = await self._as_user(fallback_user, fetch)
        except NotFound:
            return None
        await self._contents.put(sha, path, data)
        return data

    # --- threads -----------------------------------------------------------------

    async def create_thread(self, caller: Caller, review_id: str, path: str, line: int,
                            start_line: int | None, side: str, body: str) -> Thread:
        review = await self._review(caller, review_id, "write")
        user = caller.require_user()
        check_body(body)
        file = await self._repo.get_file(review.id, path) if storable_path(path) else None
        if file is None:
            raise unprocessable("path", "path is not a file of this review")
        content = await self._content(review, file, caller) if side == "RIGHT" else None
        text = anchor(file, content, side, line, start_line)
        now = _now()
        thread = Thread(id=new_id(), review_id=review.id, path=path, side=side, line=line,
                        start_line=start_line, commit_sha=review.head_sha, anchor_text=text,
                        resolved=False, outdated=False, created_by=user, created_at=now,
                        updated_at=now)
        comment = Comment(new_id(), thread.id, user, body, now)
        await self._repo.insert_thread(thread, comment)
        thread = replace(thread, comments=[comment])
        await self._emit(review.session_id, "review.thread.created",
                         self._render.thread(thread), review.id, user)
        return thread

    async def list_threads(self, caller: Caller, review_id: str, limit: int,
                           cursor: str) -> tuple[list[Thread], str]:
        review = await self._review(caller, review_id, "read")
        limit = min(max(limit or 100, 1), 500)
        threads = await self._repo.list_threads(review.id, limit + 1, decode_cursor(cursor))
        more = len(threads) > limit
        threads = threads[:limit]
        next_cursor = encode_cursor(threads[-1].created_at, threads[-1].id) if more else ""
        return threads, next_cursor

    async def add_comment(self, caller: Caller, review_id: str, thread_id: str,
                          body: str) -> Comment:
        review = await self._review(caller, review_id, "write")
        user = caller.require_user()
        check_body(body)
        key = _uuid(thread_id)
        comment = Comment(new_id(), key or "", user, body, _now())
        if key is None or not await self._repo.insert_comment(review.id, comment):
            raise NotFound("thread not found")
        await self._emit(review.session_id, "review.comment.created",
                         self._render.comment(comment), review.id, user)
        return comment

    async def set_resolved(self, caller: Caller, review_id: str, thread_id: str,
                           resolved: bool) -> Thread:
        review = await self._review(caller, review_id, "write")
        key = _uuid(thread_id)
        thread, changed = (await self._repo.set_resolved(review.id, key, resolved)
                           if key else (None, False))
        if thread is None:
            raise NotFound("thread not found")
        if changed:
            fresh = await self._fresh(review)
            await self._emit(review.session_id, "review.updated", {
                **self._render.review(fresh),
                "change": "thread_resolved" if resolved else "thread_unresolved",
                "thread": self._render.thread(thread)}, review.id, caller.user_id)
        return thread

    # --- verdicts ----------------------------------------------------------------

    async def create_verdict(self, caller: Caller, review_id: str, state: str,
                             body: str) -> Verdict:
        review = await self._review(caller, review_id, "write")
        user = caller.require_user()
        if state not in VERDICT_STATES:
            raise InvalidArgument("state must be approve, request_changes or comment",
                                  [FieldViolation("state", "must be approve, request_changes "
                                                           "or comment")])
        check_body(body, allow_empty=True)
        verdict = Verdict(new_id(), review.id, user, state, body, _now())
        await self._repo.insert_verdict(verdict)
        await self._emit(review.session_id, "review.updated", {
            **self._render.review(await self._fresh(review)),
            "change": "verdict", "verdict": self._render.verdict(verdict)}, review.id, user)
        return verdict

    # --- publishing --------------------------------------------------------------

    async def publish(self, caller: Caller, review_id: str) -> Published:
        review = await self._review(caller, review_id, "owner")
        user = caller.require_user()
        if review.pull_number is None:
            raise FailedPrecondition("only a pull request's review can be published; "
                                     "this review imported a ref")
        claim = await self._repo.begin_publish(review.id, PUBLISH_LEASE_SECONDS)
        if claim == "published":
            done = await self._repo.published(review.id)
            assert done is not None  # noqa: S101 - "published" means the row says so
            return done
        if claim == "busy":
            raise FailedPrecondition("this review is being published right now",
                                     reason="in_progress")
        if claim == "missing":
            raise NotFound("review not found")
        uncertain = claim == "claimed_uncertain"
        try:
            published = await self._post(review, user, look_first=uncertain)
        except (OutcomeUnknown, asyncio.CancelledError):
            # GitHub may have the review: the next attempt looks for it before posting.
            await self._repo.release_publish(review.id, uncertain=True)
            raise
        except BaseException:
            # A definite refusal; an earlier unknown outcome stays unknown until looked at.
            await self._repo.release_publish(review.id, uncertain=uncertain)
            raise
        fresh = await self._fresh(review)
        await self._emit(review.session_id, "review.updated", {
            **self._render.review(fresh), "change": "published"}, review.id, user)
        return published

    async def _post(self, review: Review, user: str, *, look_first: bool) -> Published:
        number = review.pull_number
        assert number is not None  # noqa: S101 - checked by publish()
        marker = f"<!-- tandem-review:{review.id} -->"
        if look_first:
            async def existing(token: str) -> tuple[GitHubUser, list[dict[str, Any]]]:
                me, found = await asyncio.gather(
                    self._github.viewer(token), self._github.reviews(token, review.repo, number))
                return me, found

            me, found = await self._as_user(user, existing)
            for posted in found:
                # The marker is public text anyone commenting on the pull request can
                # copy: only a review the publishing user's own token wrote is ours.
                if marker not in str(posted.get("body") or ""):
                    continue
                if not _authored_by(posted, me):
                    log.warning("a review carrying this review's marker was written by another "
                                "GitHub user; not adopted",
                                extra={"review_id": review.id, "github_review_id": posted.get("id")})
                    continue
                at = await self._repo.finish_publish(review.id, int(posted["id"]),
                                                     str(posted.get("html_url") or ""))
                log.info("adopted a review an earlier publish had posted",
                         extra={"review_id": review.id})
                return Published(int(posted["id"]), str(posted.get("html_url") or ""), at)
        payload, line_comments, notes = await self._payload(review, marker)

        async def post(token: str) -> PostedReview:
            return await self._github.create_review(token, review.repo, number, payload)

        posted_review = await self._as_user(user, post)
        at = await self._repo.finish_publish(review.id, posted_review.id, posted_review.html_url)
        log.info("review published", extra={"review_id": review.id,
                                            "line_comments": line_comments, "body_notes": notes})
        return Published(posted_review.id, posted_review.html_url, at)

    async def _payload(self, review: Review, marker: str) -> tuple[dict[str, Any], int, int]:
        """One GitHub review: the latest verdict and every open, current thread.

        Threads on lines the diff shows become line comments; the rest (GitHub
        refuses comments off the diff) are listed in the review's body.
        """
        files = {f.path: f for f in await self._repo.get_files(review.id)}
        threads = [t for t in await self._repo.current_threads(review.id) if not t.resolved]
        authors = [c.author_id for t in threads for c in t.comments[1:]]
        logins = await self._directory.logins(authors)
        comments: list[dict[str, Any]] = []
        notes: list[str] = []
        for thread in threads:
            text = _thread_text(thread, logins)
            if placeable(files.get(thread.path), thread):
                comment: dict[str, Any] = {"path": thread.path, "line": thread.line,
                                           "side": thread.side, "body": text}
                if thread.start_line is not None and thread.start_line < thread.line:
                    comment["start_line"] = thread.start_line
                    comment["start_side"] = thread.side
                comments.append(comment)
            else:
                where = f"`{thread.path}` line {thread.line} ({thread.side})"
                notes.append(f"- {where}: " + text.replace("\n", "\n  "))
        verdict = review.verdict
        body = verdict.body.strip() if verdict and verdict.body.strip() else DEFAULT_REVIEW_BODY
        if notes:
            body += "\n\n**Comments on lines outside the diff**\n\n" + "\n".join(notes)
        body += "\n\n" + marker
        event = _GITHUB_EVENTS[verdict.state] if verdict else "COMMENT"
        return ({"commit_id": review.head_sha, "event": event, "body": body,
                 "comments": comments}, len(comments), len(notes))

    # --- webhooks ----------------------------------------------------------------

    async def handle_webhook(self, event: str, delivery_id: str, signature: str,
                             body: bytes) -> str:
        if not signature or not verify_signature(self._secret, body, signature):
            raise Unauthenticated("missing or invalid X-Hub-Signature-256")
        if not _DELIVERY_ID.match(delivery_id):
            raise InvalidArgument("X-GitHub-Delivery is missing or malformed",
                                  [FieldViolation("X-GitHub-Delivery", "required")])
        # X-GitHub-Delivery is not signed: the same signed body under a new id (or
        # another X-GitHub-Event) is a replay, so the body's digest is claimed too.
        digest = hashlib.sha256(body).hexdigest()
        if not await self._deliveries.claim(delivery_id, digest):
            return "duplicate"
        try:
            outcome = await self._dispatch(event, body)
        except BaseException:
            await self._deliveries.release(delivery_id, digest)
            raise
        await self._deliveries.done(delivery_id, digest)
        return outcome

    async def _dispatch(self, event: str, body: bytes) -> str:
        if event != "pull_request":
            return "ignored"
        try:
            payload = orjson.loads(body)
            action = payload.get("action")
            repo = str(payload["repository"]["full_name"])
            number = int(payload.get("number") or payload["pull_request"]["number"])
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            raise InvalidArgument("the pull_request payload is not one GitHub sends") from None
        if action != "synchronize":
            return "ignored"
        failed = 0
        for review in await self._repo.reviews_for_pull(repo, number):
            try:
                await self.refresh(review)
            except Unavailable as exc:
                # Transient (GitHub down, rate-limited): worth a redelivery.
                failed += 1
                log.warning("could not refresh a review after a push",
                            extra={"review_id": review.id, "error": exc.message})
            except DomainError as exc:
                # Permanent for this review (importer's token revoked, PR gone): a
                # redelivery would fail the same way and hold back every other review.
                log.warning("review left at its old head after a push",
                            extra={"review_id": review.id, "error": exc.message})
        if failed:
            # Answer an error so the delivery shows as failed and a redelivery
            # (released above) refreshes what is left; refreshed reviews skip.
            raise Unavailable(f"{failed} review(s) could not be refreshed; redeliver later",
                              retry_after=30, reason="github_unavailable")
        return "processed"

    async def refresh(self, review: Review) -> bool:
        """Move a pull request's review to the pull request's current head; False if already there.

        Threads are kept; a thread is marked outdated when its lines read
        differently at the new head or its file is gone.
        """
        number = review.pull_number
        if number is None:
            return False
        user = review.created_by

        async def fetch(token: str) -> PullInfo:
            return await self._github.pull(token, user, review.repo, number)

        pull = await self._as_user(user, fetch)
        if pull.head_sha == review.head_sha and pull.base_sha == review.base_sha:
            return False

        async def fetch_files(token: str) -> list[ChangedFile]:
            return await self._github.pull_files(token, user, review.repo, number,
                                                 self._limits.max_files)

        files = [_review_file(c) for c in await self._as_user(user, fetch_files)]
        by_path = {f.path: f for f in files}
        threads = await self._repo.current_threads(review.id)
        contents: dict[str, str | None] = {}
        for path in sorted({t.path for t in threads if t.side == "RIGHT"}):
            data = await self._read_at(review, path, pull.head_sha, None)
            contents[path] = None if data is None else data.decode("utf-8", errors="replace")
        outdated = [t.id for t in threads
                    if is_outdated(t, by_path.get(t.path), contents.get(t.path))]
        moved = await self._repo.apply_refresh(review.id, review.head_sha, pull.head_sha,
                                               pull.base_sha, pull.title, files, outdated)
        if not moved:
            return False
        log.info("review moved to a new head", extra={"review_id": review.id,
                                                     "outdated_threads": len(outdated)})
        fresh = await self._repo.get_review(review.id)
        if fresh is not None:
            fresh = (await self._shown([fresh]))[0]
            await self._emit(review.session_id, "review.updated", {
                **self._render.review(fresh), "change": "synchronize",
                "outdated_thread_ids": outdated}, review.id, None)
        return True

    # --- events ------------------------------------------------------------------

    async def _emit(self, session_id: str, kind: str, payload: dict[str, Any], review_id: str,
                    user_id: str | None) -> None:
        await self._events.append(session_id, kind, event_payload(payload, review_id), user_id)


def event_payload(payload: dict[str, Any], review_id: str) -> dict[str, Any]:
    """The REST JSON plus review_id, shaped to fit a session event.

    The envelope carries session_id itself (the sessions service refuses it in
    a payload), and an event is at most EVENT_MAX_BYTES: a bigger one keeps
    its ids and scalars, drops its lists and long texts and says `truncated`,
    so clients fetch the whole thing over REST.
    """
    out = {k: v for k, v in payload.items() if k != "session_id"}
    out["review_id"] = review_id
    if len(orjson.dumps(out)) <= EVENT_MAX_BYTES:
        return out
    slim: dict[str, Any] = {}
    for key, value in out.items():
        if isinstance(value, list):
            slim[key] = []
        elif isinstance(value, dict):
            slim[key] = {k: v for k, v in value.items() if not isinstance(v, list | dict)
                         and not (isinstance(v, str) and len(v) > 200)}
        elif isinstance(value, str) and len(value) > 200:
            slim[key] = value[:200]
        else:
            slim[key] = value
    slim["truncated"] = True
    return slim


def _authored_by(posted: dict[str, Any], me: GitHubUser) -> bool:
    """Whether a review GitHub lists was written by `me`, by GitHub's id (logins can change)."""
    author = posted.get("user")
    return isinstance(author, dict) and author.get("id") == me.id


def _thread_text(thread: Thread, logins: dict[str, str]) -> str:
    """A thread as one GitHub comment: the opening comment, then replies signed by login."""
    if not thread.comments:
        return ""
    parts = [thread.comments[0].body]
    for reply in thread.comments[1:]:
        who = logins.get(reply.author_id)
        parts.append(f"**@{who}:** {reply.body}" if who else reply.body)
    return "\n\n".join(parts)

