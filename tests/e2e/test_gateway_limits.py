"""The per-user API rate limit and Idempotency-Key through a real gateway: the 429 with its standard
body and Retry-After, other users unaffected, replicas sharing the count; a key reused on another
route, and Redis lost in the middle of an idempotent request."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from scripts.platform import LocalPlatform
from tests.helpers.faults import Mode, TcpFault, tcp_fault
from tests.helpers.identity import SignedIn, sign_in_http
from tests.helpers.realtime import add_gateway_with
from tests.helpers.waiting import poll
from tests.reliability.support import assert_error

pytestmark = pytest.mark.e2e

# Every other platform of the run disables the limit (tests/conftest.py's base_env); these
# replicas of the shared platform enforce a small one.
LIMIT = 5


def _person(platform: LocalPlatform, role: str) -> SignedIn:
    # A login of its own: the limit counts per user, and this user has spent nothing yet.
    return sign_in_http(platform.url, f"limits-{role}-{secrets.token_hex(3)}")


@pytest.fixture(scope="module")
def limited(platform: LocalPlatform) -> Iterator[tuple[str, str]]:
    """Two gateway replicas with RATE_LIMIT_USER_PER_MINUTE=5 (same services and Redis)."""
    names = ("gateway-limited-a", "gateway-limited-b")
    urls = tuple(add_gateway_with(platform, name, RATE_LIMIT_USER_PER_MINUTE=str(LIMIT))
                 for name in names)
    try:
        yield urls[0], urls[1]
    finally:
        for name in names:
            platform.stop(name)
            platform.specs.pop(name, None)


def _until_limited(url: str, user: SignedIn, attempts: int) -> list[httpx.Response]:
    """GET /api/v1/me as `user` until the first 429 (at most `attempts` requests)."""
    replies = []
    with httpx.Client(base_url=url, headers=user.headers, timeout=10) as api:
        for _ in range(attempts):
            replies.append(api.get("/api/v1/me"))
            if replies[-1].status_code == 429:
                break
    return replies


def test_the_per_user_limit_answers_429_with_retry_after_and_spares_other_users(
        platform: LocalPlatform, limited: tuple[str, str]) -> None:
    url, other_replica = limited
    greedy, bystander = _person(platform, "greedy"), _person(platform, "bystander")
    # Windows are whole minutes: a burst that crosses a boundary starts a fresh count, so
    # allow a second full window before calling it a failure.
    replies = _until_limited(url, greedy, 2 * LIMIT + 2)
    statuses = [r.status_code for r in replies]
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {200}, statuses
    assert LIMIT <= len(statuses) - 1 <= 2 * LIMIT, statuses
    error = assert_error(replies[-1], 429, "rate_limited")
    assert str(LIMIT) in error["message"]
    assert 1 <= int(replies[-1].headers["Retry-After"]) <= 60
    # Someone else on the same replica is not held back by it.
    assert httpx.get(url + "/api/v1/me", headers=bystander.headers, timeout=10).status_code == 200
    # The count lives in Redis, shared by replicas: the other one refuses the same user too
    # (once its batched counts have been read back: a few requests at most).
    later = _until_limited(other_replica, greedy, LIMIT + 1)
    assert later[-1].status_code == 429, [r.status_code for r in later]
    assert_error(later[-1], 429, "rate_limited")


def test_an_idempotency_key_reused_on_another_route_is_refused_and_creates_nothing(
        platform: LocalPlatform) -> None:
    owner, other = _person(platform, "owner"), _person(platform, "other")
    key = secrets.token_hex(8)
    with httpx.Client(base_url=platform.url, timeout=10) as api:
        created = api.post("/api/v1/sessions", json={"title": "Keyed"},
                           headers={**owner.headers, "Idempotency-Key": key})
        assert created.status_code == 201, created.text
        messages = f"/api/v1/sessions/{created.json()['id']}/messages"
        # The same key on another route is another request: 422, not the first answer.
        reused = api.post(messages, json={"body": "under a used key"},
                          headers={**owner.headers, "Idempotency-Key": key})
        error = assert_error(reused, 422, "unprocessable")
        assert "Idempotency-Key" in error["message"]
        assert "Idempotent-Replayed" not in reused.headers
        assert api.get(messages, headers=owner.headers).json()["items"] == []
        # And the original route still replays the first answer.
        again = api.post("/api/v1/sessions", json={"title": "Keyed"},
                         headers={**owner.headers, "Idempotency-Key": key})
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json() == created.json()
        # Keys belong to their user: the same key is free for someone else, on any route.
        theirs = api.post("/api/v1/sessions", json={"title": "Theirs"},
                          headers={**other.headers, "Idempotency-Key": key})
        assert theirs.status_code == 201, theirs.text
        assert "Idempotent-Replayed" not in theirs.headers


@pytest.fixture(scope="module")
def relayed_gateway(platform: LocalPlatform) -> Iterator[tuple[str, TcpFault]]:
    """A gateway replica that reaches the run's Redis through a relay the test can cut."""
    with tcp_fault(platform.env["REDIS_URL"]) as relay:
        url = add_gateway_with(platform, "gateway-redis-relay", REDIS_URL=relay.url)
        try:
            yield url, relay
        finally:
            platform.stop("gateway-redis-relay")
            platform.specs.pop("gateway-redis-relay", None)


def _claims_the_key(chunk: bytes) -> bool:
    """The gateway's SET NX of an idempotency key (its claim before it runs the request)."""
    return b"idem" in chunk and b"\r\nNX\r\n" in chunk


def test_redis_lost_in_the_middle_of_an_idempotent_request(
        platform: LocalPlatform, relayed_gateway: tuple[str, TcpFault]) -> None:
    url, relay = relayed_gateway
    user = _person(platform, "midway")
    title = f"Redis went away {secrets.token_hex(3)}"
    headers = {**user.headers, "Idempotency-Key": secrets.token_hex(8)}
    relay.cut_after_reply_to(_claims_the_key)
    try:
        # The key is claimed, then Redis is gone before the answer can be stored: the request
        # itself still runs once and is answered (docs: without Redis, no guarantee, no outage).
        first = httpx.post(url + "/api/v1/sessions", json={"title": title}, headers=headers,
                           timeout=15)
        assert relay.was_cut.is_set(), "the relay never saw the key being claimed"
        assert first.status_code == 201, first.text
        assert httpx.get(url + "/health", timeout=5).status_code == 200
        # The gateway noticed and said so (the answer could not be kept for a replay).
        log = platform.log_dir / "gateway-redis-relay.log"
        poll(lambda: True if "could not store an idempotent response" in log.read_text(
            errors="replace") else None, 10, "the gateway's warning about the lost answer")
    finally:
        relay.set(Mode.FORWARD)
    poll(lambda: True if httpx.get(url + "/ready", timeout=3).status_code == 200 else None,
         30, "the relayed gateway ready again")
    # The claim outlived the cut (it expires by itself, LOCK_SECONDS): a retry within its life
    # is told to come back later, and never creates a second session.
    retry = httpx.post(url + "/api/v1/sessions", json={"title": title}, headers=headers,
                       timeout=15)
    assert_error(retry, 409, "conflict")
    assert retry.headers.get("Retry-After")
    listed = httpx.get(platform.url + "/api/v1/sessions", params={"limit": 100},
                       headers=user.headers, timeout=10)
    assert [s["title"] for s in listed.json()["items"]].count(title) == 1
    assert first.json()["title"] == title
