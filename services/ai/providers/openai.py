"""An OpenAI-compatible chat-completions provider: streamed JSON Lines findings, parsed as they arrive.

The prompt and answer formats are the contract in `standins/openai/protocol.py`:
the code goes out as `### FILE: <path>` blocks of numbered lines `<n>| <text>`
(only the lines in scope: a diff's added and context lines, or the whole file),
and findings come back one compact JSON object per line, then a summary line.
Lines may be split across stream chunks; anything that is not a valid finding is
skipped, and findings on lines that were not sent are dropped.

Large reviews are split by file (and a very large file by line ranges) so each
request stays within a token budget (about four characters per token). Requests
are retried with exponential backoff and jitter on 429 and 5xx answers only,
honouring Retry-After; everything else fails the job with a clear reason.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import urlsplit

import orjson

from services.ai.config import OpenAIConfig
from services.ai.domain import (
    SEVERITIES,
    FileDone,
    Finding,
    SourceFile,
    make_finding,
    plural,
    severity,
)
from services.ai.providers import ProviderError, ProviderItem
from services.common import metrics
from services.common.lazyhttp import LazyHttpClient

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

PROVIDER = "openai"
FILE_HEADER = "### FILE: "
# One line of code longer than this is cut: a minified file must not blow a request.
MAX_LINE_CHARS = 2_000
# A JSON line longer than this without a newline is not a finding; drop it.
MAX_ANSWER_LINE = 64 * 1024

SYSTEM_PROMPT = """\
You are a careful senior code reviewer. Review the code the user sends for bugs, security \
problems, maintainability and style issues worth a reviewer's comment.

The code comes as file blocks: a line `### FILE: <path>`, then numbered lines `<n>| <text>`, \
where <n> is the line number in the file. Only comment on numbered lines you were given.

Answer with JSON Lines only (no prose, no code fences): one compact JSON object per finding, \
keys in this order: "path", "line", "end_line", "severity" ("info", "warning" or "error"), \
"category" (one word such as security, correctness, maintainability, style), "message", and \
optionally "suggestion". Then one final line {"summary": "<N findings in M files>"}."""

USER_PREAMBLE = "Review the following code.\n\n"


def estimate_tokens(chars: int) -> int:
    """About four characters per token: enough to budget requests without a tokenizer."""
    return math.ceil(chars / 4)


@dataclass(frozen=True, slots=True)
class Block:
    """The numbered lines of one file (or of a slice of it) sent in one request."""

    path: str
    lines: tuple[tuple[int, str], ...]

    def render(self) -> str:
        width = max((len(str(n)) for n, _ in self.lines), default=1)
        body = "\n".join(f"{n:>{width}}| {text}" if text else f"{n:>{width}}|"
                         for n, text in self.lines)
        return f"{FILE_HEADER}{self.path}\n{body}"


@dataclass(slots=True)
class Batch:
    """The blocks of one request."""

    blocks: list[Block] = field(default_factory=list)

    def prompt(self) -> str:
        return USER_PREAMBLE + "\n\n".join(b.render() for b in self.blocks) + "\n"

    def allowed(self) -> dict[str, frozenset[int]]:
        lines: dict[str, set[int]] = {}
        for block in self.blocks:
            lines.setdefault(block.path, set()).update(n for n, _ in block.lines)
        return {path: frozenset(numbers) for path, numbers in lines.items()}


def plan_batches(files: Sequence[SourceFile], max_prompt_tokens: int) -> list[Batch]:
    """Requests within the token budget: whole files packed together, large files split."""
    limit = max_prompt_tokens * 4 - len(SYSTEM_PROMPT) - len(USER_PREAMBLE) - 16
    limit = max(limit, 400)
    blocks: list[Block] = []
    for source in files:
        header = len(FILE_HEADER) + len(source.path) + 2
        chunk: list[tuple[int, str]] = []
        size = header
        for number, full in source.numbered_lines():
            text = full[:MAX_LINE_CHARS]
            cost = len(str(number)) + len(text) + 4
            if chunk and size + cost > limit:
                blocks.append(Block(source.path, tuple(chunk)))
                chunk, size = [], header
            chunk.append((number, text))
            size += cost
        if chunk:
            blocks.append(Block(source.path, tuple(chunk)))
    batches: list[Batch] = []
    current = Batch()
    used = 0
    for block in blocks:
        cost = len(block.render()) + 2
        if current.blocks and used + cost > limit:
            batches.append(current)
            current, used = Batch(), 0
        current.blocks.append(block)
        used += cost
    if current.blocks:
        batches.append(current)
    return batches


class JsonLinesParser:
    """Splits streamed text into complete lines, whatever the chunk boundaries."""

    def __init__(self, max_line: int = MAX_ANSWER_LINE) -> None:
        self._pending = ""
        self._max = max_line
        self.overlong = 0

    def feed(self, text: str) -> list[str]:
        data = self._pending + text
        *complete, self._pending = data.split("\n")
        if len(self._pending) > self._max:
            # No newline in sight: whatever this is, it is not a finding line.
            self._pending = ""
            self.overlong += 1
        return [line for line in complete if line.strip()]

    def close(self) -> list[str]:
        rest, self._pending = self._pending, ""
        return [rest] if rest.strip() else []


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one answer line turned out to be."""

    kind: str  # "finding", "summary", "malformed" or "out_of_range"
    finding: Finding | None = None


