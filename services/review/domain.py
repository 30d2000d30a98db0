"""Review records, domain errors and pure rules (anchors, outdated threads, the GitHub review).

No I/O here: what the use cases (usecases.py) need from the outside comes
through the ports (ports.py), and what they decide is computed here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

import orjson

from services.common.cursors import encode_cursor
from services.common.errors import FieldViolation, InvalidArgument, Unavailable
from services.review.diffs import Hunk, file_lines, parse_patch_lenient, side_lines

SIDES = ("LEFT", "RIGHT")
VERDICT_STATES = ("approve", "request_changes", "comment")
MAX_BODY = 10_000
MAX_PATH = 4096
MAX_REF = 255
DEFAULT_REVIEW_BODY = "Reviewed with Tandem."
# The sessions service takes event payloads up to 32 KiB; leave room for the envelope.
EVENT_MAX_BYTES = 30_000
REPO_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/(?!\.\.?$)[A-Za-z0-9._-]{1,100}$")
# The reason of every "GitHub is unavailable" error (the gateway answers 503 with it).
GITHUB_UNAVAILABLE = "github_unavailable"
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_GITHUB_EVENTS = {"approve": "APPROVE", "request_changes": "REQUEST_CHANGES",
                  "comment": "COMMENT"}

# What begin_publish finds: already "published", "busy" (another publish holds a live
# lease), "missing", "claimed" (go ahead) or "claimed_uncertain" (go ahead, but an earlier
# attempt may have reached GitHub: look for it first).
PublishClaim = Literal["published", "busy", "missing", "claimed", "claimed_uncertain"]


# --- records the review service stores ------------------------------------------------


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
class Published:
    github_review_id: int
    html_url: str
    published_at: datetime


@dataclass(frozen=True, slots=True)
class FileView:
    """A review file with its content at the head commit (None when removed there)."""

    file: ReviewFile
    content: str | None
    sha: str


@dataclass(frozen=True, slots=True)
class Limits:
    max_file_bytes: int
    max_files: int


# --- what peers and GitHub answer -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class PullInfo:
    number: int
    title: str
    head_sha: str
    base_sha: str
    state: str
    author: str


@dataclass(frozen=True, slots=True)
class ChangedFile:
    path: str
    status: str
    additions: int
    deletions: int
    # "" when GitHub sends none (pure renames, binary files, very large diffs).
    patch: str
    previous_path: str


@dataclass(frozen=True, slots=True)
class CommitInfo:
    sha: str
    parent_sha: str
    title: str
    files: list[ChangedFile]


@dataclass(frozen=True, slots=True)
class GitHubUser:
    """Who a token acts as: GitHub's numeric id (never reused) and the current login."""

    id: int
    login: str


@dataclass(frozen=True, slots=True)
class PostedReview:
    id: int
    html_url: str


@dataclass(frozen=True, slots=True)
class ListedReview:
    """A review GitHub lists on a pull request: its id, text and its author's GitHub id."""

    id: int
    body: str
    html_url: str
    author_id: int | None


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A GET answer kept for conditional requests: its ETag, body and Link header."""

    etag: str
    body: bytes
    link: str


class OutcomeUnknown(Unavailable):
    """A write GitHub may or may not have applied (it timed out, or the connection broke)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=5, reason=GITHUB_UNAVAILABLE)


# --- pure rules -------------------------------------------------------------------------


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime:
    return datetime.now(UTC)


