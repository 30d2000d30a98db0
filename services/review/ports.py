"""What the review use cases need from the outside, as Protocols (the composition root wires them).

Implementations: ReviewRepository (repository.py), GitHub (github.py), the
sessions and auth clients (clients.py), the Redis stores (stores.py) and the
event renderer (events.py); the unit tests hand in-memory ones
(tests/review/fakes.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

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
)


class ReviewStore(Protocol):
    """The review service's own data (reviews, files, threads, comments, verdicts, publishing)."""

    async def insert_review(self, review: Review, files: Sequence[ReviewFile]) -> None: ...

    async def get_review(self, review_id: str) -> Review | None: ...

    async def list_reviews(self, session_id: str, limit: int,
                           after: tuple[datetime, str] | None) -> list[Review]: ...

    async def reviews_for_pull(self, repo: str, number: int) -> list[Review]: ...

    async def get_file(self, review_id: str, path: str) -> ReviewFile | None: ...

    async def get_files(self, review_id: str) -> list[ReviewFile]: ...

    async def apply_refresh(self, review_id: str, expected_head: str, head_sha: str,
                            base_sha: str, title: str, files: Sequence[ReviewFile],
                            outdated: Sequence[str]) -> bool: ...

    async def insert_thread(self, thread: Thread, comment: Comment) -> None: ...

    async def list_threads(self, review_id: str, limit: int,
                           after: tuple[datetime, str] | None) -> list[Thread]: ...

    async def current_threads(self, review_id: str) -> list[Thread]: ...

    async def insert_comment(self, review_id: str, comment: Comment) -> bool: ...

    async def set_resolved(self, review_id: str, thread_id: str,
                           resolved: bool) -> tuple[Thread | None, bool]: ...

    async def insert_verdict(self, verdict: Verdict) -> None: ...

    async def begin_publish(self, review_id: str, lease_seconds: float) -> PublishClaim: ...

    async def finish_publish(self, review_id: str, github_review_id: int,
                             html_url: str) -> datetime: ...

    async def release_publish(self, review_id: str, *, uncertain: bool) -> None: ...

    async def published(self, review_id: str) -> Published | None: ...


class GitHubApi(Protocol):
    """GitHub's REST API as one user: `token` is theirs, `scope` keys their cached answers."""

    async def pull(self, token: str, scope: str, repo: str, number: int) -> PullInfo: ...

    async def pull_files(self, token: str, scope: str, repo: str, number: int,
                         max_files: int) -> list[ChangedFile]: ...

    async def commit(self, token: str, repo: str, ref: str) -> CommitInfo: ...

    async def contents(self, token: str, repo: str, path: str, ref: str,
                       max_bytes: int) -> bytes: ...

    async def viewer(self, token: str) -> GitHubUser: ...

    async def reviews(self, token: str, repo: str, number: int) -> list[ListedReview]: ...

    async def create_review(self, token: str, repo: str, number: int,
                            payload: Mapping[str, Any]) -> PostedReview: ...


class Memberships(Protocol):
    """The sessions service: a user's role in a session, None when they are no member."""

    async def membership(self, session_id: str, user_id: str) -> Membership | None: ...


class UserDirectory(Protocol):
    """The auth service: users' GitHub tokens (internal), logins and public profiles."""

    async def github_token(self, user_id: str) -> str: ...

    def forget(self, user_id: str) -> None: ...

    async def logins(self, user_ids: list[str]) -> dict[str, str]: ...

    async def people(self, user_ids: list[str]) -> dict[str, Person]: ...


class EventPublisher(Protocol):
    """The session's event log (sequenced events every member's client receives)."""

    async def append(self, session_id: str, kind: str, payload: dict[str, Any],
                     user_id: str | None) -> None: ...


class ContentCache(Protocol):
    """File contents by (commit SHA, path): immutable, so a cache never goes stale."""

    async def get(self, sha: str, path: str) -> bytes | None: ...

    async def put(self, sha: str, path: str, data: bytes) -> None: ...


class Deliveries(Protocol):
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


class EtagStore(Protocol):
    """ETag and body of GitHub GET answers (the GitHub client's, for conditional requests)."""

    async def get(self, key: str) -> CachedAnswer | None: ...

    async def put(self, key: str, answer: CachedAnswer) -> None: ...