def parse_answer_line(line: str, allowed: Mapping[str, frozenset[int]]) -> Parsed:
    """One JSON line of the model's answer, checked against the lines that were sent."""
    text = line.strip()
    # Models like to wrap output in fences; those lines are noise, not findings.
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Parsed("malformed")
    if not isinstance(data, dict):
        return Parsed("malformed")
    if set(data) == {"summary"}:
        return Parsed("summary")
    path, line_no = data.get("path"), data.get("line")
    end_line = data.get("end_line", line_no)
    sev, category = data.get("severity"), data.get("category", "general")
    message, suggestion = data.get("message"), data.get("suggestion")
    if (not isinstance(path, str) or not _is_int(line_no) or not _is_int(end_line)
            or not isinstance(sev, str) or sev not in SEVERITIES or not isinstance(category, str)
            or not isinstance(message, str) or not message.strip()
            or not (suggestion is None or isinstance(suggestion, str))):
        return Parsed("malformed")
    lines = allowed.get(path)
    if lines is None or line_no not in lines:
        return Parsed("out_of_range")
    # The range ends on a line that was sent, never before the start.
    last = max(lines)
    end = min(max(end_line, line_no), last)
    return Parsed("finding", make_finding(path, line_no, end, severity(sev), category,
                                          message, suggestion, PROVIDER))


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(slots=True)
class _Refusal:
    """An HTTP answer other than 200: the error to raise, and whether to try again."""

    error: ProviderError
    retryable: bool
    retry_after: float | None


