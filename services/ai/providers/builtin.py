"""The built-in provider: ruff, detect-secrets and lizard, deterministic and offline.

ruff (its bundled binary, JSON output) checks Python files for correctness and
security problems; detect-secrets looks for leaked credentials in every file;
lizard flags over-complex, over-long functions in the languages it knows. ruff
runs as a subprocess; detect-secrets and lizard run in a small process pool
(see analyzers.py), so several files and tools are analysed in parallel and the
event loop stays free.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import importlib.metadata
import logging
import multiprocessing
import os
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import orjson
from ruff import find_ruff_bin  # type: ignore[import-untyped]  # its one-function wrapper has no types

from services.ai.domain import FileDone, Finding, Severity, SourceFile, make_finding
from services.ai.providers import ProviderError, ProviderItem, analyzers
from services.common import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

# Correctness and security rules, chosen to be worth a reviewer's attention in a
# pull request: pyflakes (unused imports, undefined names), pycodestyle's real
# errors (bare except, comparisons, syntax), bugbear, bandit, pylint errors,
# async pitfalls and leftover debugger calls.
RUFF_SELECT = ("E4", "E7", "E9", "F", "B", "S", "PLE", "ASYNC", "T10", "RUF006")
# assert is how tests are written; flagging it in every test file is noise.
RUFF_IGNORE = ("S101",)
PYTHON_SUFFIXES = (".py", ".pyi")
MAX_COMPLEXITY = 15
MAX_FUNCTION_LINES = 100
MAX_PARAMETERS = 8
# Files analysed at the same time within one job.
FILE_PARALLELISM = 4
# detect-secrets costs about 0.15 ms per line; a long file is scanned in slices of
# at least this many lines, one per worker process, so it finishes in time.
SECRETS_SLICE_LINES = 500

# Bandit rules whose hits are worth a look but are not vulnerabilities by themselves.
_SECURITY_WARNINGS = frozenset({
    "S103", "S108", "S110", "S112", "S113", "S311", "S324", "S403", "S404", "S405", "S603",
    "S607",
})
_CORRECTNESS_ERRORS = frozenset({"F821", "F822", "F823", "F632", "F811"})
_CREDENTIAL_RULES = frozenset({"S105", "S106", "S107"})
_HINTS = {
    "E722": "Catch the exceptions you expect (or `except Exception:`), so SystemExit and "
            "KeyboardInterrupt still stop the program",
    "S307": "Never evaluate input: use `ast.literal_eval` for literals, or parse it explicitly",
    "S102": "Never execute input; call the code you mean directly",
    "S105": "Read the secret from the environment or a secret store, and rotate it now that "
            "it has been committed",
    "S106": "Read the secret from the environment or a secret store, and rotate it now that "
            "it has been committed",
    "S107": "Read the secret from the environment or a secret store, and rotate it now that "
            "it has been committed",
    "S608": "Use a parameterized query (placeholders with bound values) instead of building "
            "SQL from strings",
    "S602": "Pass an argument list and leave shell=False",
    "S605": "Use subprocess with an argument list instead of a shell",
    "S301": "Do not unpickle untrusted data; use JSON or another safe format",
    "S506": "Use yaml.safe_load",
    "B006": "Default to None and create the value inside the function",
    "B008": "Default to None and call the function inside the body",
    "B904": "Raise with `from err` (or `from None`) to keep the cause clear",
}
_LEAK_HINT = ("Remove it from the code and the history, rotate it, and load it from the "
              "environment or a secret store")


def ruff_class(code: str) -> tuple[Severity, str]:
    """Severity and category for a ruff rule code."""
    if code.startswith("S"):
        return ("warning" if code in _SECURITY_WARNINGS else "error"), "security"
    if code == "invalid-syntax" or code.startswith(("E9", "PLE")) or code in _CORRECTNESS_ERRORS:
        return "error", "correctness"
    if code.startswith("F"):
        return "warning", "maintainability"
    if code.startswith("E4"):
        return "info", "style"
    return "warning", "correctness"


def ruff_findings(path: str, diagnostics: Sequence[dict[str, Any]]) -> list[Finding]:
    """Map ruff's JSON diagnostics to findings; a fix's description becomes the suggestion."""
    out: list[Finding] = []
    for item in diagnostics:
        code = str(item.get("code") or "invalid-syntax")
        location = item.get("location") or {}
        end = item.get("end_location") or location
        line = int(location.get("row") or 1)
        end_line = int(end.get("row") or line)
        if code == "invalid-syntax" and end_line > line:
            # ruff ends a syntax error where parsing gave up, often the file's end.
            end_line = line
        sev, category = ruff_class(code)
        fix = item.get("fix") or {}
        suggestion = (fix.get("message") if isinstance(fix, dict) else None) or _HINTS.get(code)
        message = str(item.get("message") or code)
        label = "syntax error" if code == "invalid-syntax" else code
        out.append(make_finding(path, line, end_line, sev, category, f"{message} ({label})",
                                suggestion, "ruff"))
    return out


def secret_findings(path: str, hits: analyzers.SecretHits,
                    credential_lines: frozenset[int]) -> list[Finding]:
    """One finding per line holding something detect-secrets takes for a credential."""
    by_line: dict[int, list[str]] = {}
    for line, kind in hits:
        by_line.setdefault(line, []).append(kind)
    out: list[Finding] = []
    for line, kinds in sorted(by_line.items()):
        # ruff already said "hard-coded password" for a keyword match on this line.
        if line in credential_lines and set(kinds) == {"Secret Keyword"}:
            continue
        names = ", ".join(sorted(set(kinds)))
        out.append(make_finding(path, line, line, "error", "security",
                                f"Possible leaked credential ({names})", _LEAK_HINT,
                                "detect-secrets"))
    return out


def function_findings(path: str, functions: analyzers.FunctionStats) -> list[Finding]:
    """Over-complex, over-long and over-parameterised functions."""
    out: list[Finding] = []
    for name, start, end, complexity, nloc, params in functions:
        if complexity > MAX_COMPLEXITY:
            out.append(make_finding(
                path, start, end, "warning", "maintainability",
                f"Function `{name}` has cyclomatic complexity {complexity} "
                f"(limit {MAX_COMPLEXITY})",
                "Split it into smaller functions that each make one decision", "lizard"))
        if nloc > MAX_FUNCTION_LINES:
            out.append(make_finding(
                path, start, end, "warning", "maintainability",
                f"Function `{name}` has {nloc} lines of code (limit {MAX_FUNCTION_LINES})",
                "Extract the steps into well-named helper functions", "lizard"))
        if params > MAX_PARAMETERS:
            out.append(make_finding(
                path, start, start, "info", "maintainability",
                f"Function `{name}` takes {params} parameters (limit {MAX_PARAMETERS})",
                "Group related parameters into an object", "lizard"))
    return out


_SOURCE_ORDER = {"ruff": 0, "detect-secrets": 1, "lizard": 2}


def _order(finding: Finding) -> tuple[int, int, int, str]:
    return finding.line, finding.end_line, _SOURCE_ORDER.get(finding.source, 9), finding.message


def _fingerprint() -> str:
    """Changes whenever a tool version or the rule set changes, so stale cache entries miss."""
    parts = [f"{name}={importlib.metadata.version(name)}"
             for name in ("ruff", "detect-secrets", "lizard")]
    parts += [",".join(RUFF_SELECT), ",".join(RUFF_IGNORE),
              f"{MAX_COMPLEXITY}/{MAX_FUNCTION_LINES}/{MAX_PARAMETERS}", "rules-1"]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


class BuiltinProvider:
    """Deterministic analysis of whole files (the caller keeps findings inside the diff)."""

    def __init__(self, *, timeout: float = 20.0, processes: int = 2) -> None:
        self._timeout = timeout
        self._processes = processes
        self._ruff = find_ruff_bin()
        self._model = "builtin-" + _fingerprint()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    @property
    def name(self) -> str:
        return "builtin"

    @property
    def model(self) -> str:
        return self._model

    @property
    def scoped(self) -> bool:
        return False

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: forking a process that runs gRPC threads is unsafe. The
            # workers are told who started them, and exit when it does (even on SIGKILL).
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self._processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=analyzers.init_worker, initargs=(os.getpid(),))
        return self._pool

    async def warm_up(self) -> None:
        """Start the worker processes now rather than on the first review."""
        pool = self._executor()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.gather(*(loop.run_in_executor(pool, analyzers.ready)
                                   for _ in range(self._processes)))
        except BrokenProcessPool:
            # A worker died starting: the next try (or review) starts fresh ones.
            if self._pool is pool:
                self._pool = None
            raise

    async def close(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the worker processes (they finish the task in hand and exit)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def review(self, files: Sequence[SourceFile]) -> AsyncGenerator[ProviderItem, None]:
        gate = asyncio.Semaphore(FILE_PARALLELISM)

        async def one(source: SourceFile) -> list[Finding]:
            async with gate:
                return await self.analyze(source)

        # Files are analysed concurrently but reported in order, so the stream is
        # the same every time; each file's findings go out as soon as it is done.
        tasks = [asyncio.create_task(one(source)) for source in files]
        try:
            for source, task in zip(files, tasks, strict=True):
                for finding in await task:
                    yield finding
                yield FileDone(source.path)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def analyze(self, source: SourceFile) -> list[Finding]:
        """Every finding of the three tools on one whole file, ordered by line."""
        started = time.perf_counter()
        is_python = source.path.lower().endswith(PYTHON_SUFFIXES)
        lint = self._ruff_check(source) if is_python else _nothing()
        secrets = self._scan_secrets(source)
        functions = self._in_worker(source.path, analyzers.measure_functions, source.path,
                                    source.content)
        diagnostics, hits, stats = await asyncio.gather(lint, secrets, functions)
        credential_lines = frozenset(int((d.get("location") or {}).get("row") or 0)
                                     for d in diagnostics if d.get("code") in _CREDENTIAL_RULES)
        found = [*ruff_findings(source.path, diagnostics),
                 *secret_findings(source.path, hits, credential_lines),
                 *function_findings(source.path, stats)]
        metrics.AI_PROVIDER_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        return sorted(found, key=_order)

    async def _scan_secrets(self, source: SourceFile) -> analyzers.SecretHits:
        lines = source.content.splitlines(keepends=True)
        slices = max(1, min(self._processes, len(lines) // SECRETS_SLICE_LINES))
        if slices == 1:
            return await self._in_worker(source.path, analyzers.scan_secrets, source.path,
                                         source.content, 1)
        size = -(-len(lines) // slices)
        parts = await asyncio.gather(*(
            self._in_worker(source.path, analyzers.scan_secrets, source.path,
                            "".join(lines[start:start + size]), start + 1)
            for start in range(0, len(lines), size)))
        return sorted(hit for part in parts for hit in part)

    async def _in_worker(self, path: str, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._executor(), fn, *args)
            return await asyncio.wait_for(future, self._timeout)
        except TimeoutError:
            raise _failure(f"the built-in analyzer took longer than {self._timeout:g}s on "
                           f"{path}", "timeout") from None
        except BrokenProcessPool:
            # A worker died (killed, out of memory): start fresh ones for the next job.
            self._pool = None
            raise _failure("the built-in analyzer's worker process stopped; "
                           "request the review again", "crash") from None

    async def _ruff_check(self, source: SourceFile) -> list[dict[str, Any]]:
        proc = await asyncio.create_subprocess_exec(
            self._ruff, "check", "--isolated", "--no-cache", "--output-format", "json",
            "--select", ",".join(RUFF_SELECT), "--ignore", ",".join(RUFF_IGNORE),
            # `=` keeps a path that starts with "-" from being read as an option.
            f"--stdin-filename={source.path}", "-",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(source.content.encode("utf-8", errors="surrogateescape")),
                self._timeout)
        except TimeoutError:
            raise _failure(f"ruff took longer than {self._timeout:g}s on {source.path}",
                           "timeout") from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        # 0: clean, 1: findings; anything else is ruff failing to run.
        if proc.returncode not in (0, 1):
            log.warning("ruff failed", extra={"path": source.path, "returncode": proc.returncode,
                                              "stderr": err.decode(errors="replace")[:300]})
            raise _failure(f"ruff could not analyze {source.path}", "crash")
        try:
            diagnostics = orjson.loads(out or b"[]")
        except orjson.JSONDecodeError:
            raise _failure(f"ruff answered unreadable output for {source.path}",
                           "crash") from None
        return [d for d in diagnostics if isinstance(d, dict)]


async def _nothing() -> list[dict[str, Any]]:
    return []


def _failure(message: str, kind: str) -> ProviderError:
    metrics.AI_PROVIDER_ERRORS.labels("builtin", kind).inc()
    return ProviderError(message, kind)
