"""AI review through the gateway: jobs over HTTP, findings live on the events socket, limits."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bench.realtime_scenarios import DocClient, EventsClient
from scripts.platform import LocalPlatform
from tests.helpers.identity import SignedIn, sign_in_http

pytestmark = pytest.mark.e2e

REPO = "tandem-demo/hello-api"
JOB_FIELDS = {"job_id", "status", "provider", "model", "kind", "session_id", "review_id", "paths",
              "findings", "summary", "files_reviewed", "files_reused", "requested_by",
              "created_at", "started_at", "finished_at"}
FINDING_FIELDS = {"path", "line", "end_line", "severity", "category", "message"}


@dataclass
class Crew:
    """A Python session with an editor, a viewer, an outsider, and PR #1 imported."""

    url: str
    openai: str
    owner: SignedIn
    editor: SignedIn
    viewer: SignedIn
    stranger: SignedIn
    session_id: str
    review_id: str

    def call(self, method: str, path: str, user: SignedIn, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.url + path, headers=user.headers, timeout=30, **kwargs)

    def review_job(self, user: SignedIn, **body: Any) -> httpx.Response:
        return self.call("POST", f"/api/v1/reviews/{self.review_id}/ai", user, json=body)

    def document_job(self, user: SignedIn, **body: Any) -> httpx.Response:
        return self.call("POST", f"/api/v1/sessions/{self.session_id}/ai", user, json=body)

    def job(self, job_id: str, user: SignedIn | None = None) -> httpx.Response:
        return self.call("GET", f"/api/v1/ai/jobs/{job_id}", user or self.viewer)

    def finished(self, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            reply = self.job(job_id)
            assert reply.status_code == 200, reply.text
            body: dict[str, Any] = reply.json()
            if body["status"] in ("done", "failed", "cancelled"):
                return body
            assert time.monotonic() < deadline, body
            time.sleep(0.1)


def _join(url: str, session_id: str, owner: SignedIn, user: SignedIn, role: str) -> None:
    invited = httpx.post(f"{url}/api/v1/sessions/{session_id}/invitations",
                         json={"role": role}, headers=owner.headers, timeout=10)
    assert invited.status_code == 201, invited.text
    accepted = httpx.post(f"{url}/api/v1/invitations/accept",
                          json={"token": invited.json()["token"]}, headers=user.headers, timeout=10)
    assert accepted.status_code == 200, accepted.text


@pytest.fixture(scope="module")
def crew(platform: LocalPlatform) -> Crew:
    url = platform.url
    owner, editor, viewer, stranger = [sign_in_http(url, f"{name}-{secrets.token_hex(3)}")
                                       for name in ("owner", "editor", "viewer", "stranger")]
    session = httpx.post(f"{url}/api/v1/sessions", json={"title": "AI", "language": "python"},
                         headers=owner.headers, timeout=10)
    assert session.status_code == 201, session.text
    session_id = session.json()["id"]
    _join(url, session_id, owner, editor, "editor")
    _join(url, session_id, owner, viewer, "viewer")
    review = httpx.post(f"{url}/api/v1/sessions/{session_id}/reviews",
                        json={"repo": REPO, "pull_number": 1}, headers=editor.headers,
                        timeout=30)
    assert review.status_code == 201, review.text
    return Crew(url, f"http://127.0.0.1:{platform.ports.openai}", owner, editor, viewer, stranger,
                session_id, review.json()["id"])


@pytest.fixture
def calm_openai(crew: Crew) -> Iterator[None]:
    """Faults set on the shared OpenAI stand-in are cleared whatever the test's outcome."""
    yield
    assert httpx.delete(crew.openai + "/_standin/faults").status_code == 204


async def test_a_review_job_streams_findings_to_the_room_and_reads_back(crew: Crew) -> None:
    room = await EventsClient.connect(crew.url, crew.session_id, crew.viewer.access_token)
    try:
        reply = await asyncio.to_thread(crew.review_job, crew.editor)
        assert reply.status_code == 202, reply.text
        accepted = reply.json()
        assert set(accepted) == {"job_id", "status"}
        assert accepted["status"] == "queued"
        assert reply.headers["Location"] == f"/api/v1/ai/jobs/{accepted['job_id']}"
        job_id = accepted["job_id"]
        done = await room.wait_type("ai.done", 30, lambda e: e["job_id"] == job_id)
        job = await asyncio.to_thread(crew.finished, job_id)
    finally:
        await room.close()
    assert job["status"] == "done", job
    assert set(job) == JOB_FIELDS
    assert (job["kind"], job["provider"], job["review_id"]) == ("review", "builtin", crew.review_id)
    assert job["findings"]
    for finding in job["findings"]:
        assert FINDING_FIELDS <= set(finding) <= FINDING_FIELDS | {"suggestion"}
        assert finding["severity"] in ("info", "warning", "error")
    lines = {(f["path"], f["line"]) for f in job["findings"]}
    assert {("app/users.py", 52), ("app/users.py", 98), ("app/users.py", 9)} <= lines

    streamed = [e for e in room.of_type("ai.finding") if e["job_id"] == job_id]
    assert [e["finding"] for e in streamed] == job["findings"]
    assert all(e["session_id"] == crew.session_id and "seq" not in e for e in streamed)
    assert done["seq"] > 0
    assert done["summary"] == job["summary"]
    assert done["findings_count"] == len(job["findings"])
    assert room.received.index(done) > room.received.index(streamed[-1])


async def test_the_live_document_is_reviewed_at_its_current_text(crew: Crew) -> None:
    doc = await DocClient.connect(crew.url, crew.session_id, crew.editor.access_token)
    try:
        await asyncio.wait_for(doc.synced.wait(), 10)
        await doc.insert(0, "import os\n\n\ndef run(cmd):\n    return eval(cmd)\n")
    finally:
        await doc.close()

    async def text() -> str:
        reply = await asyncio.to_thread(crew.call, "GET",
                                        f"/api/v1/sessions/{crew.session_id}/document",
                                        crew.viewer)
        return str(reply.json()["text"])

    deadline = time.monotonic() + 10
    while "eval" not in await text():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    reply = await asyncio.to_thread(crew.document_job, crew.editor)
    assert reply.status_code == 202, reply.text
    job = await asyncio.to_thread(crew.finished, reply.json()["job_id"])
    assert job["status"] == "done", job
    assert job["kind"] == "document"
    assert job["review_id"] is None
    found = {(f["path"], f["line"], f["category"]) for f in job["findings"]}
    assert ("document.py", 1, "maintainability") in found  # unused import
    assert ("document.py", 5, "security") in found  # eval


def test_roles_and_membership_decide_who_may_ask_and_read(crew: Crew) -> None:
    for call in (crew.review_job, crew.document_job):
        denied = call(crew.viewer)
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "permission_denied"
        hidden = call(crew.stranger)
        assert hidden.status_code == 404
        assert hidden.json()["error"]["code"] == "not_found"
    job = crew.finished(crew.review_job(crew.editor, paths=["app/config.py"]).json()["job_id"])
    assert job["paths"] == ["app/config.py"]
    assert crew.job(job["job_id"], crew.stranger).status_code == 404
    assert crew.job(job["job_id"], crew.owner).status_code == 200
    assert crew.job("not-a-uuid").status_code == 404
    assert crew.call("POST", f"/api/v1/ai/jobs/{job['job_id']}/cancel", crew.editor).status_code == 409


def test_bad_requests_name_the_field(crew: Crew) -> None:
    unknown = crew.review_job(crew.editor, provider="gpt-magic")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["details"][0]["field"] == "provider"
    not_a_list = crew.review_job(crew.editor, paths="app/users.py")
    assert not_a_list.status_code == 400
    assert not_a_list.json()["error"]["details"][0]["field"] == "paths"
    outside = crew.review_job(crew.editor, paths=["app/nope.py"])
    assert outside.status_code == 400
    assert outside.json()["error"]["details"][0]["field"] == "paths.0"
    missing = crew.call("POST", "/api/v1/reviews/00000000-0000-4000-8000-000000000000/ai",
                        crew.editor, json={})
    assert missing.status_code == 404


def test_the_per_user_limit_answers_429_and_cancel_stops_jobs(crew: Crew, calm_openai: None) -> None:
    slow = httpx.post(crew.openai + "/_standin/faults",
                      json={"faults": ["slow"], "slow_ms": 30_000}, timeout=5)
    assert slow.status_code == 200
    jobs = [crew.review_job(crew.owner, provider="openai") for _ in range(3)]
    assert [r.status_code for r in jobs] == [202, 202, 202]
    limited = crew.review_job(crew.owner, provider="openai")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert limited.headers["Retry-After"] == "5"
    # Others are not held back by one user's queue.
    assert crew.document_job(crew.editor).status_code == 202

    for reply in jobs:
        job_id = reply.json()["job_id"]
        cancelled = crew.call("POST", f"/api/v1/ai/jobs/{job_id}/cancel", crew.owner)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["error"] == "cancelled"
    assert crew.review_job(crew.owner).status_code == 202


def test_the_openapi_document_lists_the_ai_routes(crew: Crew) -> None:
    paths = httpx.get(crew.url + "/openapi.json", timeout=10).json()["paths"]
    assert "post" in paths["/api/v1/reviews/{id}/ai"]
    assert "202" in paths["/api/v1/reviews/{id}/ai"]["post"]["responses"]
    assert "post" in paths["/api/v1/sessions/{id}/ai"]
    assert "get" in paths["/api/v1/ai/jobs/{job_id}"]
    assert "post" in paths["/api/v1/ai/jobs/{job_id}/cancel"]
