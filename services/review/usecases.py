"""The review service's application logic: import, threads, verdicts, publishing once, webhooks.

One class per concern (Reviews, Threads, Verdicts, Publishing, Webhooks) over
three small helpers every concern shares (Access, Showing, Sources);
ReviewUseCases builds them all from the ports and is what the servicer holds.
Everything outside goes through the ports (ports.py); the rules are in
domain.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from services.common.context import session_id_var
from services.common.cursors import decode_cursor
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
from services.review.domain import (
    GITHUB_UNAVAILABLE,
    ChangedFile,
    Comment,
    CommitInfo,
    FileView,
    GitHubUser,
    Limits,
    ListedReview,
    OutcomeUnknown,
    PostedReview,
    Published,
    PullInfo,
    Review,
    ReviewFile,
    Thread,
    Verdict,
    anchor,
    check_body,
    check_import,
    check_verdict_state,
    event_payload,
    github_review,
    is_outdated,
    new_id,
    now,
    one_page,
    ours,
    page_size,
    parse_uuid,
    publish_marker,
    pull_request_event,
    reply_authors,
    review_file,
    storable_path,
    unprocessable,
    valid_delivery_id,
    verify_signature,
)
from services.review.ports import (
    ContentCache,
    Deliveries,
    EventPublisher,
    GitHubApi,
    Memberships,
    Renderer,
    ReviewStore,
    UserDirectory,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# A publish that has not finished within this long is presumed dead.
PUBLISH_LEASE_SECONDS = 120.0


# --- what every concern shares -------------------------------------------------------


class Access:
    """Who may do what: membership from the sessions service, decided here."""

    def __init__(self, repo: ReviewStore, members: Memberships) -> None:
        self._repo = repo
        self._members = members

    async def enter(self, caller: Caller, session_id: str, need: str, what: str) -> None:
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

    async def review(self, caller: Caller, review_id: str, need: str) -> Review:
        """The review, once the caller may `need` it; NotFound for a stranger or a bad id."""
        key = parse_uuid(review_id)
        review = await self._repo.get_review(key) if key else None
        if review is None:
            raise NotFound("review not found")
        await self.enter(caller, review.session_id, need, "review")
        return review


class Showing:
    """Reviews as people see them (verdict authors' profiles), and the events that show changes."""

    def __init__(self, repo: ReviewStore, directory: UserDirectory, events: EventPublisher,
                 render: Renderer) -> None:
        self._repo = repo
        self._directory = directory
        self._events = events
        self.render = render

    async def shown(self, reviews: list[Review]) -> list[Review]:
        """Reviews as people see them: their verdicts with their authors' profiles."""
        ids = [v.author_id for r in reviews for v in r.verdicts]
        if not ids:
            return reviews
        people = await self._directory.people(ids)
        return [replace(r, verdicts=[replace(v, author=people.get(v.author_id))
                                     for v in r.verdicts]) for r in reviews]

    async def fresh(self, review: Review) -> Review:
        """The review as stored now, as people see it (for an event after a change)."""
        return (await self.shown([await self._repo.get_review(review.id) or review]))[0]

    async def emit(self, session_id: str, kind: str, payload: dict[str, Any], review_id: str,
                   user_id: str | None) -> None:
        await self._events.append(session_id, kind, event_payload(payload, review_id), user_id)


class Sources:
    """GitHub as a user (their token from auth), and file contents through the cache."""

    def __init__(self, github: GitHubApi, directory: UserDirectory, contents: ContentCache,
                 limits: Limits) -> None:
        self.github = github
        self._directory = directory
        self._contents = contents
        self.limits = limits

    async def as_user(self, user_id: str, call: Callable[[str], Awaitable[T]]) -> T:
        """Run a GitHub call with a user's token; a refused token is not asked for again."""
        token = await self._directory.github_token(user_id)
        try:
            return await call(token)
        except FailedPrecondition as exc:
            if exc.reason == "github_reauth":
                self._directory.forget(user_id)
            raise

    async def content(self, review: Review, file: ReviewFile, caller: Caller) -> str | None:
        """A file's text at the review's head; None when the file is removed there."""
        if file.status == "removed":
            return None
        data = await self.read_at(review, file.path, review.head_sha, caller.user_id)
        if data is None:
            return None
        return data.decode("utf-8", errors="replace")

    async def read_at(self, review: Review, path: str, sha: str,
                      fallback_user: str | None) -> bytes | None:
        """A file's bytes at a commit, from the cache or GitHub; None when it does not exist.

        Read as the review's importer: members see what the import showed, even
        those whose own GitHub account cannot read the repository.
        """
        cached = await self._contents.get(sha, path)
        if cached is not None:
            return cached

        async def fetch(token: str) -> bytes:
            return await self.github.contents(token, review.repo, path, sha,
                                              self.limits.max_file_bytes)

        try:
            try:
                data = await self.as_user(review.created_by, fetch)
            except FailedPrecondition:
                if not fallback_user or fallback_user == review.created_by:
                    raise
                data = await self.as_user(fallback_user, fetch)
        except NotFound:
            return None
        await self._contents.put(sha, path, data)
        return data


# --- the concerns ------------------------------------------------------------------------


class _Concern:
    """What each concern below is built on: the store and the three shared helpers."""

    def __init__(self, repo: ReviewStore, access: Access, showing: Showing,
                 sources: Sources) -> None:
        self._repo = repo
        self._access = access
        self._showing = showing
        self._sources = sources


class Reviews(_Concern):
    """Importing a pull request or ref, reading reviews and files, moving to a new head."""

    async def create_review(self, caller: Caller, session_id: str, repo: str, pull_number: int,
                            ref: str) -> Review:
        repo = repo.strip()
        ref = ref.strip()
        check_import(repo, pull_number, ref)
        if parse_uuid(session_id) is None:
            raise NotFound("session not found")
        await self._access.enter(caller, session_id, "write", "session")
        user = caller.require_user()
        github, max_files = self._sources.github, self._sources.limits.max_files
        # Everything is fetched before anything is written: a GitHub failure
        # part-way leaves no trace. (Should a push land between the two reads,
        # its synchronize webhook brings the review to the new head.)
        if pull_number:
            async def fetch_pull(token: str) -> tuple[PullInfo, list[ChangedFile]]:
                return await asyncio.gather(
                    github.pull(token, user, repo, pull_number),
                    github.pull_files(token, user, repo, pull_number, max_files))

            pull, changed = await self._sources.as_user(user, fetch_pull)
            head, base, title = pull.head_sha, pull.base_sha, pull.title
        else:
            async def fetch_ref(token: str) -> CommitInfo:
                return await github.commit(token, repo, ref)

            commit = await self._sources.as_user(user, fetch_ref)
            head, base, title, changed = (commit.sha, commit.parent_sha, commit.title,
                                          commit.files)
        files = [review_file(c) for c in changed]
        at = now()
        review = Review(id=new_id(), session_id=session_id, repo=repo,
                        pull_number=pull_number or None, ref=ref, head_sha=head, base_sha=base,
                        title=title, state="open", created_by=user, created_at=at,
                        updated_at=at, files=[f.summary for f in files])
        await self._repo.insert_review(review, files)
        log.info("review imported", extra={"review_id": review.id, "files": len(files)})
        await self._showing.emit(review.session_id, "review.created",
                                 self._showing.render.review(review), review.id, user)
        return review

    async def list_reviews(self, caller: Caller, session_id: str, limit: int,
                           cursor: str) -> tuple[list[Review], str]:
        if parse_uuid(session_id) is None:
            raise NotFound("session not found")
        await self._access.enter(caller, session_id, "read", "session")
        limit = page_size(limit, default=50, most=100)
        reviews, next_cursor = one_page(
            await self._repo.list_reviews(session_id, limit + 1, decode_cursor(cursor)), limit)
        return await self._showing.shown(reviews), next_cursor

    async def get_review(self, caller: Caller, review_id: str) -> Review:
        return (await self._showing.shown([await self._access.review(caller, review_id,
                                                                     "read")]))[0]

    async def get_file(self, caller: Caller, review_id: str, path: str) -> FileView:
        review = await self._access.review(caller, review_id, "read")
        file = await self._repo.get_file(review.id, path) if storable_path(path) else None
        if file is None:
            raise NotFound("file not found in this review")
        return FileView(file, await self._sources.content(review, file, caller), review.head_sha)

    async def refresh(self, review: Review) -> bool:
        """Move a pull request's review to the pull request's current head; False if already there.

        Threads are kept; a thread is marked outdated when its lines read
        differently at the new head or its file is gone.
        """
        number = review.pull_number
        if number is None:
            return False
        user = review.created_by
        github, max_files = self._sources.github, self._sources.limits.max_files

        async def fetch(token: str) -> PullInfo:
            return await github.pull(token, user, review.repo, number)

        pull = await self._sources.as_user(user, fetch)
        if pull.head_sha == review.head_sha and pull.base_sha == review.base_sha:
            return False

        async def fetch_files(token: str) -> list[ChangedFile]:
            return await github.pull_files(token, user, review.repo, number, max_files)

        files = [review_file(c) for c in await self._sources.as_user(user, fetch_files)]
        by_path = {f.path: f for f in files}
        threads = await self._repo.current_threads(review.id)
        contents: dict[str, str | None] = {}
        for path in sorted({t.path for t in threads if t.side == "RIGHT"}):
            data = await self._sources.read_at(review, path, pull.head_sha, None)
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
            fresh = (await self._showing.shown([fresh]))[0]
            await self._showing.emit(review.session_id, "review.updated", {
                **self._showing.render.review(fresh), "change": "synchronize",
                "outdated_thread_ids": outdated}, review.id, None)
        return True


class Threads(_Concern):
    """Threads anchored to lines of a file at the head commit, their replies, resolving."""

    async def create_thread(self, caller: Caller, review_id: str, path: str, line: int,
                            start_line: int | None, side: str, body: str) -> Thread:
        review = await self._access.review(caller, review_id, "write")
        user = caller.require_user()
        check_body(body)
        file = await self._repo.get_file(review.id, path) if storable_path(path) else None
        if file is None:
            raise unprocessable("path", "path is not a file of this review")
        content = await self._sources.content(review, file, caller) if side == "RIGHT" else None
        text = anchor(file, content, side, line, start_line)
        at = now()
        thread = Thread(id=new_id(), review_id=review.id, path=path, side=side, line=line,
                        start_line=start_line, commit_sha=review.head_sha, anchor_text=text,
                        resolved=False, outdated=False, created_by=user, created_at=at,
                        updated_at=at)
        comment = Comment(new_id(), thread.id, user, body, at)
        await self._repo.insert_thread(thread, comment)
        thread = replace(thread, comments=[comment])
        await self._showing.emit(review.session_id, "review.thread.created",
                                 self._showing.render.thread(thread), review.id, user)
        return thread

    async def list_threads(self, caller: Caller, review_id: str, limit: int,
                           cursor: str) -> tuple[list[Thread], str]:
        review = await self._access.review(caller, review_id, "read")
        limit = page_size(limit, default=100, most=500)
        return one_page(
            await self._repo.list_threads(review.id, limit + 1, decode_cursor(cursor)), limit)

    async def add_comment(self, caller: Caller, review_id: str, thread_id: str,
                          body: str) -> Comment:
        review = await self._access.review(caller, review_id, "write")
        user = caller.require_user()
        check_body(body)
        key = parse_uuid(thread_id)
        comment = Comment(new_id(), key or "", user, body, now())
        if key is None or not await self._repo.insert_comment(review.id, comment):
            raise NotFound("thread not found")
        await self._showing.emit(review.session_id, "review.comment.created",
                                 self._showing.render.comment(comment), review.id, user)
        return comment

    async def set_resolved(self, caller: Caller, review_id: str, thread_id: str,
                           resolved: bool) -> Thread:
        review = await self._access.review(caller, review_id, "write")
        key = parse_uuid(thread_id)
        thread, changed = (await self._repo.set_resolved(review.id, key, resolved)
                           if key else (None, False))
        if thread is None:
            raise NotFound("thread not found")
        if changed:
            fresh = await self._showing.fresh(review)
            render = self._showing.render
            await self._showing.emit(review.session_id, "review.updated", {
                **render.review(fresh),
                "change": "thread_resolved" if resolved else "thread_unresolved",
                "thread": render.thread(thread)}, review.id, caller.user_id)
        return thread


class Verdicts(_Concern):
    """Verdicts: each reviewer's latest counts, the latest of anyone's is what publishing posts."""

    async def create_verdict(self, caller: Caller, review_id: str, state: str,
                             body: str) -> Verdict:
        review = await self._access.review(caller, review_id, "write")
        user = caller.require_user()
        check_verdict_state(state)
        check_body(body, allow_empty=True)
        verdict = Verdict(new_id(), review.id, user, state, body, now())
        await self._repo.insert_verdict(verdict)
        render = self._showing.render
        await self._showing.emit(review.session_id, "review.updated", {
            **render.review(await self._showing.fresh(review)),
            "change": "verdict", "verdict": render.verdict(verdict)}, review.id, user)
        return verdict


class Publishing(_Concern):
    """Posting the review to its pull request once, also across retries and crashes.

    A row lease (begin_publish) lets one publish post at a time; an attempt
    whose outcome is unknown leaves the review "uncertain", and the next one
    looks for the review the earlier one may have posted (by a marker in its
    body, written by the same GitHub user) before posting again.
    """

    def __init__(self, repo: ReviewStore, access: Access, showing: Showing, sources: Sources,
                 directory: UserDirectory) -> None:
        super().__init__(repo, access, showing, sources)
        self._directory = directory

    async def publish(self, caller: Caller, review_id: str) -> Published:
        review = await self._access.review(caller, review_id, "owner")
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
        fresh = await self._showing.fresh(review)
        await self._showing.emit(review.session_id, "review.updated", {
            **self._showing.render.review(fresh), "change": "published"}, review.id, user)
        return published

    async def _post(self, review: Review, user: str, *, look_first: bool) -> Published:
        number = review.pull_number
        assert number is not None  # noqa: S101 - checked by publish()
        github = self._sources.github
        marker = publish_marker(review.id)
        if look_first:
            async def existing(token: str) -> tuple[GitHubUser, list[ListedReview]]:
                me, found = await asyncio.gather(
                    github.viewer(token), github.reviews(token, review.repo, number))
                return me, found

            me, found = await self._sources.as_user(user, existing)
            for posted in found:
                mine = ours(posted, marker, me)
                if mine is None:
                    continue
                if not mine:
                    log.warning("a review carrying this review's marker was written by another "
                                "GitHub user; not adopted",
                                extra={"review_id": review.id, "github_review_id": posted.id})
                    continue
                at = await self._repo.finish_publish(review.id, posted.id, posted.html_url)
                log.info("adopted a review an earlier publish had posted",
                         extra={"review_id": review.id})
                return Published(posted.id, posted.html_url, at)
        files = await self._repo.get_files(review.id)
        threads = await self._repo.current_threads(review.id)
        logins = await self._directory.logins(reply_authors(threads))
        draft = github_review(review, files, threads, logins, marker)

        async def post(token: str) -> PostedReview:
            return await github.create_review(token, review.repo, number, draft.payload)

        posted_review = await self._sources.as_user(user, post)
        at = await self._repo.finish_publish(review.id, posted_review.id, posted_review.html_url)
        log.info("review published", extra={"review_id": review.id,
                                            "line_comments": draft.line_comments,
                                            "body_notes": draft.body_notes})
        return Published(posted_review.id, posted_review.html_url, at)


class Webhooks:
    """Inbound GitHub webhooks: signed, deduplicated, a push moves the pull request's reviews."""

    def __init__(self, repo: ReviewStore, deliveries: Deliveries, reviews: Reviews,
                 secret: str) -> None:
        self._repo = repo
        self._deliveries = deliveries
        self._reviews = reviews
        self._secret = secret

    async def handle_webhook(self, event: str, delivery_id: str, signature: str,
                             body: bytes) -> str:
        if not signature or not verify_signature(self._secret, body, signature):
            raise Unauthenticated("missing or invalid X-Hub-Signature-256")
        if not valid_delivery_id(delivery_id):
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
        pull = pull_request_event(body)
        if pull.action != "synchronize":
            return "ignored"
        failed = 0
        for review in await self._repo.reviews_for_pull(pull.repo, pull.number):
            try:
                await self._reviews.refresh(review)
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
                              retry_after=30, reason=GITHUB_UNAVAILABLE)
        return "processed"


class ReviewUseCases:
    """Every review use case, built from the ports: what the servicer holds.

    One facade over per-concern classes so the composition root wires ports
    once and each concern's class names only what it uses.
    """

    def __init__(self, *, repo: ReviewStore, github: GitHubApi, members: Memberships,
                 directory: UserDirectory, events: EventPublisher, contents: ContentCache,
                 deliveries: Deliveries, render: Renderer, limits: Limits,
                 webhook_secret: str) -> None:
        access = Access(repo, members)
        showing = Showing(repo, directory, events, render)
        sources = Sources(github, directory, contents, limits)
        self.reviews = Reviews(repo, access, showing, sources)
        self.threads = Threads(repo, access, showing, sources)
        self.verdicts = Verdicts(repo, access, showing, sources)
        self.publishing = Publishing(repo, access, showing, sources, directory)
        self.webhooks = Webhooks(repo, deliveries, self.reviews, webhook_secret)
