"""The hub's fan-out, document version tracking, recovery, and presence in real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import pytest
from redis.asyncio import Redis

from gateway.realtime.hub import DocMember, EventsMember, Hub
from gateway.realtime.presence import PresenceStore
from gateway.realtime.ywebsocket import (
    MAX_AWARENESS_CLIENTS,
    AwarenessEntry,
    awareness_message,
    encode_awareness,
    parse_awareness,
    sync_update,
)
from services.common.channels import RealtimeChannels
from services.common.docframes import DOC_AWARENESS, DOC_QUERY, DOC_UPDATE, NOBODY, DocFrame
from services.common.keyspace import KeySpace
from services.common.redisutil import create_redis
from tests.realtime.fakes import RecordingRedis, config

SESSION = "33333333-3333-3333-3333-333333333333"


class Member:
    """A connection as the hub sees it, recording what reached it."""

    def __init__(self, user_id: str, n: int) -> None:
        self.id_bytes = bytes([n]) * 16
        self.session_id = SESSION
        self.user_id = user_id
        self.released = asyncio.Event()
        self.events: list[tuple[dict[str, Any], str]] = []
        self.frames: list[str | bytes] = []
        self.outages = 0
        self.recoveries = 0
        self.caught_up = 0
        self.delivered = 0
        self.entries: list[AwarenessEntry] = []
        self.claim_owner = f"conn-{n}"
        self.claimed: list[int] = []
        self.token = f"token-{n}"
        self.closed: int | None = None

    def on_event(self, event: dict[str, Any], raw: str) -> None:
        self.events.append((event, raw))

    def on_outage(self) -> None:
        self.outages += 1

    def on_recovered(self) -> None:
        self.recoveries += 1

    def close(self, code: int, reason: str = "", *, flush: bool = True) -> None:
        self.closed = code

    def send(self, frame: str | bytes) -> bool:
        self.frames.append(frame)
        return True

    def awareness_entries(self) -> list[AwarenessEntry]:
        return self.entries

    def awareness_claims(self) -> tuple[str, list[int]]:
        return self.claim_owner, self.claimed

    def presence_entry(self) -> dict[str, Any] | None:
        return None

    def behind(self, last_seq: int) -> bool:
        return last_seq > self.delivered

    def catch_up(self) -> None:
        self.caught_up += 1


class Resyncs:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def resync(self, session_id: str, members: list[DocMember]) -> tuple[bytes, int] | None:
        self.calls.append(session_id)
        return b"FULL", 10

    async def probe(self, session_id: str, members: list[EventsMember]) -> int | None:
        return 12


def _hub(redis: Any = None, **env: str) -> tuple[Hub, Resyncs]:
    resyncs = Resyncs()
    hub = Hub("redis://127.0.0.1:1/0", cast(Redis, redis or RecordingRedis()), "t:", config(**env),
              resyncs.resync, resyncs.probe)
    return hub, resyncs


def _message(channel: str, data: bytes) -> dict[str, Any]:
    return {"type": "message", "channel": channel.encode(), "data": data}


def _join(hub: Hub, events: list[Member], docs: list[Member]) -> None:
    room = hub.room(SESSION)
    room.events.update(cast(list[EventsMember], events))
    room.docs.update(cast(list[DocMember], docs))


def test_channels_are_built_from_the_sessions_keyspace() -> None:
    hub, _ = _hub()
    assert hub.events_channel(SESSION) == f"t:sessions:rt:session:{SESSION}"
    assert hub.doc_channel(SESSION) == f"t:sessions:rt:doc:{SESSION}"


def test_events_reach_every_local_member_and_addressed_ones_only_their_user() -> None:
    hub, _ = _hub()
    alice, bob, doc = Member("alice", 1), Member("bob", 2), Member("alice", 3)
    _join(hub, [alice, bob], [doc])
    raw = orjson.dumps({"type": "chat.message", "seq": 4, "session_id": SESSION, "body": "hi"})
    hub._handle(_message(hub.events_channel(SESSION), raw))
    assert [e for e, _ in alice.events] == [orjson.loads(raw)]
    assert bob.events[0][1] == raw.decode()
    assert doc.events[0][0]["type"] == "chat.message", "doc sockets see controls too"

    addressed = {"type": "error", "code": "permission_denied", "_to_user": "bob"}
    hub._handle(_message(hub.events_channel(SESSION), orjson.dumps(addressed)))
    assert len(alice.events) == 1
    event, text = bob.events[1]
    assert "_to_user" not in event
    assert "_to_user" not in text
    assert len(doc.events) == 1
    hub._handle(_message(hub.events_channel(SESSION), b"not json"))
    hub._handle(_message("t:sessions:rt:session:other", raw))
    assert len(bob.events) == 2


async def test_document_frames_are_relayed_by_kind_origin_and_target() -> None:
    redis = RecordingRedis()
    hub, _ = _hub(redis)
    one, two, three = Member("a", 1), Member("b", 2), Member("c", 3)
    _join(hub, [], [one, two, three])
    channel = hub.doc_channel(SESSION)
    hub._handle(_message(channel, DocFrame(DOC_UPDATE, NOBODY, b"U", version=1).encode()))
    assert one.frames == two.frames == three.frames == [sync_update(b"U")]

    state = encode_awareness([AwarenessEntry(5, 1, "{}")])
    hub._handle(_message(channel, DocFrame(DOC_AWARENESS, one.id_bytes, state).encode()))
    assert len(one.frames) == 1, "the sender does not get its own awareness back"
    assert two.frames[-1] == awareness_message(state)
    hub._handle(_message(channel, DocFrame(DOC_AWARENESS, NOBODY, state,
                                           target=three.id_bytes).encode()))
    assert (len(two.frames), len(three.frames)) == (2, 3)

    one.entries = [AwarenessEntry(5, 1, '{"n":1}')]
    two.entries = [AwarenessEntry(6, 2, '{"n":2}')]
    hub._handle(_message(channel, DocFrame(DOC_QUERY, three.id_bytes).encode()))
    await _settle(hub)
    (published_channel, data), = redis.published
    answer = DocFrame.decode(data)
    assert published_channel == channel
    assert answer.target == three.id_bytes
    assert sorted(e.client_id for e in parse_awareness(answer.payload)) == [5, 6]


async def test_a_lasting_hole_in_document_versions_resyncs_the_room() -> None:
    hub, resyncs = _hub()
    hub.GAP_WAIT = 0.05
    member = Member("a", 1)
    _join(hub, [], [member])
    hub.note_doc_version(SESSION, 5)
    channel = hub.doc_channel(SESSION)
    for version in (6, 8, 7):  # out of order, but no hole remains
        hub._handle(_message(channel, DocFrame(DOC_UPDATE, NOBODY, b"u", version=version).encode()))
    await _settle(hub)
    room = hub.rooms[SESSION]
    assert room.doc_version == 8
    # The hole at 7 (seen when 8 came) started a gap check; once it has run, the proof.
    assert room.doc_check is not None
    await asyncio.wait_for(room.doc_check, 5)
    assert resyncs.calls == []
    hub._handle(_message(channel, DocFrame(DOC_UPDATE, NOBODY, b"u", version=10).encode()))
    await _until(lambda: resyncs.calls)
    await _until(lambda: member.frames[-1] == sync_update(b"FULL"))
    assert hub.rooms[SESSION].doc_version == 10


async def test_recovery_refills_every_connection_and_resyncs_documents() -> None:
    hub, resyncs = _hub()
    events, doc = Member("a", 1), Member("b", 2)
    _join(hub, [events], [doc])
    hub._outage = True
    hub._pending_batch = {hub.events_channel(SESSION)}
    hub._handle({"type": "subscribe", "channel": hub.events_channel(SESSION).encode(), "data": 1})
    assert (events.recoveries, doc.recoveries) == (1, 1)
    await _until(lambda: resyncs.calls == [SESSION])


async def test_the_sequence_check_catches_up_members_that_fell_behind() -> None:
    hub, _ = _hub()
    ahead, behind = Member("a", 1), Member("b", 2)
    ahead.delivered, behind.delivered = 12, 9
    _join(hub, [ahead, behind], [])
    await hub.check_seqs()
    assert (ahead.caught_up, behind.caught_up) == (0, 1)


async def test_drain_closes_everyone_with_1012_and_waits_for_them() -> None:
    hub, _ = _hub()
    members = [Member("a", 1), Member("b", 2)]
    _join(hub, members[:1], members[1:])
    for member in members:
        member.released.set()
    await hub.drain(1.0)
    assert hub.draining
    assert [m.closed for m in members] == [1012, 1012]


# --- presence in real Redis ------------------------------------------------------------------


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_presence_entries_expire_and_exactly_one_sweeper_announces_them(
        redis: Redis, redis_prefix: str) -> None:
    keys = KeySpace(redis_prefix + "presence-test:", "gateway")
    clock = Clock()
    mine = PresenceStore(redis, keys, ttl=30, clock=clock)
    other = PresenceStore(redis, keys, ttl=30, clock=clock)
    entry = {"connection_id": "c1", "user_id": "u1", "status": "online", "cursor": None,
             "since": "2024-01-01T00:00:00Z"}
    await mine.put(SESSION, entry)
    await mine.put(SESSION, {**entry, "connection_id": "c2", "user_id": "u2"})
    assert [e["user_id"] for e in await other.entries(SESSION)] == ["u1", "u2"]
    assert 0 < await redis.pttl(mine.key(SESSION)) <= 30_000

    clock.now += 20
    await mine.refresh([(SESSION, entry)])  # c2's gateway died and stopped beating
    clock.now += 15
    assert [e["user_id"] for e in await other.entries(SESSION)] == ["u1"]
    swept = await asyncio.gather(mine.sweep(SESSION), other.sweep(SESSION))
    assert sorted(len(s) for s in swept) == [0, 1]
    assert [e["connection_id"] for s in swept for e in s] == ["c2"]
    assert await mine.remove(SESSION, "c1")
    assert not await other.remove(SESSION, "c1")


async def test_the_heartbeat_refreshes_local_entries_and_announces_swept_ones(
        redis: Redis, redis_prefix: str) -> None:
    hub, _ = _hub(redis)
    clock = Clock()
    hub.presence = PresenceStore(redis, KeySpace(redis_prefix + "hb:", "gateway"), 30, clock)
    hub.channels = RealtimeChannels(redis_prefix + "hb:")
    # What the hub publishes, read off real Redis as every other gateway would.
    listener = redis.pubsub()
    await listener.subscribe(hub.events_channel(SESSION))
    assert (await listener.get_message(timeout=2.0) or {}).get("type") == "subscribe"
    local = Member("alive", 1)
    local.presence_entry = lambda: {  # type: ignore[method-assign]
        "connection_id": "alive", "user_id": "alive", "status": "online", "cursor": None,
        "since": "x"}
    _join(hub, [local], [])
    await hub.presence.put(SESSION, {"connection_id": "ghost", "user_id": "ghost",
                                     "status": "online", "cursor": None, "since": "x"})
    clock.now += 31
    await hub.heartbeat()
    # Redis delivers a channel's messages in order: all the hub published comes before this.
    await redis.publish(hub.events_channel(SESSION), b'{"type":"end-of-test"}')
    published: list[dict[str, Any]] = []
    deadline = time.monotonic() + 3.0
    while not published or published[-1]["type"] != "end-of-test":
        assert time.monotonic() < deadline, "the marker did not arrive"
        message = await listener.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None:
            published.append(orjson.loads(message["data"]))
    published.pop()
    await listener.aclose()
    assert [(e["type"], e["user_id"]) for e in published] == [("presence.left", "ghost")]
    assert [e["user_id"] for e in await hub.presence.entries(SESSION)] == ["alive"]


async def _settle(hub: Hub) -> None:
    await asyncio.gather(*list(hub._background), return_exceptions=True)


async def _until(check: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.005)


def _claims_hub(redis: Redis, prefix: str) -> Hub:
    """A hub on real Redis under `prefix`, with a 0.3 s claim/presence TTL."""
    hub, _ = _hub(redis, REALTIME_PRESENCE_HEARTBEAT_SECONDS="0.1",
                  REALTIME_PRESENCE_TTL_SECONDS="0.3")
    hub.channels = RealtimeChannels(prefix)
    hub._claims = KeySpace(prefix, "gateway")
    hub.presence = PresenceStore(redis, KeySpace(prefix, "gateway"), 0.3)
    return hub


async def test_an_awareness_client_id_belongs_to_its_first_connection_until_released(
        redis: Redis, redis_prefix: str) -> None:
    hub = _claims_hub(redis, redis_prefix + "claims:")
    assert await hub.claim_awareness(SESSION, 7, "alice")
    assert not await hub.claim_awareness(SESSION, 7, "mallory")
    assert await hub.claim_awareness(SESSION, 7, "alice"), "its owner renews it"
    assert await hub.claim_awareness("44444444-4444-4444-4444-444444444444", 7, "mallory"), \
        "ids are per session"
    deadline = time.monotonic() + 5
    while not await hub.claim_awareness(SESSION, 7, "mallory"):
        assert time.monotonic() < deadline, "an unrenewed claim lapses after the TTL"
        await asyncio.sleep(0.05)
    assert not await hub.claim_awareness(SESSION, 7, "alice")
    await hub.release_awareness(SESSION, [7], "alice")
    assert not await hub.claim_awareness(SESSION, 7, "bob"), "only its owner releases a claim"
    await hub.release_awareness(SESSION, [7], "mallory")
    assert await hub.claim_awareness(SESSION, 7, "bob"), "released: free at once"


async def test_the_hub_renews_the_claims_of_live_connections_so_quiet_ones_keep_their_ids(
        redis: Redis, redis_prefix: str) -> None:
    """A background tab may send nothing for longer than the TTL; its cursor stays its own."""
    hub = _claims_hub(redis, redis_prefix + "renew:")
    quiet = Member("alice", 1)
    quiet.claimed = [7]
    hub.room(SESSION).docs.add(cast(DocMember, quiet))
    assert await hub.claim_awareness(SESSION, 7, quiet.claim_owner)
    deadline = time.monotonic() + 1.0  # more than three TTLs
    while time.monotonic() < deadline:
        await hub.heartbeat()
        assert not await hub.claim_awareness(SESSION, 7, "mallory"), "a live claim never lapses"
        await asyncio.sleep(0.1)
    await hub.release_awareness(SESSION, [7], quiet.claim_owner)


async def test_a_query_answer_comes_in_frames_a_joiner_may_send_back() -> None:
    """y-websocket re-sends every state it hears as one update: an answer of more than
    MAX_AWARENESS_CLIENTS entries would get the joiner closed, so it is cut into chunks."""
    recording = RecordingRedis()
    hub, _ = _hub(recording)
    peers = [Member("u", n) for n in range(1, 4)]
    for n, peer in enumerate(peers):
        peer.entries = [AwarenessEntry(n * 100 + i, 1, '{"u":1}') for i in range(30)]
    _join(hub, [], peers)
    joiner = bytes([9]) * 16
    hub._handle(_message(hub.doc_channel(SESSION), DocFrame(DOC_QUERY, joiner).encode()))
    await _settle(hub)
    answers = [DocFrame.decode(data) for _, data in recording.published]
    counts = [len(parse_awareness(frame.payload)) for frame in answers]
    assert sum(counts) == 90
    assert max(counts) <= MAX_AWARENESS_CLIENTS
    assert all(frame.target == joiner for frame in answers)


async def test_every_document_socket_gets_the_same_tiny_keepalive() -> None:
    hub, _ = _hub()
    members = [Member("u", n) for n in (1, 2)]
    for member in members:
        hub.room(SESSION).docs.add(cast(DocMember, member))
    hub.room(SESSION).events.add(cast(EventsMember, Member("u", 3)))
    hub.keep_docs_alive()
    assert [m.frames for m in members] == [[b"\x01\x01\x00"]] * 2
    assert members[0].frames[0] is members[1].frames[0], "one bytes object for every socket"
    assert parse_awareness(members[0].frames[0][2:]) == ()


async def test_an_event_for_one_user_reaches_their_local_sockets_when_redis_is_down() -> None:
    # A real client on a port where nothing listens: every publish fails as in an outage.
    dead = create_redis("redis://127.0.0.1:1/0")
    try:
        hub, _ = _hub(dead)
        ada, grace = Member("ada", 1), Member("grace", 2)
        _join(hub, [ada, grace], [])
        refusal = {"type": "error", "session_id": SESSION, "code": "permission_denied"}
        assert not await hub.publish(SESSION, refusal)
        await hub.tell_user(SESSION, "ada", refusal)
        assert [event for event, _ in ada.events] == [refusal]
        assert grace.events == [], "only the user it is meant for"
    finally:
        await dead.aclose()
