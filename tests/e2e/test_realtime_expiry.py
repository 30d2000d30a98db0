"""Token expiry on live sockets, with 30-second access tokens: fresh token or 4401 after the grace."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from bench.realtime_scenarios import DocClient, EventsClient
from scripts.platform import LocalPlatform
from tests.helpers.identity import sign_in_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def short_tokens(base_env: dict[str, str]) -> Iterator[LocalPlatform]:
    # 30 s is the shortest lifetime the auth service issues.
    env = dict(base_env, ACCESS_TOKEN_TTL_SECONDS="30", REALTIME_AUTH_GRACE_SECONDS="2")
    plat = LocalPlatform.create(env, openai_standin=False)
    with plat:
        plat.wait_ready(90)
        yield plat


@pytest.mark.timeout(90)
async def test_an_expired_token_closes_with_4401_unless_a_fresh_one_arrives_in_time(
        short_tokens: LocalPlatform) -> None:
    url = short_tokens.url
    user = sign_in_http(url, "rt-expiry")
    async with httpx.AsyncClient(base_url=url, timeout=10) as api:
        created = await api.post("/api/v1/sessions", json={"title": "expiry"}, headers=user.headers)
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]
    stale = await EventsClient.connect(url, session_id, user.access_token)
    fresh = await EventsClient.connect(url, session_id, user.access_token)
    doc = await DocClient.connect(url, session_id, user.access_token)
    try:
        warning = await fresh.wait_type("error", timeout=45,
                                        where=lambda e: e["code"] == "token_expired")
        assert "auth" in warning["message"]
        async with httpx.AsyncClient(base_url=url, timeout=10) as api:
            refreshed = await api.post("/api/v1/auth/refresh",
                                 json={"refresh_token": user.refresh_token})
        assert refreshed.status_code == 200, refreshed.text
        await fresh.send({"type": "auth", "access_token": refreshed.json()["access_token"]})
        await fresh.wait_type("auth.ok")

        assert await stale.wait_closed(timeout=15) == 4401
        assert await doc.wait_closed(timeout=15) == 4401
        assert stale.of_type("error")[-1]["code"] == "token_expired"
        # The refreshed connection lives on.
        await fresh.send({"type": "ping"})
        await fresh.wait_type("pong")
        assert fresh.ws.close_code is None
    finally:
        await fresh.close()
        await asyncio.gather(stale.close(), doc.close(), return_exceptions=True)
