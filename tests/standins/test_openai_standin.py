"""The OpenAI stand-in over real HTTP: findings, streaming, errors, faults and control routes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from standins.openai.app import create_app
from standins.openai.config import ConfigError, OpenAIStandinConfig, settings_from_env
from standins.openai.protocol import format_file_block, parse_file_blocks
from tests.helpers.services import serving

KEY = "sk-test-key"
MODEL = "tandem-review-1"
AUTH = {"Authorization": f"Bearer {KEY}"}
REPO_ROOT = Path(__file__).resolve().parents[2]

USERS_PY = [
    (1, "import os"),
    (2, "def f(x=[]):"),
    (3, '    password = "hunter2"'),
    (4, "    try:"),
    (5, "        return eval(x)  # TODO remove"),
    (6, "    except:"),
    (7, '        print("oops")'),
    (40, "# " + "x" * 130),
]
CLEAN_PY = [(10, "x = 1"), (11, "y = x + 1")]
PROMPT = (
    "Review the following code.\n\n"
    + format_file_block("app/users.py", USERS_PY)
    + "\n\n"
    + format_file_block("app/clean.py", CLEAN_PY)
    + "\n"
)

# (path, line, severity, category, message) for PROMPT, in the order the model emits them.
EXPECTED = [
    ("app/users.py", 2, "warning", "correctness", "Mutable default argument"),
    ("app/users.py", 3, "error", "security", "Hard-coded credential"),
    ("app/users.py", 5, "error", "security", "Use of eval on dynamic input"),
    ("app/users.py", 5, "info", "maintainability", "Unresolved TODO comment"),
    (
        "app/users.py",
        6,
        "warning",
        "correctness",
        "Bare except catches SystemExit and KeyboardInterrupt",
    ),
    ("app/users.py", 7, "info", "style", "print() call; use logging"),
    ("app/users.py", 40, "info", "style", "Line is 132 characters long (limit 120)"),
]
SUMMARY = '{"summary":"7 findings in 2 files"}'


@asynccontextmanager
async def running_standin(config: OpenAIStandinConfig) -> AsyncIterator[str]:
    """Serve a fresh app on an ephemeral port; yields its base URL."""
    async with serving(create_app(config)) as url:
        yield url


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_standin(OpenAIStandinConfig(api_key=KEY, chunk_chars=16)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
    ):
        yield http


def chat_body(prompt: str = PROMPT, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are a code reviewer. Answer in JSON Lines."},
            {"role": "user", "content": prompt},
        ],
        "temperature": 0,
        "response_format": {"type": "text"},
        **extra,
    }


def fault(names: str, slow_ms: int | None = None) -> dict[str, str]:
    headers = {"X-Standin-Fault": names}
    if slow_ms is not None:
        headers["X-Standin-Slow-Ms"] = str(slow_ms)
    return headers


async def complete(
    http: httpx.AsyncClient,
    body: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    return await http.post(
        "/v1/chat/completions", json=body or chat_body(), headers={**AUTH, **(headers or {})}
    )


async def content_of(http: httpx.AsyncClient, headers: Mapping[str, str] | None = None) -> str:
    response = await complete(http, headers=headers)
    assert response.status_code == 200, response.text
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


async def stream_events(
    http: httpx.AsyncClient, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> tuple[httpx.Response, list[dict[str, Any]], bool]:
    """All SSE data events of a stream, and whether it ended with [DONE]."""
    events: list[dict[str, Any]] = []
    done = False
    async with http.stream(
        "POST", "/v1/chat/completions", json=body, headers={**AUTH, **(headers or {})}
    ) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                done = True
            else:
                events.append(json.loads(data))
    return response, events, done


def streamed_content(events: list[dict[str, Any]]) -> str:
    return "".join(
        event["choices"][0]["delta"].get("content", "") for event in events if event["choices"]
    )


def as_tuples(content: str) -> list[tuple[Any, ...]]:
    rows = [json.loads(line) for line in content.split("\n")[:-1]]
    return [(r["path"], r["line"], r["severity"], r["category"], r["message"]) for r in rows]


def is_valid_finding(line: str) -> bool:
    try:
        obj = json.loads(line)
    except ValueError:
        return False
    return (
        isinstance(obj, dict)
        and obj.get("severity") in {"info", "warning", "error"}
        and isinstance(obj.get("line"), int)
        and obj["line"] >= 1
    )


async def request_log(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get("/_standin/requests")
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def wait_for_outcome(http: httpx.AsyncClient, outcome: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    log: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        log = await request_log(http)
        if log and log[-1]["outcome"] == outcome:
            return log[-1]
        await asyncio.sleep(0.02)
    raise AssertionError(f"last request never reached {outcome!r}: {log}")


# --- the deterministic model -------------------------------------------------------------


async def test_known_input_yields_exact_findings_and_summary(client: httpx.AsyncClient) -> None:
    content = await content_of(client)
    lines = content.split("\n")
    assert as_tuples(content) == EXPECTED
    assert lines[-1] == SUMMARY
    assert not content.endswith("\n")
    assert lines[2] == (
        '{"path":"app/users.py","line":5,"end_line":5,"severity":"error",'
        '"category":"security","message":"Use of eval on dynamic input",'
        '"suggestion":"Parse the input explicitly, or use ast.literal_eval for Python literals."}'
    )
    # No suggestion key at all for rules without one, rather than null.
    assert "suggestion" not in json.loads(lines[3])


async def test_same_input_gives_byte_identical_answer(client: httpx.AsyncClient) -> None:
    assert await content_of(client) == await content_of(client)


async def test_code_without_problems_has_only_a_summary(client: httpx.AsyncClient) -> None:
    prompt = format_file_block("ok.py", [(1, "x = 1")])
    response = await complete(client, chat_body(prompt))
    assert response.json()["choices"][0]["message"]["content"] == (
        '{"summary":"0 findings in 1 file"}'
    )


async def test_only_the_last_user_message_is_reviewed_and_parts_are_joined(
    client: httpx.AsyncClient,
) -> None:
    lines = PROMPT.split("\n")
    parts = [
        {"type": "text", "text": "\n".join(lines[:5])},
        {"type": "image_url", "image_url": {"url": "data:,"}},
        {"type": "text", "text": "\n".join(lines[5:])},
    ]
    body = chat_body("### FILE: old.py\n1| eval(x)")
    body["messages"] += [
        {"role": "assistant", "content": "noted"},
        {"role": "user", "content": parts},
    ]
    response = await complete(client, body)
    content = response.json()["choices"][0]["message"]["content"]
    assert as_tuples(content) == EXPECTED
    assert content.split("\n")[-1] == SUMMARY


def test_parser_reads_non_contiguous_lines_and_ignores_prose() -> None:
    text = "intro\n```\n### FILE: a.py\n  3| x\n 17| \n99|\nnot a line\n### FILE: b/c.py\n1| y\n```"
    blocks = parse_file_blocks(text)
    assert [(b.path, [(ln.number, ln.text) for ln in b.lines]) for b in blocks] == [
        ("a.py", [(3, "x"), (17, ""), (99, "")]),
        ("b/c.py", [(1, "y")]),
    ]


# --- non-stream and stream ------------------------------------------------------------------


async def test_non_stream_completion_has_openai_shape(client: httpx.AsyncClient) -> None:
    response = await complete(client)
    body = response.json()
    assert response.headers["content-type"].startswith("application/json")
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == MODEL
    assert isinstance(body["created"], int)
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    usage = body["usage"]
    assert usage["completion_tokens"] == -(-len(choice["message"]["content"]) // 4)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_stream_delivers_same_content_split_across_chunks(
    client: httpx.AsyncClient,
) -> None:
    expected = await content_of(client)
    response, events, done = await stream_events(client, chat_body(stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert done
    assert streamed_content(events) == expected
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    assert len({e["id"] for e in events}) == 1
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [e["choices"][0]["finish_reason"] for e in events][-1] == "stop"
    assert all(e["choices"][0]["finish_reason"] is None for e in events[:-1])
    assert not any("usage" in e for e in events)
    pieces = [e["choices"][0]["delta"].get("content", "") for e in events]
    # Lines are longer than a chunk, and some chunk ends one line and starts the next: a
    # client that assumes one JSON line per chunk would break on this stream.
    assert all(len(p) <= 16 for p in pieces)
    assert min(len(line) for line in expected.split("\n")) > 16
    assert any("\n" in p[:-1] for p in pieces)


async def test_stream_with_include_usage_ends_with_usage_chunk(client: httpx.AsyncClient) -> None:
    plain = (await complete(client)).json()
    body = chat_body(stream=True, stream_options={"include_usage": True})
    _, events, done = await stream_events(client, body)
    assert done
    last = events[-1]
    assert last["choices"] == []
    assert last["usage"] == plain["usage"]
    assert all(e["usage"] is None for e in events[:-1])


async def test_max_tokens_truncates_with_finish_reason_length(client: httpx.AsyncClient) -> None:
    response = await complete(client, chat_body(max_tokens=10))
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert len(choice["message"]["content"]) == 40
    assert response.json()["usage"]["completion_tokens"] == 10

    _, events, _ = await stream_events(client, chat_body(stream=True, max_completion_tokens=10))
    assert streamed_content(events) == choice["message"]["content"]
    assert events[-1]["choices"][0]["finish_reason"] == "length"


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk-wrong-key-123456"}])
async def test_missing_or_wrong_key_is_401_invalid_api_key(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post("/v1/chat/completions", json=chat_body(), headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_api_key"
    assert error["param"] is None
    assert "sk-wrong-key-123456" not in error["message"]
    assert (await client.get("/v1/models", headers=headers)).status_code == 401


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model", "missing_required_parameter"),
        ({"model": MODEL}, "messages", "missing_required_parameter"),
        ({"model": MODEL, "messages": []}, "messages", "empty_array"),
        (
            {"model": MODEL, "messages": [{"role": "bot", "content": "x"}]},
            "messages[0].role",
            "invalid_value",
        ),
        ({**chat_body(), "stream": "yes"}, "stream", "invalid_type"),
        (
            {**chat_body(), "stream_options": {"include_usage": True}},
            "stream_options",
            "invalid_value",
        ),
        ({**chat_body(), "max_tokens": 0}, "max_tokens", "integer_below_min_value"),
        ({**chat_body(), "temperature": 3}, "temperature", "invalid_value"),
    ],
)
async def test_invalid_body_is_400_with_openai_error(
    client: httpx.AsyncClient, body: dict[str, Any], param: str, code: str
) -> None:
    response = await complete(client, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
async def test_unparseable_body_is_400_not_500(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post("/v1/chat/completions", content=raw, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_unknown_model_is_404_model_not_found(client: httpx.AsyncClient) -> None:
    response = await complete(client, {**chat_body(), "model": "gpt-nope"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


async def test_models_lists_the_configured_model(client: httpx.AsyncClient) -> None:
    listing = (await client.get("/v1/models", headers=AUTH)).json()
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == [MODEL]
    assert (await client.get(f"/v1/models/{MODEL}", headers=AUTH)).json()["id"] == MODEL
    missing = await client.get("/v1/models/gpt-nope", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


async def test_unknown_route_is_openai_style_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/completions", json={})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (POST /v1/completions)"


async def test_prompt_over_context_limit_is_context_length_exceeded() -> None:
    config = OpenAIStandinConfig(api_key=KEY, context_limit_tokens=100)
    async with (
        running_standin(config) as base_url,
        httpx.AsyncClient(base_url=base_url) as http,
    ):
        ok = await complete(http, chat_body("x" * 300))
        assert ok.status_code == 200
        response = await complete(http, chat_body("x" * 500))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "messages"
    assert "maximum context length is 100 tokens" in error["message"]


# --- faults ----------------------------------------------------------------------------------


async def test_rate_limit_fault_is_429_with_retry_after(client: httpx.AsyncClient) -> None:
    response = await complete(client, headers=fault("rate_limit"))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    # Per-request faults do not leak into the next request.
    assert (await complete(client)).status_code == 200


async def test_server_error_fault_is_500_with_error_body(client: httpx.AsyncClient) -> None:
    response = await complete(client, headers=fault("server_error"))
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"


async def test_slow_fault_delays_first_byte_and_every_chunk(client: httpx.AsyncClient) -> None:
    prompt = format_file_block("ok.py", [(1, "x = 1")])  # a short answer: a few chunks
    headers = fault("slow", slow_ms=150)

    started = time.monotonic()
    assert (await complete(client, chat_body(prompt), headers)).status_code == 200
    assert time.monotonic() - started >= 0.15

    started = time.monotonic()
    _, events, done = await stream_events(client, chat_body(prompt, stream=True), headers)
    assert done
    # one delay before the first byte and one between each pair of chunks
    assert time.monotonic() - started >= 0.15 * len(events)


async def test_malformed_fault_mixes_broken_lines_with_the_valid_findings(
    client: httpx.AsyncClient,
) -> None:
    clean = (await content_of(client)).split("\n")
    noisy = (await content_of(client, headers=fault("malformed"))).split("\n")
    assert [line for line in noisy if is_valid_finding(line)] == clean[:-1]
    assert SUMMARY in noisy
    unparseable = [line for line in noisy if not line.startswith("{") or not _is_json(line)]
    assert "Here is my review of the code." in unparseable
    assert any(line.startswith('{"path"') for line in unparseable)  # the cut-off object
    # and one well-formed object that is still not a finding
    assert any(_is_json(line) and not is_valid_finding(line) for line in noisy if line != SUMMARY)


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


async def test_out_of_range_fault_adds_a_finding_past_the_input(
    client: httpx.AsyncClient,
) -> None:
    content = await content_of(client, headers=fault("out_of_range"))
    rows = as_tuples(content)
    assert rows[:-1] == EXPECTED
    path, line, *_ = rows[-1]
    assert path == "app/users.py"
    assert line not in {n for n, _ in USERS_PY}
    assert line > max(n for n, _ in USERS_PY)
    assert content.split("\n")[-1] == '{"summary":"8 findings in 2 files"}'
    assert as_tuples(await content_of(client)) == EXPECTED


async def test_disconnect_fault_drops_stream_mid_way(client: httpx.AsyncClient) -> None:
    expected = await content_of(client)
    received: list[str] = []

    async def read_stream() -> None:
        async with client.stream(
            "POST",
            "/v1/chat/completions",
            json=chat_body(stream=True),
            headers={**AUTH, **fault("disconnect")},
        ) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    event = json.loads(line.removeprefix("data: "))
                    received.append(event["choices"][0]["delta"].get("content", ""))

    with pytest.raises(httpx.RemoteProtocolError):
        await read_stream()
    partial = "".join(received)
    assert partial
    assert expected.startswith(partial)
    assert len(partial) < len(expected)
    assert (await wait_for_outcome(client, "dropped"))["faults"] == ["disconnect"]


async def test_disconnect_fault_without_stream_sends_no_response(
    client: httpx.AsyncClient,
) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await complete(client, headers=fault("disconnect"))


async def test_unknown_fault_name_in_header_is_400(client: httpx.AsyncClient) -> None:
    response = await complete(client, headers=fault("slow,explode"))
    assert response.status_code == 400
    assert "explode" in response.json()["error"]["message"]


async def test_control_route_fault_applies_to_next_n_requests_only(
    client: httpx.AsyncClient,
) -> None:
    set_response = await client.post(
        "/_standin/faults", json={"faults": ["rate_limit"], "times": 2}
    )
    assert set_response.json() == {"faults": ["rate_limit"], "times": 2, "slow_ms": None}
    statuses = [(await complete(client)).status_code for _ in range(3)]
    assert statuses == [429, 429, 200]
    assert (await client.get("/_standin/faults")).json()["faults"] == []


async def test_control_route_fault_lasts_until_deleted(client: httpx.AsyncClient) -> None:
    await client.post("/_standin/faults", json={"faults": ["server_error"]})
    assert [(await complete(client)).status_code for _ in range(3)] == [500, 500, 500]
    assert (await client.delete("/_standin/faults")).status_code == 204
    assert (await complete(client)).status_code == 200


async def test_control_route_and_header_faults_combine(client: httpx.AsyncClient) -> None:
    await client.post("/_standin/faults", json={"faults": ["slow"], "slow_ms": 100, "times": 1})
    started = time.monotonic()
    response = await complete(client, headers=fault("out_of_range"))
    assert time.monotonic() - started >= 0.1
    assert response.json()["choices"][0]["message"]["content"].endswith('"8 findings in 2 files"}')
    assert (await request_log(client))[-1]["faults"] == ["out_of_range", "slow"]


@pytest.mark.parametrize(
    "body",
    [
        {"faults": ["nope"]},
        {"faults": "rate_limit"},
        {"faults": ["slow"], "times": 0},
        {"faults": ["slow"], "slow_ms": -5},
    ],
)
async def test_control_route_rejects_bad_fault_spec(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/_standin/faults", json=body)
    assert response.status_code == 400
    assert (await client.get("/_standin/faults")).json()["faults"] == []


async def test_rejected_requests_do_not_use_up_fault_times(client: httpx.AsyncClient) -> None:
    await client.post("/_standin/faults", json={"faults": ["rate_limit"], "times": 1})
    assert (await complete(client, {**chat_body(), "model": "gpt-nope"})).status_code == 404
    assert (await complete(client)).status_code == 429


# --- request log -----------------------------------------------------------------------------


async def test_request_log_records_each_attempt(client: httpx.AsyncClient) -> None:
    await client.post("/_standin/faults", json={"faults": ["rate_limit"], "times": 1})
    await complete(client)
    await complete(client, chat_body(stream=True))
    await client.post("/v1/chat/completions", json=chat_body())
    log = await request_log(client)
    assert [(r["status"], r["outcome"], r["stream"], r["faults"]) for r in log] == [
        (429, "rejected", False, ["rate_limit"]),
        (200, "completed", True, []),
        (401, "rejected", None, []),
    ]
    assert log[0]["model"] == MODEL
    assert log[0]["message_count"] == 2
    assert log[0]["message_chars"] == [len(m["content"]) for m in chat_body()["messages"]]
    assert log[0]["error_code"] == "rate_limit_exceeded"
    assert [r["seq"] for r in log] == [1, 2, 3]

    assert (await client.delete("/_standin/requests")).status_code == 204
    assert await request_log(client) == []


async def test_request_log_shows_a_client_that_gave_up_mid_stream(
    client: httpx.AsyncClient,
) -> None:
    async with client.stream(
        "POST",
        "/v1/chat/completions",
        json=chat_body(stream=True),
        headers={**AUTH, **fault("slow", slow_ms=50)},
    ) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                break  # leaving the block closes the connection, as a cancelled job would
    record = await wait_for_outcome(client, "client_disconnected")
    assert 1 <= record["chunks_sent"] < 10


async def test_health_needs_no_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/_standin/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


# --- configuration -------------------------------------------------------------------------


def test_env_defaults_and_overrides() -> None:
    defaults = settings_from_env({})
    assert (defaults.host, defaults.port) == ("127.0.0.1", 9901)
    assert (defaults.app.api_key, defaults.app.model) == ("sk-tandem-local", MODEL)
    custom = settings_from_env(
        {"OPENAI_STANDIN_PORT": "9999", "OPENAI_MODEL": "m", "OPENAI_API_KEY": ""}
    )
    assert (custom.port, custom.app.model, custom.app.api_key) == (9999, "m", "sk-tandem-local")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"OPENAI_STANDIN_PORT": "http"}, "OPENAI_STANDIN_PORT"),
        ({"OPENAI_STANDIN_PORT": "70000"}, "OPENAI_STANDIN_PORT"),
        ({"OPENAI_MODEL": "two words"}, "OPENAI_MODEL"),
        ({"OPENAI_STANDIN_CHUNK_CHARS": "0"}, "OPENAI_STANDIN_CHUNK_CHARS"),
    ],
)
def test_invalid_env_names_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        settings_from_env(env)


def test_main_exits_with_one_line_naming_the_bad_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "standins.openai"],
        env={"OPENAI_STANDIN_PORT": "not-a-port", "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0
    assert "OPENAI_STANDIN_PORT" in result.stderr
