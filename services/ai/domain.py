"""The ai service's domain: findings, jobs, what peers tell us, review scope, cache keys and summaries (no I/O)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from services.common.errors import FieldViolation, InvalidArgument, NotFound

Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error")
MAX_PATH = 4096
MAX_PATHS = 500
MAX_MESSAGE = 2_000
MAX_SUGGESTION = 4_000
MAX_CATEGORY = 64
# Job lists: page sizes.
DEFAULT_PAGE = 20
MAX_PAGE = 100


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class JobKind(StrEnum):
    REVIEW = "review"
    DOCUMENT = "document"


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding on a file: the public shape plus the tool that produced it."""

    path: str
    line: int
    end_line: int
    severity: Severity
    category: str
    message: str
    suggestion: str | None = None
    source: str = ""

    def public(self) -> dict[str, Any]:
        """The exact shape clients see (`suggestion` only when there is one)."""
        out: dict[str, Any] = {"path": self.path, "line": self.line, "end_line": self.end_line,
                               "severity": self.severity, "category": self.category,
                               "message": self.message}
        if self.suggestion:
            out["suggestion"] = self.suggestion
        return out

    def stored(self) -> dict[str, Any]:
        """The shape kept in the result cache."""
        return {**self.public(), "source": self.source}

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Finding:
        return cls(path=str(data["path"]), line=int(data["line"]), end_line=int(data["end_line"]),
                   severity=severity(str(data["severity"])), category=str(data["category"]),
                   message=str(data["message"]), suggestion=data.get("suggestion") or None,
                   source=str(data.get("source", "")))


def severity(value: str) -> Severity:
    for known in SEVERITIES:
        if value == known:
            return known
    raise ValueError(f"unknown severity {value!r}")


def make_finding(path: str, line: int, end_line: int | None, sev: Severity, category: str,
                 message: str, suggestion: str | None = None, source: str = "") -> Finding:
    """A finding with its fields trimmed to the stored bounds and a sane line range."""
    first = max(1, line)
    last = max(first, end_line or first)
    hint = (suggestion or "").strip()[:MAX_SUGGESTION] or None
    return Finding(path, first, last, sev, category.strip()[:MAX_CATEGORY] or "general",
                   message.strip()[:MAX_MESSAGE] or "(no message)", hint, source)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to review: its text and, for a diff, the head lines findings may sit on."""

    path: str
    content: str
    # Line numbers (1-based) of the diff's added and context lines; None: the whole file.
    scope: frozenset[int] | None = None

    @property
    def lines(self) -> list[str]:
        return self.content.splitlines()

    def numbered_lines(self) -> list[tuple[int, str]]:
        """(number, text) of the lines in scope, ascending."""
        return [(n, text) for n, text in enumerate(self.lines, start=1)
                if self.scope is None or n in self.scope]

    def anchor(self, finding: Finding) -> Finding | None:
        """The finding placed on a line in scope, or None when none of its lines is.

        A finding whose first line is outside the diff but whose range reaches
        into it (a long function with a changed body) is re-anchored to its first
        line inside the diff, so it can be discussed there.
        """
        total = len(self.lines)
        if finding.line > max(total, 1):
            return None
        end = min(finding.end_line, max(total, 1))
        if self.scope is None or finding.line in self.scope:
            return finding if end == finding.end_line else replace(finding, end_line=end)
        for number in range(finding.line + 1, end + 1):
            if number in self.scope:
                return replace(finding, line=number, end_line=end)
        return None


def scope_from_hunks(status: str, target_lines: Iterable[int] | None) -> frozenset[int] | None:
    """The lines of a changed file findings may sit on.

    Added files (and files without a patch, e.g. a diff too large for GitHub to
    render) are reviewed whole; otherwise only the head lines the diff shows.
    """
    if status == "added" or target_lines is None:
        return None
    lines = frozenset(n for n in target_lines if n > 0)
    return lines or None


@dataclass(frozen=True, slots=True)
class Sources:
    """What a job reviews."""

    files: list[SourceFile]
    # Files left out: binary, larger than the limit, or beyond the file count limit.
    skipped: int


@dataclass(frozen=True, slots=True)
class FileDone:
    """A provider finished a file: every finding on it has been yielded."""

    path: str


def cache_key(path: str, content: str, scope: frozenset[int] | None) -> str:
    """sha256 over the path, the content and (for providers that only see the diff) the lines sent."""
    digest = hashlib.sha256()
    digest.update(path.encode())
    digest.update(b"\x00")
    digest.update(content.encode("utf-8", errors="surrogatepass"))
    if scope is not None:
        digest.update(b"\x00" + ",".join(str(n) for n in sorted(scope)).encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Job:
    """A review job as stored."""

    id: str
    session_id: str
    review_id: str | None
    kind: JobKind
    paths: tuple[str, ...]
    requested_by: str
    provider: str
    model: str
    status: JobStatus
    summary: str = ""
    error: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    files_reviewed: int = 0
    files_reused: int = 0
    attempts: int = 0
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReviewFileRef:
    path: str
    status: str


@dataclass(frozen=True, slots=True)
class ReviewInfo:
    """A review as the review service says: its session, head and changed files."""

    id: str
    session_id: str
    head_sha: str
    files: tuple[ReviewFileRef, ...]


@dataclass(frozen=True, slots=True)
class FileContent:
    """One changed file of a review at its head."""

    path: str
    status: str
    content: str | None
    # Head line numbers of the diff's added and context lines; None without a patch.
    target_lines: tuple[int, ...] | None


def new_job(*, session_id: str, review_id: str | None, kind: JobKind, paths: Sequence[str],
            requested_by: str, provider: str, model: str) -> Job:
    return Job(id=str(uuid.uuid4()), session_id=session_id, review_id=review_id, kind=kind,
               paths=tuple(paths), requested_by=requested_by, provider=provider, model=model,
               status=JobStatus.QUEUED)


def parse_uuid(value: str, what: str) -> str:
    """An id that is not a UUID cannot name anything: NotFound."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"{what} not found") from None


