"""Presence outlives no gateway: a killed replica's clients are announced gone within the TTL."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from bench.realtime_scenarios import EventsClient
from scripts.platform import LocalPlatform
from tests.helpers.realtime import Crew, add_gateway_with

pytestmark = pytest.mark.e2e

# Heartbeat every 0.3 s, entries live 1 s: the test observes a whole TTL quickly.
FAST = {"REALTIME_PRESENCE_HEARTBEAT_SECONDS": "0.3", "REALTIME_PRESENCE_TTL_SECONDS": "1"}


@pytest.fixture(scope="module")
def crew(platform: LocalPlatform) -> Crew:
    return Crew.sign_in(platform.url)


async def test_a_killed_gateway_leaves_no_ghost_for_longer_than_the_ttl(
        platform: LocalPlatform, crew: Crew) -> None:
    survivor = add_gateway_with(platform, "gateway-survivor", **FAST)
    victim = add_gateway_with(platform, "gateway-victim", **FAST)
    session_id = crew.session()
    watcher = await EventsClient.connect(survivor, session_id, crew.owner.access_token)
    ghost = await EventsClient.connect(victim, session_id, crew.editor.access_token)
    try:
        await watcher.wait_type("presence.joined",
                                where=lambda e: e["user_id"] == crew.editor.user_id)
        # Well past a TTL while the victim lives: heartbeats keep its client present.
        await asyncio.sleep(1.5)
        assert not watcher.of_type("presence.left")
        killed_at = time.monotonic()
        await asyncio.to_thread(platform.stop, "gateway-victim", signal.SIGKILL)
        left = await watcher.wait_type("presence.left", timeout=10,
                                       where=lambda e: e["user_id"] == crew.editor.user_id)
        assert time.monotonic() - killed_at < 1 + 0.3 + 1.0  # TTL + one beat + slack
        assert left["connection_id"] == ghost.welcome["connection_id"]
        late = await EventsClient.connect(survivor, session_id, crew.viewer.access_token)
        assert crew.editor.user_id not in {p["user_id"] for p in late.welcome["presence"]}
        await late.close()
    finally:
        await watcher.close()
        platform.stop("gateway-survivor")
