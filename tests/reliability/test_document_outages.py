"""The shared document across faults: a real restart of the sessions service (killed, started again)
and a Redis outage. Acknowledged text is never lost, clients resync, peers catch up, nothing dies."""

from __future__ import annotations

import asyncio
import signal

import pytest

from bench.realtime_scenarios import DocClient
from tests.helpers.realtime import Crew, YSocket
from tests.helpers.waiting import apoll
from tests.reliability.support import FaultyWorld, aget, ready_check, wait_all_ready

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _stored_text(crew: Crew, session_id: str, wanted: str, timeout: float = 15) -> str:
    """The REST document's text once it holds `wanted` (what is stored, i.e. acknowledged)."""
    async def probe() -> str | None:
        reply = await asyncio.to_thread(crew.call, "GET", f"/api/v1/sessions/{session_id}/document")
        if reply.status_code != 200:
            return None
        text: str = reply.json()["text"]
        return text if wanted in text else None

    return (await apoll(probe, timeout, f"the stored document holding {wanted!r}"))[0]


async def _room(world: FaultyWorld) -> tuple[Crew, str]:
    """People signed in to the (ready) world and a session with them joined."""
    await asyncio.to_thread(wait_all_ready, world.url, 30)
    crew = await asyncio.to_thread(Crew.sign_in, world.url)
    return crew, await asyncio.to_thread(crew.session)


def _dead(world: FaultyWorld) -> list[str]:
    """The platform's processes that have exited (none, if nothing died)."""
    return [name for name, proc in world.platform.procs.items() if proc.poll() is not None]


async def test_the_document_survives_a_sessions_restart_and_clients_resync(
        world: FaultyWorld) -> None:
    url = world.url
    crew, session_id = await _room(world)
    editor = await DocClient.connect(url, session_id, crew.editor.access_token)
    try:
        await asyncio.wait_for(editor.synced.wait(), 10)
        for line in ("def f():\n", "    return 1\n", "print(f())\n"):
            await editor.insert(len(editor.value()), line)
        acknowledged = await _stored_text(crew, session_id, "print(f())\n")
        assert acknowledged == "def f():\n    return 1\nprint(f())\n"

        # A crash, not a drain: whatever the service held in memory is gone.
        code = await asyncio.to_thread(world.platform.stop, "sessions", signal.SIGKILL)
        assert code == -signal.SIGKILL
        await apoll(lambda: asyncio.to_thread(ready_check(url, "sessions", "down")), 10,
                    "/ready names sessions")
        await asyncio.to_thread(world.platform.start, ["sessions"])
        await asyncio.to_thread(wait_all_ready, url, 30)

        # A client arriving now syncs every acknowledged character from what was stored.
        fresh = await DocClient.connect(url, session_id, crew.viewer.access_token)
        await asyncio.wait_for(fresh.synced.wait(), 15)
        assert fresh.value() == acknowledged
        await fresh.close()

        # The editor's socket, open across the restart, keeps editing; if its gateway closed
        # it meanwhile, it is with 1013 (store unavailable: reconnect and sync).
        if editor.ws.close_code is None:
            await editor.insert(len(editor.value()), "# after the restart\n")
        else:
            assert editor.ws.close_code == 1013
            editor = await DocClient.connect(url, session_id, crew.editor.access_token)
            await asyncio.wait_for(editor.synced.wait(), 10)
            assert editor.value() == acknowledged
            await editor.insert(len(editor.value()), "# after the restart\n")
        final = await _stored_text(crew, session_id, "# after the restart\n")
        assert final == acknowledged + "# after the restart\n"
        assert not _dead(world)
    finally:
        await editor.close()


async def test_editing_through_a_redis_outage_stores_acknowledged_updates_and_peers_catch_up(
        world: FaultyWorld) -> None:
    url = world.url
    crew, session_id = await _room(world)
    writer = await YSocket.connect(url, session_id, crew.editor.access_token)
    peer = await DocClient.connect(url, session_id, crew.owner.access_token)
    try:
        await asyncio.wait_for(peer.synced.wait(), 10)
        await writer.insert("before\n")
        await peer.wait_until(lambda c: "before\n" in c.value())

        await asyncio.to_thread(world.redis.stop)
        try:
            await apoll(lambda: asyncio.to_thread(ready_check(url, "redis", "down")), 10,
                        "/ready names redis")
            # Updates go to the sessions service, which stores them in PostgreSQL: Redis is
            # only how peers hear of them live.
            await writer.insert("during\n")
            during = await _stored_text(crew, session_id, "during\n")
            assert "before\n" in during
            assert writer.ws.close_code is None
            assert not writer.denials()
            assert (await aget(url + "/health")).status_code == 200
        finally:
            await asyncio.to_thread(world.redis.start)
        await asyncio.to_thread(wait_all_ready, url, 30)

        # The peer, connected all along, catches up without reconnecting (the gateway resyncs
        # document rooms when Redis returns), and live relay works again.
        await peer.wait_until(lambda c: "during\n" in c.value(), timeout=30)
        await writer.insert("after\n")
        await peer.wait_until(lambda c: "after\n" in c.value(), timeout=15)
        stored = await _stored_text(crew, session_id, "after\n")
        assert sorted(peer.value().splitlines()) == sorted(stored.splitlines())
        assert sorted(stored.splitlines()) == ["after", "before", "during"]
        assert peer.ws.close_code is None
        assert not _dead(world)
    finally:
        await writer.close()
        await peer.close()
