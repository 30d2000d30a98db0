"""Graceful drain: SIGTERM closes a gateway's sockets with 1012 and reconnecting loses nothing."""

from __future__ import annotations

import asyncio
import signal

import pytest

from bench.realtime_scenarios import DocClient, EventsClient
from scripts.platform import LocalPlatform, wait_ready
from tests.helpers.realtime import Crew

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def crew(platform: LocalPlatform) -> Crew:
    return Crew.sign_in(platform.url)


async def test_sigterm_closes_with_1012_after_flushing_and_clients_resume_elsewhere(
        platform: LocalPlatform, crew: Crew) -> None:
    port = platform.add_gateway("gateway-drain")
    doomed = f"http://127.0.0.1:{port}"
    wait_ready(doomed + "/ready", 60, what="gateway-drain")
    session_id = crew.session()
    reader = await EventsClient.connect(doomed, session_id, crew.viewer.access_token)
    doc = await DocClient.connect(doomed, session_id, crew.editor.access_token)
    writer = await EventsClient.connect(platform.url, session_id, crew.owner.access_token)
    try:
        await asyncio.wait_for(doc.synced.wait(), 10)
        first = await writer.chat("before the restart")
        await reader.wait_type("chat.message", where=lambda e: e["seq"] == first["seq"])
        last_seq = first["seq"]

        code = await asyncio.to_thread(platform.stop, "gateway-drain", signal.SIGTERM)
        assert code == 0, platform.tail_logs()
        assert await reader.wait_closed() == 1012
        assert await doc.wait_closed() == 1012
        left = await writer.wait_type("presence.left",
                                      where=lambda e: e["user_id"] == crew.viewer.user_id)
        assert left["connection_id"] == reader.welcome["connection_id"]

        # Messages keep flowing while the client is away; it reconnects elsewhere.
        missed = [(await writer.chat(f"during the restart {i}"))["seq"] for i in range(5)]
        back = await EventsClient.connect(platform.url, session_id, crew.viewer.access_token,
                                          last_seq=last_seq)
        await back.wait_for(lambda events: len([e for e in events
                                                if e["type"] == "chat.message"]) == 5)
        assert [e["seq"] for e in back.of_type("chat.message")] == missed
        await back.close()
    finally:
        await writer.close()
