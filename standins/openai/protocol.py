"""The prompt/answer protocol between Tandem's ai service and a chat model, and its codec.

This text is the contract; Tandem's OpenAI client and this stand-in both follow it.

Prompt (what Tandem sends)
--------------------------
Any ``system``/``developer`` messages are free text (instructions) and are not parsed.
The **last message whose role is ``user``** carries the code as one or more file blocks::

    ### FILE: app/users.py
       1| import os
       2| def f(x=[]):
      14|     return eval(x)

* A block starts with a line ``### FILE: <path>`` (path = rest of the line, stripped).
* Each code line is ``<spaces><n>| <text>``, matched by ``^\\s*(\\d+)\\| (.*)$``: ``n`` is the
  1-based line number in the file, ``text`` the line's content exactly (no trailing newline).
  An empty line may also be written ``<n>|`` without the space after the bar.
* Line numbers ascend but need not be contiguous (only diff lines may be sent).
* A block runs until the next ``### FILE:`` line or the end of the message; any other line
  (prose, code fences, blank lines) is ignored, so instructions may surround the blocks.
* When the content is a list of parts (``[{"type": "text", "text": ...}]``), the text parts
  are joined with ``"\\n"`` first.

Answer (what the model returns as the assistant message content)
----------------------------------------------------------------
JSON Lines, separated by ``"\\n"`` (no trailing newline after the last line):

* zero or more findings, one compact JSON object per line, keys in this order::

    {"path":"app/users.py","line":14,"end_line":14,"severity":"error",
     "category":"security","message":"...","suggestion":"..."}

  ``severity`` is one of ``info``, ``warning``, ``error``; ``suggestion`` may be absent;
  ``line``/``end_line`` are file line numbers from the prompt;
* then exactly one final line ``{"summary":"N findings in M files"}`` (singular ``finding`` /
  ``file`` when the count is 1). ``M`` counts file blocks in the prompt, ``N`` the finding
  lines emitted.

A client must parse incrementally (a line may arrive split across stream chunks), must
tolerate lines that are not JSON or not a valid finding (skip them), and must drop findings
whose line is not among the numbered lines it sent.

Deterministic rules of the stand-in model (``reviewer.RULES``), applied to every numbered
line in prompt order; each rule fires at most once per line, rules in this order:

* ``eval(``                                  -> error/security "Use of eval on dynamic input"
* a name containing password/passwd/secret/token/api_key/apikey assigned (``=`` or ``:``) a
  non-empty string literal                   -> error/security "Hard-coded credential"
* bare ``except:``                           -> warning/correctness "Bare except catches
  SystemExit and KeyboardInterrupt"
* ``def`` with a ``[]``/``{}``/``set()`` default -> warning/correctness "Mutable default
  argument"
* ``TODO``/``FIXME``/``XXX``                 -> info/maintainability "Unresolved <MARK> comment"
* ``print(``                                 -> info/style "print() call; use logging"
* content longer than 120 characters         -> info/style "Line is <n> characters long
  (limit 120)"

Findings come out file by file, line by line, then rule by rule. Same prompt, same answer,
byte for byte.

Faults that change the answer (see ``faults``):

* ``out_of_range`` appends, before the summary, one finding on the first file at line
  ``max(numbered lines of that file, or 0) + 1000`` (warning/correctness); with no file
  block nothing is added. It is counted in the summary.
* ``malformed`` wraps the answer in noise, in this order: the prose line
  "Here is my review of the code.", a code-fence line "```json", the first finding line
  (if any), a broken line (the first finding's JSON cut in half, or ``{"summary": `` when
  there is none), the other finding lines, one line of valid JSON that is not a valid
  finding (severity "critical", line 0), the summary line, a fence line "```", and the
  prose line "Let me know if you want more detail.". Every valid finding and the summary
  are still present, unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import orjson

Severity = Literal["info", "warning", "error"]

FILE_HEADER = "### FILE: "
_FILE_HEADER_RE = re.compile(r"^###\s*FILE:\s*(.+?)\s*$")
# The canonical form is "<n>| <text>"; "<n>|" is also accepted because editors and
# diff tools strip the trailing space of an empty line.
_NUMBERED_LINE_RE = re.compile(r"^\s*(\d+)\|(?: (.*))?$")


@dataclass(frozen=True, slots=True)
class CodeLine:
    """One numbered line of a file block."""

    number: int
    text: str


@dataclass(frozen=True, slots=True)
class FileBlock:
    """The lines of one file as sent in the prompt."""

    path: str
    lines: tuple[CodeLine, ...]

    @property
    def line_numbers(self) -> frozenset[int]:
        """Line numbers present in the prompt for this file."""
        return frozenset(line.number for line in self.lines)


@dataclass(frozen=True, slots=True)
class Finding:
    """One review finding, as the model emits it."""

    path: str
    line: int
    end_line: int
    severity: Severity
    category: str
    message: str
    suggestion: str | None = None

    def to_json_line(self) -> str:
        """Compact JSON with a fixed key order, so the output is byte-for-byte stable."""
        obj: dict[str, object] = {
            "path": self.path,
            "line": self.line,
            "end_line": self.end_line,
            "severity": self.severity,
            "category": self.category,
            "message": self.message,
        }
        if self.suggestion is not None:
            obj["suggestion"] = self.suggestion
        return orjson.dumps(obj).decode()


def parse_file_blocks(text: str) -> list[FileBlock]:
    """Split a user message into file blocks, ignoring everything that is not a block line."""
    blocks: list[FileBlock] = []
    path: str | None = None
    lines: list[CodeLine] = []
    for raw in text.splitlines():
        header = _FILE_HEADER_RE.match(raw)
        if header is not None:
            if path is not None:
                blocks.append(FileBlock(path, tuple(lines)))
            path, lines = header.group(1), []
            continue
        if path is None:
            continue
        numbered = _NUMBERED_LINE_RE.match(raw)
        if numbered is not None:
            lines.append(CodeLine(int(numbered.group(1)), numbered.group(2) or ""))
    if path is not None:
        blocks.append(FileBlock(path, tuple(lines)))
    return blocks


def format_file_block(path: str, numbered_lines: list[tuple[int, str]]) -> str:
    """Render a file block the way Tandem's client does (used by tests and demos)."""
    width = max((len(str(n)) for n, _ in numbered_lines), default=1)
    body = "\n".join(f"{n:>{width}}| {text}" for n, text in numbered_lines)
    return f"{FILE_HEADER}{path}\n{body}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary_line(findings: int, files: int) -> str:
    """The final JSON line of every answer."""
    text = f"{_plural(findings, 'finding')} in {_plural(files, 'file')}"
    return orjson.dumps({"summary": text}).decode()
