"""Diff hunks of GitHub's per-file patches (parsed with unidiff) and line look-ups on them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

log = logging.getLogger(__name__)

_KINDS = ("+", "-", " ")


@dataclass(frozen=True, slots=True)
class HunkLine:
    """One line of a hunk: kind "+", "-" or " ", its line numbers on each side, its text."""

    kind: str
    source_line: int | None
    target_line: int | None
    value: str


@dataclass(frozen=True, slots=True)
class Hunk:
    source_start: int
    source_length: int
    target_start: int
    target_length: int
    section_header: str
    lines: tuple[HunkLine, ...]


class PatchError(ValueError):
    """GitHub's patch text is not a well-formed unified diff."""


def parse_patch(patch: str) -> list[Hunk]:
    """The hunks of a GitHub `patch` (hunks only, without the ---/+++ file header)."""
    if not patch.strip():
        return []
    # GitHub leaves the file header out; unidiff needs one. The names are
    # placeholders: a real path could hold a tab, which the header cannot.
    text = "--- a/file\n+++ b/file\n" + patch + ("" if patch.endswith("\n") else "\n")
    try:
        patched = PatchSet(text)
    except UnidiffParseError as exc:
        raise PatchError(str(exc)) from None
    hunks: list[Hunk] = []
    for patched_file in patched:
        for hunk in patched_file:
            lines = tuple(
                HunkLine(line.line_type, line.source_line_no, line.target_line_no,
                         line.value.removesuffix("\n"))
                # "\ No newline at end of file" markers are not lines of either side.
                for line in hunk if line.line_type in _KINDS
            )
            hunks.append(Hunk(hunk.source_start, hunk.source_length, hunk.target_start,
                              hunk.target_length, hunk.section_header.strip(), lines))
    return hunks


def parse_patch_lenient(path: str, patch: str) -> list[Hunk]:
    """parse_patch, but a malformed patch gives no hunks (the import still succeeds)."""
    try:
        return parse_patch(patch)
    except PatchError:
        log.warning("could not parse the patch of a file; it gets no hunks",
                    extra={"path": path})
        return []


def hunks_to_json(hunks: Iterable[Hunk]) -> list[dict[str, Any]]:
    return [{"source_start": h.source_start, "source_length": h.source_length,
             "target_start": h.target_start, "target_length": h.target_length,
             "section_header": h.section_header,
             "lines": [[ln.kind, ln.source_line, ln.target_line, ln.value] for ln in h.lines]}
            for h in hunks]


def hunks_from_json(data: Sequence[dict[str, Any]]) -> list[Hunk]:
    return [Hunk(int(h["source_start"]), int(h["source_length"]), int(h["target_start"]),
                 int(h["target_length"]), str(h["section_header"]),
                 tuple(HunkLine(str(k), s, t, str(v)) for k, s, t, v in h["lines"]))
            for h in data]


def side_lines(hunks: Sequence[Hunk], side: str) -> dict[int, tuple[int, str]]:
    """Line number -> (hunk index, text) for the lines the diff shows on one side.

    LEFT is the source side (removed and context lines), RIGHT the target
    side (added and context lines).
    """
    found: dict[int, tuple[int, str]] = {}
    for index, hunk in enumerate(hunks):
        for line in hunk.lines:
            number = line.source_line if side == "LEFT" else line.target_line
            if number is not None:
                found[number] = (index, line.value)
    return found


def file_lines(content: str) -> list[str]:
    """Split text on "\\n" only, as git counts lines; a final newline adds no line."""
    if not content:
        return []
    lines = content.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines
