"""Unified diffs between two trees, shaped like the patches and diffs GitHub serves."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from standins.github.gitobjects import blob_sha

NO_NEWLINE = "\\ No newline at end of file"
# git's default: a removed and an added file at least this similar are a rename.
RENAME_THRESHOLD = 50
_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class FileChange:
    """One file of a comparison, with the fields GitHub's `files` entries carry."""

    filename: str
    status: str  # added | modified | removed | renamed
    # Blob ids before and after; None on the side where the file does not exist.
    old_sha: str | None
    new_sha: str | None
    additions: int
    deletions: int
    # GitHub-style patch (starts at "@@", no ---/+++ lines); "" when the
    # contents are identical, as for a pure rename.
    patch: str
    previous_filename: str | None = None
    similarity: int = 100

    @property
    def changes(self) -> int:
        return self.additions + self.deletions

    @property
    def old_path(self) -> str:
        return self.previous_filename or self.filename


@dataclass(frozen=True)
class PatchLine:
    """One line of a patch, located the ways review comments can address it."""

    # Lines below the first "@@" header, as GitHub's legacy `position` counts.
    position: int
    kind: str  # "@" hunk header, " " context, "+" added, "-" removed, "\\" marker
    old_line: int | None
    new_line: int | None
    hunk: int


def split_lines(text: str) -> list[str]:
    """Split on "\\n" only, as git does; the last line may lack its newline."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def unified_patch(old: str, new: str, context: int = 3) -> str:
    """GitHub's `patch` text: hunks only, with git's no-newline markers, no trailing newline."""
    old_lines = split_lines(old)
    diff = difflib.unified_diff(old_lines, split_lines(new), n=context)
    out: list[str] = []
    for index, line in enumerate(diff):
        if index < 2:  # the ---/+++ header, which GitHub leaves out of `patch`
            continue
        header = _HUNK_HEADER.match(line)
        if header:
            out.append(line.rstrip("\n") + _function_context(old_lines, int(header.group(1))))
        elif line.endswith("\n"):
            out.append(line[:-1])
        else:
            out.extend((line, NO_NEWLINE))
    return "\n".join(out)


def _function_context(old_lines: list[str], start: int) -> str:
    """git's default hunk-header context: the nearest line above the hunk that starts with
    a letter, "_" or "$", cut to 80 characters."""
    for line in reversed(old_lines[: max(start - 1, 0)]):
        if line[:1].isalpha() or line[:1] in ("_", "$"):
            return " " + line[:80].rstrip()
    return ""


def count_changes(patch: str) -> tuple[int, int]:
    """(additions, deletions) in a patch."""
    additions = deletions = 0
    for line in parse_patch(patch):
        if line.kind == "+":
            additions += 1
        elif line.kind == "-":
            deletions += 1
    return additions, deletions


def parse_patch(patch: str) -> list[PatchLine]:
    """Locate every line of a patch by position and by old/new line number."""
    result: list[PatchLine] = []
    if not patch:
        return result
    old_no = new_no = 0
    hunk = -1
    for position, text in enumerate(patch.split("\n")):
        header = _HUNK_HEADER.match(text)
        if header:
            hunk += 1
            old_no, new_no = int(header.group(1)), int(header.group(3))
            result.append(PatchLine(position, "@", None, None, hunk))
            continue
        kind = text[:1] or " "
        if kind == "+":
            result.append(PatchLine(position, kind, None, new_no, hunk))
            new_no += 1
        elif kind == "-":
            result.append(PatchLine(position, kind, old_no, None, hunk))
            old_no += 1
        elif kind == "\\":
            result.append(PatchLine(position, kind, None, None, hunk))
        else:
            result.append(PatchLine(position, " ", old_no, new_no, hunk))
            old_no += 1
            new_no += 1
    return result


def find_line(lines: list[PatchLine], line: int, side: str) -> PatchLine | None:
    """The patch line a review comment on (line, side) addresses, if the diff shows it."""
    for candidate in lines:
        if side == "RIGHT" and candidate.kind in "+ " and candidate.new_line == line:
            return candidate
        if side == "LEFT" and candidate.kind in "- " and candidate.old_line == line:
            return candidate
    return None


def diff_hunk(patch: str, position: int) -> str:
    """GitHub's `diff_hunk` of a comment: its hunk's header through the commented line."""
    lines = patch.split("\n")
    start = position
    while start > 0 and not lines[start].startswith("@@"):
        start -= 1
    return "\n".join(lines[start : position + 1])


def compare_trees(old: Mapping[str, str], new: Mapping[str, str]) -> list[FileChange]:
    """Every changed file between two trees, with renames detected like git, sorted by path."""
    changes: list[FileChange] = []
    removed = sorted(set(old) - set(new))
    added = sorted(set(new) - set(old))
    for path in sorted(set(old) & set(new)):
        if old[path] != new[path]:
            changes.append(_change(path, "modified", old[path], new[path]))

    renamed_from: set[str] = set()
    for path in added:
        best: tuple[int, str] | None = None
        for candidate in removed:
            if candidate in renamed_from:
                continue
            score = _similarity(old[candidate], new[path])
            if score >= RENAME_THRESHOLD and (best is None or score > best[0]):
                best = (score, candidate)
        if best is None:
            changes.append(_change(path, "added", None, new[path]))
        else:
            score, source = best
            renamed_from.add(source)
            changes.append(
                _change(path, "renamed", old[source], new[path], previous=source, similarity=score)
            )
    for path in removed:
        if path not in renamed_from:
            changes.append(_change(path, "removed", old[path], None))
    return sorted(changes, key=lambda change: change.filename)


def git_diff(changes: list[FileChange]) -> str:
    """The whole comparison as `git diff` prints it (GitHub's `application/vnd.github.diff`)."""
    out: list[str] = []
    for change in changes:
        old_path, new_path = change.old_path, change.filename
        out.append(f"diff --git a/{old_path} b/{new_path}")
        if change.status == "added":
            out.append("new file mode 100644")
        elif change.status == "removed":
            out.append("deleted file mode 100644")
        elif change.status == "renamed":
            out.extend(
                (
                    f"similarity index {change.similarity}%",
                    f"rename from {old_path}",
                    f"rename to {new_path}",
                )
            )
        if not change.patch:
            continue
        old_abbrev = (change.old_sha or "0" * 40)[:7]
        new_abbrev = (change.new_sha or "0" * 40)[:7]
        mode = " 100644" if change.status in ("modified", "renamed") else ""
        out.append(f"index {old_abbrev}..{new_abbrev}{mode}")
        out.append("--- /dev/null" if change.status == "added" else f"--- a/{old_path}")
        out.append("+++ /dev/null" if change.status == "removed" else f"+++ b/{new_path}")
        out.append(change.patch)
    return "\n".join(out) + "\n" if out else ""


def _change(
    path: str,
    status: str,
    old: str | None,
    new: str | None,
    *,
    previous: str | None = None,
    similarity: int = 100,
) -> FileChange:
    patch = unified_patch(old or "", new or "") if old != new else ""
    additions, deletions = count_changes(patch)
    return FileChange(
        filename=path,
        status=status,
        old_sha=None if old is None else blob_sha(old.encode()),
        new_sha=None if new is None else blob_sha(new.encode()),
        additions=additions,
        deletions=deletions,
        patch=patch,
        previous_filename=previous,
        similarity=similarity,
    )


def _similarity(old: str, new: str) -> int:
    """Like git's rename score: bytes kept from old as a share of the larger file."""
    if old == new:
        return 100
    old_lines, new_lines = split_lines(old), split_lines(new)
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    kept = sum(
        len(line.encode())
        for block in matcher.get_matching_blocks()
        for line in old_lines[block.a : block.a + block.size]
    )
    larger = max(len(old.encode()), len(new.encode()), 1)
    return kept * 100 // larger
