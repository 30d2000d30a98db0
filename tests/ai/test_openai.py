"""The OpenAI-compatible provider against the in-process stand-in: streaming, faults, budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from services.ai.config import OpenAIConfig
from services.ai.domain import FileDone, Finding, SourceFile
from services.ai.providers import ProviderError, ProviderItem
from services.ai.providers.openai import (
    JsonLinesParser,
    OpenAIProvider,
    parse_answer_line,
    plan_batches,
    retry_after_seconds,
)
from standins.github.data import HELLO_CONFIG_HEAD, HELLO_USERS_HEAD
from standins.openai.faults import Fault
from tests.ai.conftest import OPENAI_KEY, OPENAI_MODEL, OpenAIStandin, eventually

USERS = SourceFile("app/users.py", HELLO_USERS_HEAD)
# (line, message) the stand-in's model finds in the sample file, in its order.
EXPECTED = [
    (9, "Hard-coded credential"),
    (42, "Mutable default argument"),
    (52, "Use of eval on dynamic input"),
    (98, "Bare except catches SystemExit and KeyboardInterrupt"),
]


def settings(standin: OpenAIStandin, **changes: object) -> OpenAIConfig:
    values: dict[str, object] = {
        "base_url": standin.base_url, "api_key": OPENAI_KEY, "model": OPENAI_MODEL,
        "timeout": 2.0, "request_deadline": 30.0, "max_retries": 2, "retry_base": 0.01,
        "retry_max": 2.0, "max_prompt_tokens": 6_000, "max_completion_tokens": 4_000}
    values.update(changes)
    return OpenAIConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def provider(openai_standin: OpenAIStandin) -> AsyncIterator[OpenAIProvider]:
    client = OpenAIProvider(settings(openai_standin))
    yield client
    await client.close()


async def collect(provider: OpenAIProvider, files: list[SourceFile]) -> list[ProviderItem]:
    return [item async for item in provider.review(files)]


def findings(items: list[ProviderItem]) -> list[tuple[int, str]]:
    return [(i.line, i.message) for i in items if isinstance(i, Finding)]


def errors(kind: str) -> float:
    return REGISTRY.get_sample_value("tandem_ai_provider_errors_total",
                                     {"provider": "openai", "kind": kind}) or 0.0


def fault(standin: OpenAIStandin, name: Fault, times: int | None = None,
          slow_ms: int | None = None) -> None:
    standin.state.board.set(frozenset({name}), times, slow_ms)


async def test_findings_stream_in_order_then_the_file_is_done(
        provider: OpenAIProvider, openai_standin: OpenAIStandin) -> None:
    tokens_before = REGISTRY.get_sample_value("tandem_ai_tokens_total",
                                              {"provider": "openai", "direction": "out"}) or 0
    items = await collect(provider, [USERS])
    assert findings(items) == EXPECTED
    assert items[-1] == FileDone("app/users.py")
    finding = next(i for i in items if isinstance(i, Finding))
    assert (finding.path, finding.severity, finding.category, finding.source) == (
        "app/users.py", "error", "security", "openai")
    assert finding.suggestion
    [request] = openai_standin.requests()
    assert request["stream"] is True
    assert request["outcome"] == "completed"
    assert request["chunks_sent"] > 10  # each finding line arrived in several pieces
    tokens_after = REGISTRY.get_sample_value("tandem_ai_tokens_total",
                                             {"provider": "openai", "direction": "out"})
    assert tokens_after is not None
    assert tokens_after > tokens_before


async def test_only_lines_in_scope_are_sent_and_commented_on(
        provider: OpenAIProvider, openai_standin: OpenAIStandin) -> None:
    scoped = SourceFile("app/users.py", HELLO_USERS_HEAD, frozenset({40, 41, 42, 52, 53}))
    items = await collect(provider, [scoped])
    assert findings(items) == [(42, "Mutable default argument"),
                               (52, "Use of eval on dynamic input")]
    [request] = openai_standin.requests()
    assert request["message_chars"][1] < 600  # five lines, not the whole file


async def test_rate_limits_are_retried_after_retry_after_then_succeed(
        provider: OpenAIProvider, openai_standin: OpenAIStandin) -> None:
    before = errors("rate_limited")
    fault(openai_standin, Fault.RATE_LIMIT, times=2)
    started = time.perf_counter()
    items = await collect(provider, [USERS])
    assert findings(items) == EXPECTED
    assert [r["status"] for r in openai_standin.requests()] == [429, 429, 200]
    # The stand-in says Retry-After: 1, and it is honoured.
    assert time.perf_counter() - started >= 2.0
    assert errors("rate_limited") == before + 2


async def test_server_errors_fail_after_bounded_retries(
        provider: OpenAIProvider, openai_standin: OpenAIStandin) -> None:
    fault(openai_standin, Fault.SERVER_ERROR)
    with pytest.raises(ProviderError) as info:
        await collect(provider, [USERS])
    assert info.value.kind == "server_error"
    assert info.value.message == ("the AI provider failed (HTTP 500); gave up after 3 attempts")
    assert [r["status"] for r in openai_standin.requests()] == [500, 500, 500]


async def test_malformed_output_is_skipped_and_valid_findings_kept(
        provider: OpenAIProvider, openai_standin: OpenAIStandin) -> None:
    before = errors("malformed_output")
    fault(openai_standin, Fault.MALFORMED)
    items = await collect(provider, [USERS])
    assert findings(items) == EXPECTED
    # Prose, two fences, the cut line, the invalid finding and the closing prose.
    assert errors("malformed_output") == before + 6


async def test_findings_outside_the_sent_lines_are_dropped(
        provider: OpenAIProvider, openai_standin: OpenAIStandin) -> None:
    before = errors("out_of_range")
    fault(openai_standin, Fault.OUT_OF_RANGE)
    items = await collect(provider, [USERS])
    assert findings(items) == EXPECTED
    assert errors("out_of_range") == before + 1


async def test_a_slow_provider_beyond_the_timeout_fails(openai_standin: OpenAIStandin) -> None:
    slow = OpenAIProvider(settings(openai_standin, timeout=0.3))
    fault(openai_standin, Fault.SLOW, slow_ms=5_000)
    started = time.perf_counter()
    try:
        with pytest.raises(ProviderError) as info:
            await collect(slow, [USERS])
    finally:
        await slow.close()
    assert info.value.kind == "timeout"
    assert "did not answer within 0.3s" in info.value.message
    assert time.perf_counter() - started < 2.0
    assert len(openai_standin.requests()) == 1  # timeouts are not retried


async def test_a_dropped_connection_fails_after_the_findings_already_read(
        provider: OpenAIProvider, openai_standin: OpenAIStandin) -> None:
    fault(openai_standin, Fault.DISCONNECT)
    seen: list[ProviderItem] = []

    async def read() -> None:
        async for item in provider.review([USERS]):
            seen.append(item)

    with pytest.raises(ProviderError) as info:
        await read()
    assert info.value.kind == "disconnect"
    assert findings(seen) == EXPECTED[:len(findings(seen))]
    assert not any(isinstance(i, FileDone) for i in seen)
    assert len(openai_standin.requests()) == 1


async def test_cancelling_the_review_closes_the_stream(
        provider: OpenAIProvider, openai_standin: OpenAIStandin) -> None:
    fault(openai_standin, Fault.SLOW, slow_ms=300)
    slow = OpenAIProvider(settings(openai_standin, timeout=5.0))
    task = asyncio.create_task(collect(slow, [USERS]))
    try:
        await eventually(lambda: _state(openai_standin, "pending"))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await eventually(lambda: _state(openai_standin, "client_disconnected"))
    finally:
        await slow.close()


async def _state(standin: OpenAIStandin, outcome: str) -> bool:
    return [r["outcome"] for r in standin.requests()] == [outcome]


async def test_a_refused_key_is_not_retried_and_not_echoed(openai_standin: OpenAIStandin) -> None:
    wrong = OpenAIProvider(settings(openai_standin, api_key="sk-wrong-key-123456"))
    try:
        with pytest.raises(ProviderError) as info:
            await collect(wrong, [USERS])
    finally:
        await wrong.close()
    assert info.value.kind == "auth"
    assert "3456" not in info.value.message
    assert len(openai_standin.requests()) == 1


async def test_a_large_review_is_split_by_file_within_the_token_budget(
        openai_standin: OpenAIStandin) -> None:
    budget = 900
    small = OpenAIProvider(settings(openai_standin, max_prompt_tokens=budget))
    files = [USERS, SourceFile("app/config.py", HELLO_CONFIG_HEAD),
             SourceFile("app/extra.py", "def f(x=[]):\n    return eval(x)\n")]
    try:
        items = await collect(small, files)
    finally:
        await small.close()
    requests = openai_standin.requests()
    # The sample file alone is larger than one request may be.
    assert len(HELLO_USERS_HEAD) / 4 > budget - 200
    assert len(requests) >= 2
    assert all(r["prompt_tokens"] <= budget for r in requests)
    assert findings([i for i in items if i.path == "app/users.py"]) == EXPECTED
    assert (1, "Mutable default argument") in findings([i for i in items
                                                        if i.path == "app/extra.py"])
    done = [i.path for i in items if isinstance(i, FileDone)]
    assert sorted(done) == sorted(f.path for f in files)
    # A file is done only after its last finding.
    for path in done:
        last_finding = max((n for n, i in enumerate(items)
                            if isinstance(i, Finding) and i.path == path), default=-1)
        assert items.index(FileDone(path)) > last_finding


def test_answer_lines_are_reassembled_across_any_chunk_boundary() -> None:
    answer = ('{"path":"a.py","line":1,"end_line":1,"severity":"info","category":"style",'
              '"message":"m"}\nnot json\n{"summary":"1 finding in 1 file"}')
    for cut in range(len(answer) + 1):
        parser = JsonLinesParser()
        lines = parser.feed(answer[:cut]) + parser.feed(answer[cut:]) + parser.close()
        assert lines == answer.split("\n"), cut


def test_a_line_without_end_is_dropped_when_too_long() -> None:
    parser = JsonLinesParser(max_line=10)
    assert parser.feed("x" * 11) == []
    assert parser.overlong == 1
    assert parser.feed("ok\n") == ["ok"]


def test_answer_lines_are_checked_against_what_was_sent() -> None:
    allowed = {"a.py": frozenset({3, 4, 5})}

    def line(**fields: object) -> str:
        base: dict[str, object] = {"path": "a.py", "line": 4, "end_line": 9,
                                   "severity": "warning", "category": "correctness",
                                   "message": "m"}
        base.update(fields)
        import orjson
        return orjson.dumps({k: v for k, v in base.items() if v is not None}).decode()

    parsed = parse_answer_line(line(), allowed)
    assert parsed.kind == "finding"
    assert parsed.finding is not None
    assert (parsed.finding.line, parsed.finding.end_line) == (4, 5)  # clamped to the sent lines
    assert parse_answer_line(line(line=7), allowed).kind == "out_of_range"
    assert parse_answer_line(line(path="b.py"), allowed).kind == "out_of_range"
    assert parse_answer_line(line(severity="critical"), allowed).kind == "malformed"
    assert parse_answer_line(line(line="4"), allowed).kind == "malformed"
    assert parse_answer_line(line(line=True), allowed).kind == "malformed"
    assert parse_answer_line(line(message=""), allowed).kind == "malformed"
    assert parse_answer_line(line(suggestion=3), allowed).kind == "malformed"
    assert parse_answer_line('{"summary":"x"}', allowed).kind == "summary"
    assert parse_answer_line("```json", allowed).kind == "malformed"
    assert parse_answer_line("[1, 2]", allowed).kind == "malformed"


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2025, 1, 7, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("Tue, 07 Jan 2025 12:00:05 GMT", now) == 5.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_a_file_larger_than_the_budget_is_split_into_line_ranges() -> None:
    big = SourceFile("big.py", "".join(f"value_{n} = {n}\n" for n in range(1, 1_001)))
    batches = plan_batches([big], max_prompt_tokens=1_000)
    assert len(batches) > 3
    numbers = [n for b in batches for block in b.blocks for n, _ in block.lines]
    assert numbers == list(range(1, 1_001))
    assert all(len(b.prompt()) <= 1_000 * 4 for b in batches)


async def test_an_unreachable_provider_fails_at_once(openai_standin: OpenAIStandin) -> None:
    from scripts.platform import free_port

    gone = OpenAIProvider(settings(openai_standin, base_url=f"http://127.0.0.1:{free_port()}/v1"))
    try:
        with pytest.raises(ProviderError) as info:
            await collect(gone, [USERS])
    finally:
        await gone.close()
    assert info.value.kind == "connection"
    assert "is unreachable" in info.value.message
