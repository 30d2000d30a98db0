"""The stand-in's deterministic "model": a pattern table over numbered lines, free of I/O."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from standins.openai.protocol import (
    CodeLine,
    FileBlock,
    Finding,
    Severity,
    parse_file_blocks,
    summary_line,
)

MAX_LINE_CHARS = 120
OUT_OF_RANGE_OFFSET = 1000

# A rule returns the message for a line it flags, or None; the message may depend on the
# line (the TODO marker, the line length), which a fixed string could not express.
Matcher = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the pattern table."""

    name: str
    severity: Severity
    category: str
    match: Matcher
    suggestion: str | None


def _regex(pattern: str, message: str, flags: int = 0) -> Matcher:
    compiled = re.compile(pattern, flags)

    def match(text: str) -> str | None:
        return message if compiled.search(text) else None

    return match


_TODO_RE = re.compile(r"\b(TODO|FIXME|XXX)\b")


def _todo(text: str) -> str | None:
    found = _TODO_RE.search(text)
    return f"Unresolved {found.group(1)} comment" if found else None


def _long_line(text: str) -> str | None:
    if len(text) > MAX_LINE_CHARS:
        return f"Line is {len(text)} characters long (limit {MAX_LINE_CHARS})"
    return None


# Assignment (``=`` or ``:`` as in dicts and keyword-ish config) of a non-empty string literal
# to a name that looks like a credential; an optional type annotation is skipped, and
# comparisons (``==``, ``!=``) do not match because a quote must follow the ``=``/``:``.
_CREDENTIAL = (
    r"\b\w*(?:password|passwd|secret|token|api_key|apikey)\w*[\"']?\s*"
    r"(?::\s*[\w\[\]., |]+?\s*)?[:=]\s*[rRbBuU]?[\"'][^\"']+[\"']"
)

RULES: tuple[Rule, ...] = (
    Rule(
        "eval",
        "error",
        "security",
        _regex(r"(?<![\w.])eval\s*\(", "Use of eval on dynamic input"),
        "Parse the input explicitly, or use ast.literal_eval for Python literals.",
    ),
    Rule(
        "hard-coded-credential",
        "error",
        "security",
        _regex(_CREDENTIAL, "Hard-coded credential", re.IGNORECASE),
        "Read the credential from the environment or a secret store.",
    ),
    Rule(
        "bare-except",
        "warning",
        "correctness",
        _regex(r"^\s*except\s*:", "Bare except catches SystemExit and KeyboardInterrupt"),
        "Catch the specific exceptions you expect, e.g. `except ValueError:`.",
    ),
    Rule(
        "mutable-default",
        "warning",
        "correctness",
        _regex(
            r"^\s*(?:async\s+)?def\s+\w+\s*\(.*=\s*(?:\[\s*\]|\{\s*\}|set\(\s*\))",
            "Mutable default argument",
        ),
        "Default to None and create the object inside the function.",
    ),
    Rule("todo", "info", "maintainability", _todo, None),
    Rule(
        "print",
        "info",
        "style",
        _regex(r"(?<![\w.])print\s*\(", "print() call; use logging"),
        "Use the logging module so output has levels and context.",
    ),
    Rule("long-line", "info", "style", _long_line, "Break the line up."),
)


def review_line(path: str, line: CodeLine) -> list[Finding]:
    """Every rule that flags one line, in table order."""
    findings: list[Finding] = []
    for rule in RULES:
        message = rule.match(line.text)
        if message is not None:
            findings.append(
                Finding(
                    path=path,
                    line=line.number,
                    end_line=line.number,
                    severity=rule.severity,
                    category=rule.category,
                    message=message,
                    suggestion=rule.suggestion,
                )
            )
    return findings


def review(blocks: Sequence[FileBlock]) -> list[Finding]:
    """Findings for all blocks, file by file and line by line (prompt order)."""
    return [
        finding
        for block in blocks
        for line in block.lines
        for finding in review_line(block.path, line)
    ]


def _out_of_range_finding(block: FileBlock) -> Finding:
    beyond = max(block.line_numbers, default=0) + OUT_OF_RANGE_OFFSET
    return Finding(
        path=block.path,
        line=beyond,
        end_line=beyond,
        severity="warning",
        category="correctness",
        message="Finding on a line that was not in the reviewed code",
    )


def _malformed(finding_lines: list[str], summary: str, first_path: str) -> list[str]:
    # A realistic mess: prose and fences around the JSON, a line cut mid-object as if the
    # model lost track, and a well-formed object that violates the finding schema.
    broken = finding_lines[0][: len(finding_lines[0]) // 2] if finding_lines else '{"summary": '
    invalid = orjson.dumps(
        {
            "path": first_path,
            "line": 0,
            "end_line": 0,
            "severity": "critical",
            "category": "security",
            "message": "Not a valid finding: unknown severity and line 0",
        }
    ).decode()
    return [
        "Here is my review of the code.",
        "```json",
        *finding_lines[:1],
        broken,
        *finding_lines[1:],
        invalid,
        summary,
        "```",
        "Let me know if you want more detail.",
    ]


def compose_answer(prompt: str, *, out_of_range: bool = False, malformed: bool = False) -> str:
    """The assistant message content for a user prompt, following ``protocol``."""
    blocks = parse_file_blocks(prompt)
    findings = review(blocks)
    if out_of_range and blocks:
        findings.append(_out_of_range_finding(blocks[0]))
    finding_lines = [finding.to_json_line() for finding in findings]
    summary = summary_line(len(findings), len(blocks))
    if malformed:
        first_path = blocks[0].path if blocks else "unknown"
        return "\n".join(_malformed(finding_lines, summary, first_path))
    return "\n".join([*finding_lines, summary])
