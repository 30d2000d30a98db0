"""In-memory implementations of the review ports (services/review/ports.py), for use-case unit tests.

They keep the contracts the real adapters keep (what the repository's SQL
guarantees, what GitHub and the peers answer) and record what was asked, so a
test can see what the use cases did without a database, Redis or a network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from services.common.errors import DomainError, FailedPrecondition, NotFound
from services.common.membership import Membership
from services.review.domain import (
    CachedAnswer,
    ChangedFile,
    Comment,
    CommitInfo,
    GitHubUser,
    ListedReview,
    Person,
    PostedReview,
    PublishClaim,
    Published,
    PullInfo,
    Review,
    ReviewFile,
    Thread,
    Verdict,
    current_verdicts,
    now,
)

# --- the repository --------------------------------------------------------------------


@dataclass
class _Stored:
    review: Review
    files: list[ReviewFile]
    publish_state: str | None = None
    publish_started_at: datetime | None = None


class MemoryStore:
    """ReviewStore in memory, with the guarantees of ReviewRepository's SQL."""

    def __init__(self) -> None:
        self.reviews: dict[str, _Stored] = {}
        self.threads: dict[str, Thread] = {}
        self.verdicts: list[Verdict] = []

    def _complete(self, stored: _Stored) -> Review:
        current = current_verdicts([v for v in self.verdicts if v.review_id == stored.review.id])
        return replace(stored.review, files=[f.summary for f in stored.files],
                       verdict=current[-1] if current else None, verdicts=current)

    async def insert_review(self, review: Review, files: Sequence[ReviewFile]) -> None:
        self.reviews[review.id] = _Stored(review, list(files))

    async def get_review(self, review_id: str) -> Review | None:
        stored = self.reviews.get(review_id)
        return self._complete(stored) if stored else None

    async def list_reviews(self, session_id: str, limit: int,
                           after: tuple[datetime, str] | None) -> list[Review]:
        found = sorted((s for s in self.reviews.values() if s.review.session_id == session_id),
                       key=lambda s: (s.review.created_at, s.review.id), reverse=True)
        if after is not None:
            found = [s for s in found if (s.review.created_at, s.review.id) < after]
        return [self._complete(s) for s in found[:limit]]

    async def reviews_for_pull(self, repo: str, number: int) -> list[Review]:
        return [s.review for s in sorted(self.reviews.values(), key=lambda s: s.review.created_at)
                if s.review.repo.lower() == repo.lower() and s.review.pull_number == number]

    async def get_file(self, review_id: str, path: str) -> ReviewFile | None:
        stored = self.reviews.get(review_id)
        return next((f for f in stored.files if f.path == path), None) if stored else None

    async def get_files(self, review_id: str) -> list[ReviewFile]:
        return list(self.reviews[review_id].files)

    async def apply_refresh(self, review_id: str, expected_head: str, head_sha: str,
                            base_sha: str, title: str, files: Sequence[ReviewFile],
                            outdated: Sequence[str]) -> bool:
        stored = self.reviews[review_id]
        if stored.review.head_sha != expected_head:
            return False
        stored.review = replace(stored.review, head_sha=head_sha, base_sha=base_sha, title=title,
                                updated_at=now())
        stored.files = list(files)
        for thread_id in outdated:
            self.threads[thread_id] = replace(self.threads[thread_id], outdated=True)
        return True

    async def insert_thread(self, thread: Thread, comment: Comment) -> None:
        self.threads[thread.id] = replace(thread, comments=[comment])

    def _ordered(self, review_id: str) -> list[Thread]:
        return sorted((t for t in self.threads.values() if t.review_id == review_id),
                      key=lambda t: (t.created_at, t.id))

    async def list_threads(self, review_id: str, limit: int,
                           after: tuple[datetime, str] | None) -> list[Thread]:
        found = self._ordered(review_id)
        if after is not None:
            found = [t for t in found if (t.created_at, t.id) > after]
        return found[:limit]

    async def current_threads(self, review_id: str) -> list[Thread]:
        return [t for t in self._ordered(review_id) if not t.outdated]

    async def insert_comment(self, review_id: str, comment: Comment) -> bool:
        thread = self.threads.get(comment.thread_id)
        if thread is None or thread.review_id != review_id:
            return False
        self.threads[thread.id] = replace(thread, comments=[*thread.comments, comment],
                                          updated_at=now())
        return True

    async def set_resolved(self, review_id: str, thread_id: str,
                           resolved: bool) -> tuple[Thread | None, bool]:
        thread = self.threads.get(thread_id)
        if thread is None or thread.review_id != review_id:
            return None, False
        if thread.resolved == resolved:
            return thread, False
        self.threads[thread_id] = thread = replace(thread, resolved=resolved, updated_at=now())
        return thread, True

    async def insert_verdict(self, verdict: Verdict) -> None:
        self.verdicts.append(verdict)

    async def begin_publish(self, review_id: str, lease_seconds: float) -> PublishClaim:
        stored = self.reviews.get(review_id)
        if stored is None:
            return "missing"
        state = stored.publish_state
        if state == "published":
            return "published"
        live = (stored.publish_started_at is not None
                and stored.publish_started_at > now() - timedelta(seconds=lease_seconds))
        if state == "publishing" and live:
            return "busy"
        stored.publish_state, stored.publish_started_at = "publishing", now()
        return "claimed_uncertain" if state in ("uncertain", "publishing") else "claimed"

    async def finish_publish(self, review_id: str, github_review_id: int,
                             html_url: str) -> datetime:
        stored = self.reviews[review_id]
        at = now()
        stored.publish_state = "published"
        stored.review = replace(stored.review, state="published", github_review_id=github_review_id,
                                github_review_url=html_url, published_at=at, updated_at=at)
        return at

    async def release_publish(self, review_id: str, *, uncertain: bool) -> None:
        stored = self.reviews[review_id]
        if stored.publish_state == "publishing":
            stored.publish_state = "uncertain" if uncertain else None
            stored.publish_started_at = None

    async def published(self, review_id: str) -> Published | None:
        stored = self.reviews.get(review_id)
        if stored is None or stored.publish_state != "published":
            return None
        r = stored.review
        assert r.github_review_id is not None
        assert r.published_at is not None
        return Published(r.github_review_id, r.github_review_url, r.published_at)


# --- GitHub ------------------------------------------------------------------------------


@dataclass
class Pull:
    info: PullInfo
    files: list[ChangedFile]
    # Reviews posted on it, as GitHub lists them.
    reviews: list[ListedReview] = field(default_factory=list)


class FakeGitHub:
    """GitHubApi over a few repositories; `fail` makes the next call of a method raise.

    Tokens name GitHub users (`users`); a token it does not know is refused as
    GitHub refuses a revoked one.
    """

    def __init__(self) -> None:
        self.pulls: dict[tuple[str, int], Pull] = {}
        self.commits: dict[tuple[str, str], CommitInfo] = {}
        self.files: dict[tuple[str, str], bytes] = {}  # (sha, path) -> content
        self.users: dict[str, GitHubUser] = {}  # token -> who it acts as
        self.fail: dict[str, DomainError] = {}
        self.calls: list[tuple[str, str]] = []  # (method, token)
        self.posted: list[tuple[str, int, Mapping[str, Any]]] = []
        self._next_id = 1000

    def _enter(self, method: str, token: str) -> None:
        self.calls.append((method, token))
        if token not in self.users:
            raise FailedPrecondition("GitHub no longer accepts your GitHub authorization; "
                                     "sign in again", reason="github_reauth")
        error = self.fail.pop(method, None)
        if error is not None:
            raise error

    def _pull(self, repo: str, number: int) -> Pull:
        found = self.pulls.get((repo, number))
        if found is None:
            raise NotFound("repository or pull request not found")
        return found

    async def pull(self, token: str, scope: str, repo: str, number: int) -> PullInfo:
        self._enter("pull", token)
        return self._pull(repo, number).info

    async def pull_files(self, token: str, scope: str, repo: str, number: int,
                         max_files: int) -> list[ChangedFile]:
        self._enter("pull_files", token)
        return self._pull(repo, number).files[:max_files]

    async def commit(self, token: str, repo: str, ref: str) -> CommitInfo:
        self._enter("commit", token)
        found = self.commits.get((repo, ref))
        if found is None:
            raise NotFound("repository or ref not found")
        return found

    async def contents(self, token: str, repo: str, path: str, ref: str,
                       max_bytes: int) -> bytes:
        self._enter("contents", token)
        data = self.files.get((ref, path))
        if data is None:
            raise NotFound("file at the review's head commit not found")
        return data

    async def viewer(self, token: str) -> GitHubUser:
        self._enter("viewer", token)
        return self.users[token]

    async def reviews(self, token: str, repo: str, number: int) -> list[ListedReview]:
        self._enter("reviews", token)
        return list(self._pull(repo, number).reviews)

    async def create_review(self, token: str, repo: str, number: int,
                            payload: Mapping[str, Any]) -> PostedReview:
        self._enter("create_review", token)
        self._next_id += 1
        url = f"https://github.example/{repo}/pull/{number}#pullrequestreview-{self._next_id}"
        self._pull(repo, number).reviews.append(ListedReview(
            self._next_id, str(payload["body"]), url, self.users[token].id))
        self.posted.append((repo, number, payload))
        return PostedReview(self._next_id, url)


