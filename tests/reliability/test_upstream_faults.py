"""GitHub slow or failing: imports fail cleanly with 503 and store nothing. The LLM provider
failing: its jobs fail with a reason, and nothing else is affected."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.realtime_scenarios import DocClient, EventsClient
from tests.helpers.identity import SignedIn
from tests.helpers.realtime import Crew
from tests.reliability.support import FaultyWorld, aget, assert_error, poll

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = "tandem-demo/hello-api"
# Bound on a failed import: (1 + GITHUB_RETRIES) attempts of GITHUB_TIMEOUT_SECONDS (both set
# low in conftest.WORLD_ENV) with backoff, far below the gateway's 30 s deadline for
# GitHub-bound calls.
IMPORT_FAILS_WITHIN = 10.0


@pytest.fixture
def github(world: FaultyWorld) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{world.platform.ports.github}", timeout=10) as client:
        yield client
        assert client.delete("/_standin/faults").status_code in (200, 204)


@pytest.fixture
def openai(world: FaultyWorld) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{world.platform.ports.openai}", timeout=10) as client:
        yield client
        assert client.delete("/_standin/faults").status_code in (200, 204)


def _reviews(crew: Crew, session_id: str) -> list[dict[str, Any]]:
    reply = crew.call("GET", f"/api/v1/sessions/{session_id}/reviews")
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


def _import(crew: Crew, session_id: str) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    reply = crew.call("POST", f"/api/v1/sessions/{session_id}/reviews",
                      json={"repo": REPO, "pull_number": 1})
    return reply, time.monotonic() - start


@pytest.mark.parametrize("fault", [
    pytest.param({"latency_ms": 2500}, id="slower-than-the-timeout"),
    pytest.param({"status": 500}, id="server-errors"),
    pytest.param({"status": 502}, id="bad-gateway"),
    # One call succeeds, the next is refused: the import fails half-way through.
    pytest.param({"rate_limit_remaining": 1}, id="fails-half-way"),
])
def test_a_github_failure_fails_the_import_cleanly_and_stores_nothing(
        world: FaultyWorld, github: httpx.Client, fault: dict[str, Any]) -> None:
    # New people: no GitHub answers cached for them (a 304 costs no rate limit).
    crew = Crew.sign_in(world.url)
    session_id = crew.session(viewer=False)
    assert github.post("/_standin/faults", json=fault).status_code == 200
    reply, seconds = _import(crew, session_id)
    assert_error(reply, 503, "unavailable")
    assert reply.headers.get("Retry-After"), reply.headers
    assert seconds < IMPORT_FAILS_WITHIN
    # Nothing else is affected meanwhile: GitHub is not part of readiness, chat works.
    assert httpx.get(world.url + "/ready", timeout=5).status_code == 200
    chat = crew.call("POST", f"/api/v1/sessions/{session_id}/messages", json={"body": "still here"})
    assert chat.status_code == 201, chat.text

    assert github.delete("/_standin/faults").status_code in (200, 204)
    # Nothing half-imported: no review, and no review event in the session's log.
    assert _reviews(crew, session_id) == []
    events = crew.call("GET", f"/api/v1/sessions/{session_id}/messages")
    assert [m["body"] for m in events.json()["items"]] == ["still here"]
    # GitHub back: the same import now succeeds, once.
    again, _ = _import(crew, session_id)
    assert again.status_code == 201, again.text
    assert [r["id"] for r in _reviews(crew, session_id)] == [again.json()["id"]]


async def _document_with(world: FaultyWorld, crew: Crew, session_id: str, code: str) -> None:
    """Type `code` into the session's shared document and wait until it is stored."""
    doc = await DocClient.connect(world.url, session_id, crew.editor.access_token)
    try:
        await asyncio.wait_for(doc.synced.wait(), 10)
        await doc.insert(0, code)
    finally:
        await doc.close()

    def stored() -> bool | None:
        return True if code in crew.document(session_id)["text"] else None

    await asyncio.to_thread(poll, stored, 10, "document stored")


@pytest.mark.parametrize("fault", [
    pytest.param({"faults": ["server_error"]}, id="server-errors"),
    pytest.param({"faults": ["slow"], "slow_ms": 3000}, id="slower-than-the-timeout"),
    pytest.param({"faults": ["rate_limit"]}, id="rate-limited"),
    pytest.param({"faults": ["disconnect"]}, id="cut-mid-stream"),
])
async def test_a_failing_llm_fails_its_jobs_with_a_reason_and_nothing_else(
        world: FaultyWorld, openai: httpx.Client, fault: dict[str, Any]) -> None:
    crew = await asyncio.to_thread(Crew.sign_in, world.url)
    session_id = await asyncio.to_thread(crew.session)
    # Code never reviewed before: results are cached per file content, and a cached
    # result would not call the provider at all.
    code = f"import os\n\n\ndef run_{uuid.uuid4().hex}(cmd):\n    return eval(cmd)\n"
    await _document_with(world, crew, session_id, code)
    room = await EventsClient.connect(world.url, session_id, crew.viewer.access_token)

    def ask(user: SignedIn, provider: str) -> str:
        reply = crew.call("POST", f"/api/v1/sessions/{session_id}/ai", user,
                          json={"provider": provider})
        assert reply.status_code == 202, reply.text
        job_id: str = reply.json()["job_id"]
        return job_id

    try:
        faulted = await asyncio.to_thread(openai.post, "/_standin/faults", json=fault)
        assert faulted.status_code == 200
        failing_id = await asyncio.to_thread(ask, crew.editor, "openai")
        # The built-in analyzer needs no provider: its job completes meanwhile.
        builtin_id = await asyncio.to_thread(ask, crew.owner, "builtin")

        failed = await room.wait_type("ai.failed", timeout=30,
                                      where=lambda e: e["job_id"] == failing_id)
        assert failed["status"] == "failed"
        assert failed["error"]
        await room.wait_type("ai.done", timeout=30, where=lambda e: e["job_id"] == builtin_id)

        job = (await asyncio.to_thread(crew.call, "GET", f"/api/v1/ai/jobs/{failing_id}")).json()
        assert job["status"] == "failed"
        assert job["error"] == failed["error"]
        assert "internal error" not in job["error"]
        assert job["findings"] == []
        # Nothing else is affected: readiness, chat, the document.
        assert (await aget(world.url + "/ready")).status_code == 200
        ack = await room.chat("the room still talks")
        assert ack["seq"] > failed["seq"]
        assert code in (await asyncio.to_thread(crew.document, session_id))["text"]
    finally:
        await room.close()

    # The provider back: a new job with it finishes.
    cleared = await asyncio.to_thread(openai.delete, "/_standin/faults")
    assert cleared.status_code in (200, 204)
    retry_id = await asyncio.to_thread(ask, crew.editor, "openai")

    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = crew.call("GET", f"/api/v1/ai/jobs/{retry_id}").json()
        return body if body["status"] in ("done", "failed") else None

    done, _ = await asyncio.to_thread(poll, finished, 30, "openai job after the fault")
    assert done["status"] == "done", done
