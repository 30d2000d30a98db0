"""The review service's records: what the repository stores and the domain works with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.review.diffs import Hunk

SIDES = ("LEFT", "RIGHT")
VERDICT_STATES = ("approve", "request_changes", "comment")
ROLES = ("owner", "editor", "viewer")


@dataclass(frozen=True, slots=True)
class FileSummary:
    path: str
    status: str
    additions: int
    deletions: int
    previous_path: str


@dataclass(frozen=True, slots=True)
class ReviewFile:
    """One file of a review, with its patch and the hunks parsed from it."""

    path: str
    status: str
    additions: int
    deletions: int
    previous_path: str
    patch: str
    hunks: list[Hunk]

    @property
    def summary(self) -> FileSummary:
        return FileSummary(self.path, self.status, self.additions, self.deletions,
                           self.previous_path)


@dataclass(frozen=True, slots=True)
class Person:
    """A user's public profile (from the auth service), shown beside what they wrote."""

    id: str
    github_login: str
    name: str
    avatar_url: str
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class Verdict:
    id: str
    review_id: str
    author_id: str
    state: str
    body: str
    created_at: datetime
    # Filled in for what is shown (Review.verdicts); None when not looked up.
    author: Person | None = None


@dataclass(frozen=True, slots=True)
class Review:
    id: str
    session_id: str
    repo: str
    pull_number: int | None
    ref: str
    head_sha: str
    base_sha: str
    title: str
    state: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    github_review_id: int | None = None
    github_review_url: str = ""
    published_at: datetime | None = None
    files: list[FileSummary] = field(default_factory=list)
    # The latest verdict of anyone: what publishing posts.
    verdict: Verdict | None = None
    # Each reviewer's current verdict (their latest), oldest first.
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def decision(self) -> str | None:
        return decide(self.verdicts)


def current_verdicts(verdicts: list[Verdict]) -> list[Verdict]:
    """Each author's latest verdict (a newer one from the same person replaces theirs),
    ordered by when it was given, oldest first."""
    latest: dict[str, Verdict] = {}
    for verdict in sorted(verdicts, key=lambda v: (v.created_at, v.id)):
        latest.pop(verdict.author_id, None)
        latest[verdict.author_id] = verdict
    return list(latest.values())


def decide(current: list[Verdict]) -> str | None:
    """What the current verdicts add up to, as GitHub decides a pull request's review:
    any request for changes wins, then any approval; comments alone decide nothing."""
    states = {v.state for v in current}
    if "request_changes" in states:
        return "changes_requested"
    if "approve" in states:
        return "approved"
    return None


@dataclass(frozen=True, slots=True)
class Comment:
    id: str
    thread_id: str
    author_id: str
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Thread:
    id: str
    review_id: str
    path: str
    side: str
    line: int
    start_line: int | None
    commit_sha: str
    anchor_text: str
    resolved: bool
    outdated: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    comments: list[Comment] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Membership:
    """A user's place in a session, as the sessions service answers it."""

    role: str
    active: bool


@dataclass(frozen=True, slots=True)
class Published:
    github_review_id: int
    html_url: str
    published_at: datetime