# --- peers and caches ----------------------------------------------------------------------


class FakeMembers:
    """Memberships: (session id, user id) -> Membership."""

    def __init__(self) -> None:
        self.members: dict[tuple[str, str], Membership] = {}

    async def membership(self, session_id: str, user_id: str) -> Membership | None:
        return self.members.get((session_id, user_id))


class FakeDirectory:
    """UserDirectory: GitHub tokens (none stored: reauth, as auth answers), logins, people."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.people_by_id: dict[str, Person] = {}
        self.forgotten: list[str] = []

    async def github_token(self, user_id: str) -> str:
        token = self.tokens.get(user_id)
        if token is None:
            raise FailedPrecondition("no GitHub authorization is stored for this user; "
                                     "sign in again", reason="github_reauth")
        return token

    def forget(self, user_id: str) -> None:
        self.forgotten.append(user_id)

    async def logins(self, user_ids: list[str]) -> dict[str, str]:
        return {u: self.people_by_id[u].github_login for u in user_ids if u in self.people_by_id}

    async def people(self, user_ids: list[str]) -> dict[str, Person]:
        return {u: self.people_by_id[u] for u in user_ids if u in self.people_by_id}


@dataclass(frozen=True)
class Event:
    session_id: str
    kind: str
    payload: dict[str, Any]
    user_id: str | None


class FakeEvents:
    """EventPublisher: the events appended, in order."""

    def __init__(self) -> None:
        self.appended: list[Event] = []

    async def append(self, session_id: str, kind: str, payload: dict[str, Any],
                     user_id: str | None) -> None:
        self.appended.append(Event(session_id, kind, payload, user_id))


class MemoryContents:
    """ContentCache in a dict."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], bytes] = {}

    async def get(self, sha: str, path: str) -> bytes | None:
        return self.items.get((sha, path))

    async def put(self, sha: str, path: str, data: bytes) -> None:
        self.items[(sha, path)] = data


class MemoryDeliveries:
    """Deliveries: a delivery id or body digest claimed or done is not claimed again."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}

    async def claim(self, delivery_id: str, body_digest: str) -> bool:
        keys = ("id:" + delivery_id, "body:" + body_digest)
        if any(k in self.state for k in keys):
            return False
        self.state.update(dict.fromkeys(keys, "processing"))
        return True

    async def done(self, delivery_id: str, body_digest: str) -> None:
        self.state.update(dict.fromkeys(("id:" + delivery_id, "body:" + body_digest), "done"))

    async def release(self, delivery_id: str, body_digest: str) -> None:
        self.state.pop("id:" + delivery_id, None)
        self.state.pop("body:" + body_digest, None)


class MemoryEtags:
    """EtagStore in a dict (the GitHub client's)."""

    def __init__(self) -> None:
        self.items: dict[str, CachedAnswer] = {}

    async def get(self, key: str) -> CachedAnswer | None:
        return self.items.get(key)

    async def put(self, key: str, answer: CachedAnswer) -> None:
        self.items[key] = answer
