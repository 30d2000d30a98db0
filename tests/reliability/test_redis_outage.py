"""Redis stopped under light traffic: not-ready naming it, reads and history keep working, realtime
clients are told and recover, and no acknowledged chat message is lost."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from bench.realtime_scenarios import EventsClient
from tests.helpers.realtime import Crew
from tests.reliability.support import FaultyWorld, aget, apoll, ready_check, wait_all_ready

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# make test keeps the outage short; the full 10 s runs under -m slow (see
# docs/reliability.md). Detection (5 s) and recovery do not depend on the length.
SHORT_OUTAGE = 3.0
FULL_OUTAGE = 10.0


@dataclass
class Traffic:
    """Light REST chat traffic: what was acknowledged, and how everything else was refused."""

    url: str
    session_id: str
    headers: dict[str, str]
    acked: dict[str, int] = field(default_factory=dict)  # client_id -> seq
    refused: list[tuple[int, str]] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=10) as api:
            n = 0
            while not stop.is_set():
                n += 1
                client_id = f"rest-{n}-{uuid.uuid4().hex[:6]}"
                reply = await api.post(f"/api/v1/sessions/{self.session_id}/messages",
                                       json={"body": f"light traffic {n}", "client_id": client_id})
                if reply.status_code == 201:
                    self.acked[client_id] = reply.json()["seq"]
                else:
                    self.refused.append((reply.status_code, reply.text))
                read = await api.get(f"/api/v1/sessions/{self.session_id}/messages",
                                     params={"limit": 1})
                self.reads.append(read.status_code)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.1)


async def history(url: str, session_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every message of the session, through the paged REST history."""
    out: list[dict[str, Any]] = []
    after = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as api:
        while True:
            reply = await api.get(f"/api/v1/sessions/{session_id}/messages",
                                  params={"after_seq": after, "limit": 100})
            assert reply.status_code == 200, reply.text
            page = reply.json()
            out += page["items"]
            if page["next_cursor"] is None:
                return out
            after = int(page["next_cursor"])


async def _outage(world: FaultyWorld, outage: float) -> None:
    url = world.url
    crew = await asyncio.to_thread(Crew.sign_in, url)
    session_id = await asyncio.to_thread(crew.session)
    headers = crew.owner.headers
    listener = await EventsClient.connect(url, session_id, crew.viewer.access_token)
    chatter = await EventsClient.connect(url, session_id, crew.editor.access_token)
    traffic = Traffic(url, session_id, headers)
    stop = asyncio.Event()
    background = asyncio.create_task(traffic.run(stop))
    ws_acked: dict[str, int] = {}

    async def chat(label: str) -> dict[str, Any]:
        """Send a chat message; its ack (remembered) or the error that refused it."""
        client_id = f"ws-{label}"
        await chatter.send({"type": "chat.send", "body": label, "client_id": client_id})
        answer: dict[str, Any] = await chatter.wait_for(lambda events: next(
            (e for e in events if e.get("client_id") == client_id
             and e["type"] in ("chat.ack", "error")), None))
        if answer["type"] == "chat.ack":
            ws_acked[client_id] = answer["seq"]
        return answer

    try:
        assert (await chat("before"))["type"] == "chat.ack"
        await listener.wait_type("chat.message", where=lambda e: e["body"] == "before")

        await asyncio.to_thread(world.redis.stop)
        stopped = time.monotonic()
        body, _ = await apoll(lambda: asyncio.to_thread(ready_check(url, "redis", "down")),
                                 5, "/ready names redis")
        assert body["status"] == "not_ready"
        assert body["checks"]["redis"]["reason"]
        assert (await aget(url + "/health")).status_code == 200

        # Live delivery is interrupted and the client is told so on its open socket.
        error = await listener.wait_type("error", timeout=10,
                                         where=lambda e: e["code"] == "unavailable")
        assert error["message"]

        # Reads that need no Redis keep answering.
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as api:
            session = await api.get(f"/api/v1/sessions/{session_id}")
            assert session.status_code == 200, session.text
            assert session.json()["id"] == session_id
            listed = await api.get(f"/api/v1/sessions/{session_id}/messages")
            assert listed.status_code == 200, listed.text
            assert "before" in [m["body"] for m in listed.json()["items"]]
            me = await api.get("/api/v1/me")
            assert me.status_code == 200, me.text

        # Chat while Redis is away: stored and acknowledged, or refused as unavailable.
        during = await chat("during")
        assert during["type"] == "chat.ack" or during["code"] == "unavailable", during
        # Hold the outage for its full length: this sleep is the fault, not a wait for a result.
        await asyncio.sleep(max(0.0, outage - (time.monotonic() - stopped)))

        await asyncio.to_thread(world.redis.start)
        await asyncio.to_thread(wait_all_ready, url, 30)
        # No restart: the same socket hears what was said while Redis was away, then live again.
        assert (await chat("after"))["type"] == "chat.ack"
        await listener.wait_type("chat.message", timeout=30,
                                 where=lambda e: e["body"] == "after")
        # Let the light traffic be acknowledged a few more times after Redis returned (those
        # messages are checked with all the others below).
        before_stop = len(traffic.acked)
        await apoll(lambda: _settled(traffic, before_stop), 10, "traffic after recovery")
    finally:
        stop.set()
        await background
        await chatter.close()

    try:
        acked = {**traffic.acked, **ws_acked}
        stored = await history(url, session_id, headers)
        by_client = [m["client_id"] for m in stored]
        # Every acknowledged message is in history, exactly once, with the acknowledged seq.
        for client_id, seq in acked.items():
            assert by_client.count(client_id) == 1, client_id
            assert next(m["seq"] for m in stored if m["client_id"] == client_id) == seq
        # What was refused was refused cleanly: 503 with the standard body.
        for status, text in traffic.refused:
            assert status == 503, text
            assert orjson.loads(text)["error"]["code"] == "unavailable", text
        assert set(traffic.reads) == {200}, traffic.reads
        # The listener ends up with every acknowledged message once, in order.
        await listener.wait_for(lambda events: {e["seq"] for e in events if e["type"] == "chat.message"}
                                >= set(acked.values()), timeout=20)
        seqs = [e["seq"] for e in listener.of_type("chat.message")]
        assert seqs == sorted(set(seqs))
    finally:
        await listener.close()


async def _settled(traffic: Traffic, count: int) -> bool | None:
    return True if len(traffic.acked) > count + 3 else None


async def test_redis_outage_short(world: FaultyWorld) -> None:
    await _outage(world, SHORT_OUTAGE)


@pytest.mark.slow
async def test_redis_outage_of_ten_seconds(world: FaultyWorld) -> None:
    await _outage(world, FULL_OUTAGE)
