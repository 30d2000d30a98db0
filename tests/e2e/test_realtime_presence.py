"""Presence outlives no gateway: a killed replica's clients are announced gone within the TTL."""

from __future__ import annotations

import asyncio
import signal

import pytest

from bench.realtime_scenarios import EventsClient
from scripts.platform import LocalPlatform
from tests.helpers.realtime import Crew, add_gateway_with

pytestmark = pytest.mark.e2e

# Heartbeat every 0.3 s, entries live 1 s: the test observes a whole TTL quickly.
TTL = 1.0
FAST = {"REALTIME_PRESENCE_HEARTBEAT_SECONDS": "0.3", "REALTIME_PRESENCE_TTL_SECONDS": str(TTL)}
# gateway/realtime/config.py: three heartbeats of 10 s when nothing is configured.
DEFAULT_TTL = 30.0


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
    ghost_id = ghost.welcome["connection_id"]
    try:
        await watcher.wait_type("presence.joined",
                                where=lambda e: e["user_id"] == crew.editor.user_id)
        # Two TTLs while the victim lives (time passing is the point here, not a stand-in for
        # an event): heartbeats must keep its client present all along.
        await asyncio.sleep(2 * TTL)
        # Positive proof: a newcomer's welcome (read from Redis) still lists the connection,
        # and the watcher hears of the newcomer with no departure of the ghost before it.
        newcomer = await EventsClient.connect(survivor, session_id, crew.viewer.access_token)
        assert ghost_id in {p["connection_id"] for p in newcomer.welcome["presence"]}
        await watcher.wait_type("presence.joined",
                                where=lambda e: e["connection_id"] == newcomer.welcome["connection_id"])
        assert not [e for e in watcher.of_type("presence.left") if e["connection_id"] == ghost_id]
        await newcomer.close()

        await asyncio.to_thread(platform.stop, "gateway-victim", signal.SIGKILL)
        # Nobody said goodbye: only the entry's TTL can announce it. The wait is a third of
        # the default TTL (30 s), so an arrival proves the configured 1 s TTL did it, with
        # room for a loaded machine.
        left = await watcher.wait_type("presence.left", timeout=DEFAULT_TTL / 3,
                                       where=lambda e: e["user_id"] == crew.editor.user_id)
        assert left["connection_id"] == ghost_id
        late = await EventsClient.connect(survivor, session_id, crew.viewer.access_token)
        assert crew.editor.user_id not in {p["user_id"] for p in late.welcome["presence"]}
        await late.close()
    finally:
        await watcher.close()
        platform.stop("gateway-survivor")