class OpenAIProvider:
    """Streams chat completions from an OpenAI-compatible API."""

    def __init__(self, settings: OpenAIConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 rng: random.Random | None = None) -> None:
        self._settings = settings
        self._url = settings.base_url.rstrip("/") + "/chat/completions"
        self._host = urlsplit(settings.base_url).netloc

        def make_client() -> httpx.AsyncClient:
            import httpx  # noqa: PLC0415 - made with the first review, not at start-up

            return httpx.AsyncClient(
                timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
                headers={"Authorization": f"Bearer {settings.api_key or ''}"},
                transport=transport)

        self._client = LazyHttpClient(make_client)
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not security

    @property
    def name(self) -> str:
        return PROVIDER

    @property
    def model(self) -> str:
        return self._settings.model

    @property
    def scoped(self) -> bool:
        return True

    async def close(self) -> None:
        await self._client.aclose()

    async def review(self, files: Sequence[SourceFile]) -> AsyncGenerator[ProviderItem, None]:
        batches = plan_batches(files, self._settings.max_prompt_tokens)
        blocks_left: dict[str, int] = {}
        for batch in batches:
            for block in batch.blocks:
                blocks_left[block.path] = blocks_left.get(block.path, 0) + 1
        for source in files:
            if source.path not in blocks_left:
                # Nothing in scope to send: reviewed, with nothing to say.
                yield FileDone(source.path)
        for batch in batches:
            async for finding in self._request(batch):
                yield finding
            for block in batch.blocks:
                blocks_left[block.path] -= 1
                if blocks_left[block.path] == 0:
                    yield FileDone(block.path)

    def _body(self, batch: Batch) -> dict[str, Any]:
        return {
            "model": self._settings.model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                         {"role": "user", "content": batch.prompt()}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0,
            "max_tokens": self._settings.max_completion_tokens,
        }

    async def _request(self, batch: Batch) -> AsyncIterator[Finding]:
        """One request, retried on 429/5xx before any of its answer was read."""
        import httpx  # noqa: PLC0415 - loaded with the first review (services/common/lazyhttp.py)

        body = self._body(batch)
        prompt_chars = sum(len(m["content"]) for m in body["messages"])
        attempt = 0
        while True:
            started = time.perf_counter()
            refusal: _Refusal | None = None
            try:
                async with self._client().stream("POST", self._url, json=body) as response:
                    if response.status_code == 200:
                        async for finding in self._read(response, batch, prompt_chars, started):
                            yield finding
                    else:
                        await response.aread()
                        refusal = self._refusal(response)
            except httpx.TimeoutException:
                raise self._fail("timeout", f"the AI provider did not answer within "
                                            f"{self._settings.timeout:g}s") from None
            except httpx.ConnectError:
                raise self._fail("connection",
                                 f"the AI provider at {self._host} is unreachable") from None
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                raise self._fail("disconnect", "the AI provider closed the connection before "
                                               "its answer was complete") from None
            except httpx.HTTPError as exc:
                raise self._fail("connection", f"the AI provider at {self._host} could not be "
                                               f"reached ({type(exc).__name__})") from None
            finally:
                metrics.AI_PROVIDER_SECONDS.labels(PROVIDER).observe(time.perf_counter() - started)
            if refusal is None:
                return
            metrics.AI_PROVIDER_ERRORS.labels(PROVIDER, refusal.error.kind).inc()
            delay = self._backoff(attempt, refusal.retry_after)
            if not refusal.retryable or attempt >= self._settings.max_retries or delay is None:
                if refusal.retryable:
                    raise ProviderError(f"{refusal.error.message}; gave up after "
                                        f"{plural(attempt + 1, 'attempt')}", refusal.error.kind)
                raise refusal.error
            attempt += 1
            log.warning("AI provider refused, retrying", extra={
                "kind": refusal.error.kind, "attempt": attempt, "delay": round(delay, 3)})
            await asyncio.sleep(delay)

    def _fail(self, kind: str, message: str) -> ProviderError:
        metrics.AI_PROVIDER_ERRORS.labels(PROVIDER, kind).inc()
        return ProviderError(message, kind)

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        """Exponential backoff with jitter, at least Retry-After; None when that is too long."""
        settings = self._settings
        ceiling = min(settings.retry_max, settings.retry_base * 2.0 ** attempt)
        delay = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            if retry_after > settings.retry_max:
                return None
            delay = max(delay, retry_after)
        return delay

    def _refusal(self, response: httpx.Response) -> _Refusal:
        status = response.status_code
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        detail = _error_message(response)
        if status == 429:
            return _Refusal(ProviderError("the AI provider is rate limiting requests (HTTP 429)",
                                          "rate_limited"), True, retry_after)
        if status >= 500:
            return _Refusal(ProviderError(f"the AI provider failed (HTTP {status})",
                                          "server_error"), True, retry_after)
        if status in (401, 403):
            # Never echo the provider's text here: it can quote part of the key.
            return _Refusal(ProviderError(f"the AI provider refused the API key (HTTP {status})",
                                          "auth"), False, None)
        if status == 404:
            return _Refusal(ProviderError(f"the AI provider does not offer the model "
                                          f"{self._settings.model!r} (HTTP 404)", "rejected"),
                            False, None)
        message = f"the AI provider rejected the request (HTTP {status})"
        if detail:
            message += f": {detail}"
        return _Refusal(ProviderError(message, "rejected"), False, None)

    async def _read(self, response: httpx.Response, batch: Batch, prompt_chars: int,
                    started: float) -> AsyncIterator[Finding]:
        allowed = batch.allowed()
        parser = JsonLinesParser()
        usage: dict[str, Any] | None = None
        content_chars = 0
        finished = False
        async for event in _sse_events(response.aiter_lines()):
            if time.perf_counter() - started > self._settings.request_deadline:
                raise self._fail("timeout", f"the AI provider's answer took longer than "
                                            f"{self._settings.request_deadline:g}s")
            if event is None:
                finished = True
                break
            if isinstance(event.get("error"), dict):
                text = str(event["error"].get("message") or "error")[:200]
                raise self._fail("server_error", f"the AI provider failed mid-answer: {text}")
            if isinstance(event.get("usage"), dict):
                usage = event["usage"]
            for choice in event.get("choices") or ():
                if not isinstance(choice, dict):
                    continue
                delta = choice.get("delta")
                piece = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(piece, str) and piece:
                    content_chars += len(piece)
                    for line in parser.feed(piece):
                        finding = self._accept(line, allowed)
                        if finding is not None:
                            yield finding
                reason = choice.get("finish_reason")
                if reason:
                    finished = True
                    if reason == "length":
                        log.warning("AI provider answer cut at max_tokens")
                        metrics.AI_PROVIDER_ERRORS.labels(PROVIDER, "truncated").inc()
        if not finished:
            raise self._fail("disconnect", "the AI provider's answer ended before it was complete")
        for line in parser.close():
            finding = self._accept(line, allowed)
            if finding is not None:
                yield finding
        if parser.overlong:
            metrics.AI_PROVIDER_ERRORS.labels(PROVIDER, "malformed_output").inc(parser.overlong)
        tokens_in = int(usage.get("prompt_tokens", 0)) if usage else estimate_tokens(prompt_chars)
        tokens_out = (int(usage.get("completion_tokens", 0)) if usage
                      else estimate_tokens(content_chars))
        metrics.AI_TOKENS.labels(PROVIDER, "in").inc(tokens_in)
        metrics.AI_TOKENS.labels(PROVIDER, "out").inc(tokens_out)

    def _accept(self, line: str, allowed: Mapping[str, frozenset[int]]) -> Finding | None:
        parsed = parse_answer_line(line, allowed)
        if parsed.kind == "malformed":
            log.info("skipped a malformed line in the AI provider's answer")
            metrics.AI_PROVIDER_ERRORS.labels(PROVIDER, "malformed_output").inc()
        elif parsed.kind == "out_of_range":
            log.info("dropped a finding outside the reviewed lines")
            metrics.AI_PROVIDER_ERRORS.labels(PROVIDER, "out_of_range").inc()
        return parsed.finding


def _error_message(response: httpx.Response) -> str:
    """The provider's own error text (OpenAI's `{"error": {"message"}}`), bounded."""
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return str(message)[:200] if message else ""


async def _sse_events(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any] | None]:
    """Server-sent events' JSON data; None for the `[DONE]` marker."""
    data: list[str] = []
    async for line in lines:
        if line == "":
            for event in _dispatch(data):
                yield event
            data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    for event in _dispatch(data):
        yield event


def _dispatch(data: list[str]) -> Iterator[dict[str, Any] | None]:
    if not data:
        return
    payload = "\n".join(data)
    if payload.strip() == "[DONE]":
        yield None
        return
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        log.info("skipped an unreadable event in the AI provider's stream")
        return
    if isinstance(event, dict):
        yield event