def page_size(limit: int) -> int:
    """A list's page size: 0 is the default (20), anything else must be 1..100."""
    if limit == 0:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}", [
            FieldViolation("limit", f"must be between 1 and {MAX_PAGE}")])
    return limit


def check_paths(paths: Sequence[str]) -> tuple[str, ...]:
    """Requested paths: bounded, deduplicated, order kept."""
    if len(paths) > MAX_PATHS:
        raise InvalidArgument("too many paths", [FieldViolation("paths", f"at most {MAX_PATHS}")])
    out: list[str] = []
    for index, path in enumerate(paths):
        if not path or len(path) > MAX_PATH or "\x00" in path:
            raise InvalidArgument("invalid path", [FieldViolation(
                f"paths.{index}", f"must be a file path of 1 to {MAX_PATH} characters")])
        if path not in out:
            out.append(path)
    return tuple(out)


# Session languages (as clients set them) to the file extension the tools recognise.
_EXTENSIONS = {
    "python": "py", "py": "py", "javascript": "js", "js": "js", "typescript": "ts", "ts": "ts",
    "tsx": "tsx", "jsx": "jsx", "go": "go", "golang": "go", "rust": "rs", "java": "java",
    "kotlin": "kt", "swift": "swift", "c": "c", "cpp": "cpp", "c++": "cpp", "csharp": "cs",
    "c#": "cs", "ruby": "rb", "php": "php", "scala": "scala", "lua": "lua", "perl": "pl",
    "r": "r", "shell": "sh", "bash": "sh", "sql": "sql", "yaml": "yaml", "json": "json",
    "markdown": "md", "html": "html", "css": "css", "toml": "toml", "dockerfile": "dockerfile",
}


def document_path(language: str) -> str:
    """The path findings on the live document carry: `document.<extension of the language>`."""
    return "document." + _EXTENSIONS.get(language.strip().lower(), "txt")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary(*, findings: Sequence[Finding], files: int, reviewed: int, reused: int,
            skipped: int, kind: JobKind) -> str:
    """One line for people: what was found, and how much work was new."""
    by_severity = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    counts = ", ".join(f"{n} {s}" for s, n in reversed(by_severity.items()) if n)
    text = f"{plural(len(findings), 'finding')} in {plural(files, 'file')}"
    if counts:
        text += f" ({counts})"
    if kind is JobKind.REVIEW:
        text += f"; {plural(reviewed, 'file')} reviewed, {reused} unchanged reused"
    if skipped:
        text += f"; {plural(skipped, 'file')} skipped (binary or too large)"
    return text
