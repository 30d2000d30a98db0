"""One service killed and restarted: only the routes that need it fail (503), /ready names it,
everything else keeps working, and it is back without restarting anything else."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bench.realtime_scenarios import EventsClient
from tests.helpers.identity import sign_in_http
from tests.helpers.realtime import Crew
from tests.reliability.support import FaultyWorld, aget, assert_error, poll, ready_check, wait_all_ready

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = "tandem-demo/hello-api"
# The gateway's deadline on a gRPC call (GRPC_DEADLINE_SECONDS' default): a call to a dead
# service that took this long waited for it instead of failing fast.
GRPC_DEADLINE = 5.0


@dataclass(frozen=True)
class Probe:
    """One request, the services it needs, and its answer when they all run.

    `cached`: services whose answers the caller caches briefly (the gateway's JWKS and its
    30 s cache of user profiles, the review service's membership cache of
    REVIEW_MEMBERSHIP_CACHE_SECONDS): while one of them is down the probe may still
    succeed, or fail cleanly with 503.
    """

    name: str
    method: str
    path: str
    needs: frozenset[str]
    ok: int
    body: dict[str, Any] | None = None
    cached: frozenset[str] = frozenset()


@dataclass
class Stage:
    crew: Crew
    session_id: str
    review_id: str
    job_id: str

    def probes(self) -> list[Probe]:
        s, r, j = self.session_id, self.review_id, self.job_id
        auth, sessions, review, ai = "auth", "sessions", "review", "ai"
        return [
            Probe("profile", "GET", "/api/v1/me", frozenset({auth}), 200),
            Probe("jwks", "GET", "/.well-known/jwks.json", frozenset(), 200,
                  cached=frozenset({auth})),
            Probe("session", "GET", f"/api/v1/sessions/{s}", frozenset({sessions}), 200),
            Probe("sessions list", "GET", "/api/v1/sessions", frozenset({sessions}), 200),
            Probe("rename", "PATCH", f"/api/v1/sessions/{s}", frozenset({sessions}), 200,
                  {"description": "still here"}),
            Probe("document", "GET", f"/api/v1/sessions/{s}/document", frozenset({sessions}), 200),
            # Member and author profiles come from auth (through the gateway's profile cache).
            Probe("members", "GET", f"/api/v1/sessions/{s}/members", frozenset({sessions}), 200,
                  cached=frozenset({auth})),
            Probe("history", "GET", f"/api/v1/sessions/{s}/messages", frozenset({sessions}), 200,
                  cached=frozenset({auth})),
            # Review checks membership with sessions (and caches the answer for a few seconds).
            Probe("review", "GET", f"/api/v1/reviews/{r}", frozenset({review}), 200,
                  cached=frozenset({sessions})),
            Probe("reviews", "GET", f"/api/v1/sessions/{s}/reviews", frozenset({review}), 200,
                  cached=frozenset({sessions})),
            Probe("threads", "GET", f"/api/v1/reviews/{r}/threads", frozenset({review}), 200,
                  cached=frozenset({sessions})),
            # AI reads the job's session membership from sessions.
            Probe("job", "GET", f"/api/v1/ai/jobs/{j}", frozenset({ai, sessions}), 200),
        ]


@pytest.fixture(scope="module")
def stage(world: FaultyWorld) -> Stage:
    crew = Crew.sign_in(world.url)
    session_id = crew.session()
    imported = crew.call("POST", f"/api/v1/sessions/{session_id}/reviews",
                         json={"repo": REPO, "pull_number": 1})
    assert imported.status_code == 201, imported.text
    review_id = imported.json()["id"]
    # History with a message: listing it needs its author's profile from auth.
    said = crew.call("POST", f"/api/v1/sessions/{session_id}/messages", json={"body": "hello"})
    assert said.status_code == 201, said.text
    job = crew.call("POST", f"/api/v1/reviews/{review_id}/ai", json={})
    assert job.status_code == 202, job.text
    return Stage(crew, session_id, review_id, job.json()["job_id"])


def _ask(api: httpx.Client, probe: Probe) -> httpx.Response:
    return api.request(probe.method, probe.path, json=probe.body)


@pytest.mark.parametrize("victim", ["auth", "sessions", "review", "ai"])
async def test_a_killed_service_fails_only_its_routes_and_comes_back(
        world: FaultyWorld, stage: Stage, victim: str) -> None:
    url = world.url
    await asyncio.to_thread(wait_all_ready, url, 30)
    probes = stage.probes()
    headers = stage.crew.owner.headers
    with httpx.Client(base_url=url, headers=headers, timeout=10) as api:
        for probe in probes:
            reply = _ask(api, probe)
            assert reply.status_code == probe.ok, (probe.name, reply.text)

    # A live client of the events socket, connected before the kill.
    live = None
    if victim != "sessions":
        live = await EventsClient.connect(url, stage.session_id, stage.crew.editor.access_token)
    try:
        code = await asyncio.to_thread(world.platform.stop, victim, signal.SIGKILL)
        assert code == -signal.SIGKILL
        body, _ = await asyncio.to_thread(poll, ready_check(url, victim, "down"), 5,
                                             f"/ready names {victim}")
        assert body["checks"][victim]["reason"]
        assert {n for n, c in body["checks"].items() if c["status"] == "down"} == {victim}
        assert (await aget(url + "/health")).status_code == 200

        with httpx.Client(base_url=url, headers=headers, timeout=10) as api:
            for probe in probes:
                start = time.monotonic()
                reply = await asyncio.to_thread(_ask, api, probe)
                if victim in probe.needs or (victim in probe.cached and reply.status_code != probe.ok):
                    error = assert_error(reply, 503, "unavailable")
                    assert reply.headers.get("Retry-After"), probe.name
                    # Refused at once, not after waiting out the gateway's deadline.
                    assert time.monotonic() - start < GRPC_DEADLINE, probe.name
                    assert error["message"], probe.name
                else:
                    assert reply.status_code == probe.ok, (victim, probe.name, reply.text)

        if live is not None:
            # Realtime chat needs only sessions: it keeps flowing on the open socket.
            ack = await live.chat(f"while {victim} is down")
            await live.wait_type("chat.message", where=lambda e: e["seq"] == ack["seq"])
    finally:
        if victim not in world.platform.procs:
            await asyncio.to_thread(world.platform.start, [victim])
        await asyncio.to_thread(wait_all_ready, url, 30)
        if live is not None:
            await live.close()
    # Back without restarting the gateway or any other process. Other services' channels to
    # the restarted one reconnect within their backoff (at most 2 s), so allow a few seconds.
    with httpx.Client(base_url=url, headers=headers, timeout=10) as api:
        for probe in probes:
            def answered(probe: Probe = probe) -> httpx.Response | None:
                reply = _ask(api, probe)
                return reply if reply.status_code == probe.ok else None
            await asyncio.to_thread(poll, answered, 5, f"{probe.name} after {victim} returned")


async def test_a_message_posted_while_auth_is_down_is_acknowledged(
        world: FaultyWorld, stage: Stage) -> None:
    url = world.url
    await asyncio.to_thread(wait_all_ready, url, 30)
    # Someone whose profile the gateway has not cached yet (its cache lasts 30 s).
    newcomer = await asyncio.to_thread(sign_in_http, url, f"newcomer-{uuid.uuid4().hex[:6]}")
    with httpx.Client(base_url=url, timeout=10) as api:
        await asyncio.to_thread(stage.crew.join, api, stage.session_id, newcomer, "editor")
    await asyncio.to_thread(world.platform.stop, "auth", signal.SIGKILL)
    try:
        await asyncio.to_thread(poll, ready_check(url, "auth", "down"), 5, "/ready names auth")
        reply = await asyncio.to_thread(
            stage.crew.call, "POST", f"/api/v1/sessions/{stage.session_id}/messages", newcomer,
            json={"body": "said while auth is down", "client_id": "auth-down"})
        stored_anyway = reply.status_code == 503
    finally:
        await asyncio.to_thread(world.platform.start, ["auth"])
        await asyncio.to_thread(wait_all_ready, url, 30)
    history = stage.crew.call("GET", f"/api/v1/sessions/{stage.session_id}/messages",
                              params={"limit": 100}).json()["items"]
    assert [m["client_id"] for m in history].count("auth-down") == 1
    assert not stored_anyway, "stored and delivered, but answered 503"
    assert reply.status_code == 201, reply.text
