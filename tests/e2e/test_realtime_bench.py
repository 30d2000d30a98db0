"""The realtime benchmark scenarios run end to end at a small scale (so `make bench` can trust them)."""

from __future__ import annotations

import pytest

from bench.realtime_scenarios import (
    doc_sync,
    doc_update_latency,
    seed_document_url,
    typing_updates,
    ws_fanout,
)
from scripts.platform import LocalPlatform
from tests.helpers.realtime import Crew, gateway2

pytestmark = pytest.mark.e2e

__all__ = ["gateway2"]  # the fixture, imported for pytest


@pytest.fixture(scope="module")
def crew(platform: LocalPlatform) -> Crew:
    return Crew.sign_in(platform.url)


async def test_fanout_scenario_measures_every_delivery(platform: LocalPlatform, gateway2: str,
                                                       crew: Crew) -> None:
    session_id = crew.session()
    tokens = [crew.owner.access_token, crew.editor.access_token, crew.viewer.access_token]
    result = await ws_fanout([platform.url, gateway2], session_id, tokens, clients=20,
                             rate=20, seconds=1.0)
    # Every message sent reached each of the 20 listeners (errors counts the missing ones);
    # how fast is `make bench`'s business, not a test's.
    assert result.errors == 0
    assert result.samples
    assert len(result.samples) % 20 == 0
    assert result.p50_ms is not None
    assert result.p99_ms is not None
    assert 0 < result.p50_ms <= result.p99_ms


async def test_document_scenarios_measure_propagation_and_sync(platform: LocalPlatform,
                                                               gateway2: str, crew: Crew) -> None:
    session_id = crew.session()
    latency = await doc_update_latency(platform.url, gateway2, session_id,
                                       crew.editor.access_token, updates=20)
    assert (len(latency.samples), latency.errors) == (20, 0)
    big = crew.session()
    await seed_document_url(platform.env["DATABASE_URL"], big, typing_updates(2000))
    synced = await doc_sync(gateway2, big, crew.viewer.access_token, repeat=2)
    assert len(synced.samples) == 2
    assert crew.document(big)["version"] == 2000