def parse_uuid(value: str) -> str | None:
    """The canonical spelling of a UUID, or None when `value` is not one."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


class _Listed(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> str: ...


L = TypeVar("L", bound=_Listed)


def page_size(asked: int, *, default: int, most: int) -> int:
    """The page size a list answers with: `default` when none is asked, at most `most`."""
    return min(max(asked or default, 1), most)


def one_page(rows: list[L], limit: int) -> tuple[list[L], str]:
    """A page of a (created_at, id) keyset list read with limit + 1 rows, and the cursor
    after it ("" on the last page: the extra row says whether there is more)."""
    if len(rows) <= limit:
        return rows, ""
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].created_at, rows[-1].id)


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


def check_verdict_state(state: str) -> None:
    if state not in VERDICT_STATES:
        raise InvalidArgument("state must be approve, request_changes or comment",
                              [FieldViolation("state", "must be approve, request_changes "
                                                       "or comment")])


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


def review_file(changed: ChangedFile) -> ReviewFile:
    """A file GitHub lists as changed, as a review keeps it (a malformed patch gets no hunks)."""
    return ReviewFile(changed.path, changed.status, changed.additions, changed.deletions,
                      changed.previous_path, changed.patch,
                      parse_patch_lenient(changed.path, changed.patch))


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


# --- publishing -------------------------------------------------------------------------


def publish_marker(review_id: str) -> str:
    """The hidden text that lets a retried publish find the review an earlier attempt posted."""
    return f"<!-- tandem-review:{review_id} -->"


def ours(listed: ListedReview, marker: str, me: GitHubUser) -> bool | None:
    """Whether a review GitHub lists is the one an earlier publish posted.

    None when it does not carry the marker; False when it does but another
    GitHub user wrote it (the marker is public text anyone commenting can
    copy: only a review the publishing user's own token wrote is ours, known
    by GitHub's id, since logins can change).
    """
    if marker not in listed.body:
        return None
    return listed.author_id == me.id


@dataclass(frozen=True, slots=True)
class GitHubReviewDraft:
    """What publishing posts: the payload of GitHub's create-review call, and its counts."""

    payload: dict[str, Any]
    line_comments: int
    body_notes: int


def github_review(review: Review, files: list[ReviewFile], threads: list[Thread],
                  logins: dict[str, str], marker: str) -> GitHubReviewDraft:
    """One GitHub review: the latest verdict and every open, current thread.

    Threads on lines the diff shows become line comments; the rest (GitHub
    refuses comments off the diff) are listed in the review's body.
    """
    by_path = {f.path: f for f in files}
    comments: list[dict[str, Any]] = []
    notes: list[str] = []
    for thread in threads:
        if thread.resolved:
            continue
        text = thread_text(thread, logins)
        if placeable(by_path.get(thread.path), thread):
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
    return GitHubReviewDraft({"commit_id": review.head_sha, "event": event, "body": body,
                              "comments": comments}, len(comments), len(notes))


def reply_authors(threads: list[Thread]) -> list[str]:
    """Who wrote the replies of the open threads (their logins sign them on GitHub)."""
    return [c.author_id for t in threads if not t.resolved for c in t.comments[1:]]


def thread_text(thread: Thread, logins: dict[str, str]) -> str:
    """A thread as one GitHub comment: the opening comment, then replies signed by login."""
    if not thread.comments:
        return ""
    parts = [thread.comments[0].body]
    for reply in thread.comments[1:]:
        who = logins.get(reply.author_id)
        parts.append(f"**@{who}:** {reply.body}" if who else reply.body)
    return "\n\n".join(parts)


# --- webhooks ---------------------------------------------------------------------------


def verify_signature(secret: str, body: bytes, signature: str) -> bool:
    """X-Hub-Signature-256: "sha256=" + hex HMAC-SHA256 of the raw body, compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def valid_delivery_id(delivery_id: str) -> bool:
    return bool(_DELIVERY_ID.match(delivery_id))


@dataclass(frozen=True, slots=True)
class PullRequestEvent:
    action: str | None
    repo: str
    number: int


def pull_request_event(body: bytes) -> PullRequestEvent:
    """The parts of a `pull_request` delivery the review service acts on."""
    try:
        payload = orjson.loads(body)
        action = payload.get("action")
        repo = str(payload["repository"]["full_name"])
        number = int(payload.get("number") or payload["pull_request"]["number"])
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        raise InvalidArgument("the pull_request payload is not one GitHub sends") from None
    return PullRequestEvent(action, repo, number)


# --- events -----------------------------------------------------------------------------


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
