"""PostgreSQL stopped and restarted: writes fail fast with 503 and the standard body, nothing is
half-written, and every process recovers by itself."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from bench.realtime_scenarios import EventsClient
from tests.helpers.realtime import Crew
from tests.reliability.support import FaultyWorld, aget, apoll, assert_error, poll, ready_check, wait_all_ready
from tests.reliability.test_redis_outage import history

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# "Fast": once a service knows its database is down, a call waits at most
# HealthMonitor.DOWN_POOL_TIMEOUT (0.5 s) for a connection. Without that fast path it would
# wait the pool's own timeout (3 s, services/common/db.py) before its 503, so a call that
# answers in under 3 s took the fast path; the 2.5 s between the two is slack for a loaded
# machine, not a speed target.
POOL_TIMEOUT = 3.0


def _timed(api: httpx.Client, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    reply = api.request(method, path, **kwargs)
    return reply, time.monotonic() - start


async def test_postgres_outage_refuses_writes_fast_and_recovers(world: FaultyWorld) -> None:
    url = world.url
    crew = await asyncio.to_thread(Crew.sign_in, url)
    session_id = await asyncio.to_thread(crew.session)
    chatter = await EventsClient.connect(url, session_id, crew.editor.access_token)
    acked: dict[str, int] = {}
    refused: list[str] = []
    try:
        ack = await chatter.chat("before", client_id="before")
        acked["before"] = ack["seq"]

        await asyncio.to_thread(world.postgres.stop)
        # Every service's health follows its database; /ready names them.
        body, _ = await apoll(lambda: asyncio.to_thread(ready_check(url, "sessions", "down")),
                              10, "/ready names sessions")
        assert body["checks"]["sessions"]["reason"]
        assert (await aget(url + "/health")).status_code == 200

        with httpx.Client(base_url=url, headers=crew.owner.headers, timeout=15) as api:
            writes = [
                ("POST", "/api/v1/sessions", {"title": "made during the outage"}),
                ("PATCH", f"/api/v1/sessions/{session_id}", {"title": "renamed during the outage"}),
                ("POST", f"/api/v1/sessions/{session_id}/invitations", {"role": "viewer"}),
                ("POST", f"/api/v1/sessions/{session_id}/messages",
                 {"body": "rest during the outage", "client_id": "rest-during"}),
            ]
            for method, path, payload in writes:
                reply, seconds = _timed(api, method, path, json=payload)
                assert_error(reply, 503, "unavailable")
                assert reply.headers.get("Retry-After"), reply.headers
                assert seconds < POOL_TIMEOUT, f"{method} {path} took {seconds:.1f}s"
            refused.append("rest-during")

        # Over the socket: refused with an error event naming the client_id, never acknowledged.
        await chatter.send({"type": "chat.send", "body": "ws during the outage",
                            "client_id": "ws-during"})
        error = await chatter.wait_type("error", timeout=10,
                                        where=lambda e: e.get("client_id") == "ws-during")
        assert error["code"] == "unavailable"
        assert not [e for e in chatter.of_type("chat.ack") if e["client_id"] == "ws-during"]
        refused.append("ws-during")

        await asyncio.to_thread(world.postgres.start)
        await asyncio.to_thread(wait_all_ready, url, 30)
    finally:
        await chatter.close()

    with httpx.Client(base_url=url, headers=crew.owner.headers, timeout=10) as api:
        # Writes work again without restarting anything.
        def accepted() -> httpx.Response | None:
            reply = api.post(f"/api/v1/sessions/{session_id}/messages",
                             json={"body": "after", "client_id": "after"})
            return reply if reply.status_code == 201 else None
        after, _ = await asyncio.to_thread(poll, accepted, 15, "writes after recovery")
        acked["after"] = after.json()["seq"]

        # Nothing half-written: no session, rename, invitation or message from the outage.
        titles = [s["title"] for s in api.get("/api/v1/sessions", params={"limit": 100}).json()["items"]]
        assert "made during the outage" not in titles
        session = api.get(f"/api/v1/sessions/{session_id}").json()
        assert session["title"] == "Pairing"
        stored = await history(url, session_id, crew.owner.headers)
        client_ids = [m["client_id"] for m in stored]
        for client_id in refused:
            assert client_id not in client_ids
        for client_id, seq in acked.items():
            assert client_ids.count(client_id) == 1
            assert next(m["seq"] for m in stored if m["client_id"] == client_id) == seq

    # The session's sequence has no hole where the refused writes were: a replay from 0 is
    # gap-free up to last_seq.
    replay = await EventsClient.connect(url, session_id, crew.owner.access_token, last_seq=0)
    try:
        last_seq = replay.welcome["last_seq"]
        await replay.wait_for(lambda events: len([e for e in events if "seq" in e]) >= last_seq)
        seqs = [e["seq"] for e in replay.received if "seq" in e]
        assert seqs == list(range(1, last_seq + 1))
    finally:
        await replay.close()
    # A fresh sign-in works again too (auth's writes).
    assert await asyncio.to_thread(Crew.sign_in, url)


def test_postgres_outage_sign_in_and_profile_fail_cleanly(world: FaultyWorld) -> None:
    url = world.url
    wait_all_ready(url, 30)
    crew = Crew.sign_in(url)
    world.postgres.stop()
    try:
        poll(ready_check(url, "auth", "down"), 10, "/ready names auth")
        with httpx.Client(base_url=url, timeout=15) as api:
            me, seconds = _timed(api, "GET", "/api/v1/me", headers=crew.owner.headers)
            assert me.status_code in (200, 503), me.text
            if me.status_code == 503:
                assert_error(me, 503, "unavailable")
            assert seconds < POOL_TIMEOUT
            refresh, seconds = _timed(api, "POST", "/api/v1/auth/refresh",
                                      json={"refresh_token": crew.owner.refresh_token})
            assert_error(refresh, 503, "unavailable")
            assert seconds < POOL_TIMEOUT
    finally:
        world.postgres.start()
    wait_all_ready(url, 30)
    # The refresh token was not spent by the refused call: it still works once.
    reply = httpx.post(url + "/api/v1/auth/refresh", json={"refresh_token": crew.owner.refresh_token},
                       timeout=10)
    assert reply.status_code == 200, reply.text
    assert uuid.UUID(reply.json()["user"]["id"])
