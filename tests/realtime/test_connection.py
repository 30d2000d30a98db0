"""Connections without a network: bounded queues (1013), flushing closes, events-socket behaviour."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

import orjson
from tandem.sessions.v1 import sessions_pb2
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from gateway.auth import Auth
from gateway.errors import ApiError
from gateway.realtime.connection import DIRECT_WRITE_LIMIT, Connection
from gateway.realtime.events import EventsConnection
from gateway.realtime.hub import Hub
from gateway.realtime.wsframes import wire_frame
from services.common.identity import Claims
from tests.realtime.fakes import FakeBackends, FakeHub, FakeSocket, config

SESSION = "11111111-1111-1111-1111-111111111111"


async def until(check: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll a condition with a deadline (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.005)


async def test_a_client_that_cannot_keep_up_is_closed_with_1013() -> None:
    ws = FakeSocket()
    conn = Connection(ws, session_id=SESSION, user_id="u", queue_limit=10, close_timeout=0.2)
    conn.start()
    ws.stall()
    assert conn.send("first")
    await until(lambda: conn.queued == 0)  # the writer holds it, stuck on the socket
    assert all(conn.send(f"frame {i}") for i in range(10))
    assert conn.queued == 10
    assert not conn.send("one too many")
    assert conn.close_code == 1013
    assert conn.queued == 0, "the backlog is dropped, not kept in memory"
    # The stuck writer is cancelled; the close gives up after close_timeout.
    await asyncio.wait_for(conn.finished.wait(), 2)
    assert not conn.send("after close")
    await conn.stop()


async def test_a_flushing_close_writes_every_queued_frame_first() -> None:
    ws = FakeSocket()
    conn = Connection(ws, session_id=SESSION, user_id="u", queue_limit=100)
    ws.stall()
    conn.start()
    for i in range(50):
        conn.send(f"f{i}")
    conn.close(1012, "gateway restarting")
    assert not conn.send("late")
    ws.resume()
    await asyncio.wait_for(conn.finished.wait(), 2)
    assert ws.frames == [f"f{i}" for i in range(50)]
    assert ws.closed_with == (1012, b"gateway restarting")
    await conn.stop()
    assert conn.final_code() == 1012


def _events_conn(ws: FakeSocket, backends: FakeBackends | None = None, *,
                 expires_in: float = 3600.0, clock: Callable[[], float] = time.time,
                 **env: str) -> EventsConnection:
    auth = Auth(Claims("user-1", time.time() + expires_in, "jti", "octocat"), "token")
    return EventsConnection(
        ws, hub=cast(Hub, FakeHub()), backends=cast(Any, backends or FakeBackends()),
        verifier=None, config=config(**env), session_id=SESSION, auth=auth, clock=clock)


def _welcome(conn: EventsConnection, last_seq: int) -> None:
    session = sessions_pb2.Session(id=SESSION, title="t", role=sessions_pb2.ROLE_EDITOR,
                                   status=sessions_pb2.SESSION_STATUS_ACTIVE, last_seq=last_seq)
    conn.start()
    conn.welcome(session, [], [])


def _live(backends: FakeBackends, seq: int, kind: str = "chat.message",
          **payload: Any) -> tuple[dict[str, Any], str]:
    """A live copy of event `seq`, stored in the log first unless it already is."""
    if all(e.seq != seq for e in backends.sessions.log):
        backends.sessions.add(SESSION, seq, kind, **payload)
    event = {"type": kind, "seq": seq, "session_id": SESSION, "at": None, **payload}
    return event, orjson.dumps(event).decode()


async def test_bad_frames_get_error_events_and_the_connection_stays() -> None:
    ws = FakeSocket()
    conn = _events_conn(ws)
    _welcome(conn, 0)
    for text in ("not json", '{"type": "nope"}', '{"type": "chat.send"}', "[]"):
        await conn.handle_text(text)
    conn.handle_binary()
    await conn.handle_text('{"type": "ping", "id": 1}')
    await until(lambda: ws.of_type("pong"))
    errors = ws.of_type("error")
    assert len(errors) == 5
    assert all(e["code"] == "invalid_argument" and e["session_id"] == SESSION for e in errors)
    assert ws.of_type("pong")[0]["id"] == 1
    assert not conn.closing
    await conn.finish()
    await conn.stop()


async def test_messages_beyond_the_rate_limit_are_refused_with_rate_limited() -> None:
    ws = FakeSocket()
    conn = _events_conn(ws, REALTIME_RATE_PER_SECOND="1", REALTIME_RATE_BURST="5")
    _welcome(conn, 0)
    for _ in range(8):
        await conn.handle_text('{"type": "ping"}')
    await until(lambda: len(ws.events()) >= 9)
    assert len(ws.of_type("pong")) == 5
    limited = [e for e in ws.of_type("error") if e["code"] == "rate_limited"]
    assert len(limited) == 3
    assert limited[0]["retry_after"] > 0
    await conn.finish()
    await conn.stop()


async def test_hello_replays_from_the_log_then_live_events_follow_without_a_seam() -> None:
    ws = FakeSocket()
    backends = FakeBackends()
    for seq in range(1, 1201):  # more than one page of ListEvents
        backends.sessions.add(SESSION, seq, "chat.message", body=f"m{seq}")
    conn = _events_conn(ws, backends)
    _welcome(conn, 1200)
    # Live events arrive before the client's hello: they must wait for the replay.
    conn.on_event(*_live(backends, 1201))
    conn.on_event(*_live(backends, 1200))
    await conn.handle_text('{"type": "hello", "last_seq": 5}')
    conn.on_event(*_live(backends, 1202))
    conn.on_event(*_live(backends, 1201))
    await until(lambda: len(ws.of_type("chat.message")) >= 1197)
    seqs = [e["seq"] for e in ws.of_type("chat.message")]
    assert seqs == list(range(6, 1203))
    assert backends.sessions.list_calls == [5, 1005]
    await conn.finish()
    await conn.stop()


async def test_a_gap_in_live_events_is_refilled_from_the_log() -> None:
    ws = FakeSocket()
    backends = FakeBackends()
    conn = _events_conn(ws, backends)
    _welcome(conn, 0)
    conn.open_gate()
    conn.on_event(*_live(backends, 1))
    _live(backends, 2)  # stored, but its pub/sub message was lost
    _live(backends, 3)
    conn.on_event(*_live(backends, 4))
    conn.on_event(*_live(backends, 5))
    await until(lambda: len(ws.of_type("chat.message")) == 5)
    assert [e["seq"] for e in ws.of_type("chat.message")] == [1, 2, 3, 4, 5]
    conn.on_event(*_live(backends, 5))
    conn.on_event(*_live(backends, 6))
    await until(lambda: len(ws.of_type("chat.message")) == 6)
    assert [e["seq"] for e in ws.of_type("chat.message")] == [1, 2, 3, 4, 5, 6]
    await conn.finish()
    await conn.stop()


async def test_chat_is_acknowledged_after_the_write_with_its_seq() -> None:
    ws = FakeSocket()
    backends = FakeBackends()
    conn = _events_conn(ws, backends)
    _welcome(conn, 0)
    await conn.handle_text('{"type": "chat.send", "body": "hello", "client_id": "c-1"}')
    await until(lambda: ws.of_type("chat.ack"))
    ack = ws.of_type("chat.ack")[0]
    assert (ack["client_id"], ack["seq"], ack["id"]) == ("c-1", 1, "m1")
    assert backends.sessions.log[0].seq == 1
    await conn.finish()
    await conn.stop()


async def test_removal_and_end_close_after_the_event_is_sent() -> None:
    for kind, payload, code in (("member.removed", {"user_id": "user-1"}, 4403),
                                ("session.ended", {}, 4410)):
        ws = FakeSocket()
        backends = FakeBackends()
        conn = _events_conn(ws, backends)
        _welcome(conn, 0)
        conn.open_gate()
        conn.on_event(*_live(backends, 1, kind, **payload))
        await asyncio.wait_for(conn.finished.wait(), 2)
        assert ws.events()[-1]["type"] == kind
        assert ws.closed_with is not None
        assert ws.closed_with[0] == code
        await conn.finish()
        await conn.stop()


async def test_someone_elses_removal_changes_nothing() -> None:
    ws = FakeSocket()
    backends = FakeBackends()
    conn = _events_conn(ws, backends)
    _welcome(conn, 0)
    conn.open_gate()
    conn.on_event(*_live(backends, 1, "member.role_changed", user_id="user-1", role="viewer"))
    conn.on_event(*_live(backends, 2, "member.removed", user_id="someone-else"))
    await until(lambda: len(ws.events()) == 3)
    assert conn.role == "viewer"
    assert not conn.closing
    await conn.finish()
    await conn.stop()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_expired_token_gets_a_warning_then_4401_after_the_grace() -> None:
    ws = FakeSocket()
    clock = Clock(time.time())
    conn = _events_conn(ws, expires_in=0.05, clock=clock, REALTIME_AUTH_GRACE_SECONDS="0.2")
    _welcome(conn, 0)
    clock.now += 0.1
    await until(lambda: [e for e in ws.of_type("error") if e["code"] == "token_expired"])
    assert not conn.closing
    clock.now += 0.2
    await asyncio.wait_for(conn.finished.wait(), 3)
    assert ws.closed_with is not None
    assert ws.closed_with[0] == 4401
    await conn.finish()
    await conn.stop()


async def test_a_fresh_token_within_the_grace_keeps_the_connection() -> None:
    ws = FakeSocket()
    clock = Clock(time.time())
    conn = _events_conn(ws, expires_in=0.05, clock=clock, REALTIME_AUTH_GRACE_SECONDS="0.3")

    class Verifier:
        async def verify(self, token: str) -> Claims:
            if token == "other-user":
                return Claims("user-2", clock.now + 3600, "j2", "hubot")
            # Short-lived on purpose: its own expiry is the positive marker below.
            return Claims("user-1", clock.now + 0.5, "j3", "octocat")

    def expired_warnings() -> list[dict[str, Any]]:
        return [e for e in ws.of_type("error") if e["code"] == "token_expired"]

    conn.verifier = cast(Any, Verifier())
    _welcome(conn, 0)
    clock.now += 0.1
    await until(expired_warnings)
    await conn.handle_text('{"type": "auth", "access_token": "other-user"}')
    await until(lambda: [e for e in ws.of_type("error") if e["code"] == "unauthenticated"])
    await conn.handle_text('{"type": "auth", "access_token": "fresh"}')
    await until(lambda: ws.of_type("auth.ok"))
    assert conn.token == "fresh"
    # Past the old token's deadline (expiry + grace) by 0.35 s, past the fresh token's expiry,
    # within its grace: the watcher, waking at the fresh expiry, warns again instead of closing.
    clock.now += 0.6
    await until(lambda: len(expired_warnings()) == 2)
    assert not conn.closing
    await conn.finish()
    await conn.stop()


async def test_refill_failure_for_a_non_member_closes_with_4403() -> None:
    ws = FakeSocket()
    backends = FakeBackends()
    backends.sessions.fail_with = ApiError(404, "not_found", "session not found")
    conn = _events_conn(ws, backends)
    _welcome(conn, 0)
    conn.open_gate()
    conn.on_outage()
    conn.on_recovered()
    await asyncio.wait_for(conn.finished.wait(), 2)
    assert [e["code"] for e in ws.of_type("error")] == ["unavailable"]
    assert ws.closed_with is not None
    assert ws.closed_with[0] == 4403
    await conn.finish()
    await conn.stop()


async def test_events_overtaking_each_other_do_not_cause_a_refill() -> None:
    ws = FakeSocket()
    backends = FakeBackends()
    conn = _events_conn(ws, backends)
    _welcome(conn, 0)
    conn.open_gate()
    second = _live(backends, 2)
    first = _live(backends, 1)
    conn.on_event(*second)
    conn.on_event(*first)
    await until(lambda: len(ws.of_type("chat.message")) == 2)
    assert conn._gap_check is not None
    await conn._gap_check
    assert backends.sessions.list_calls == []
    assert [e["seq"] for e in ws.of_type("chat.message")] == [1, 2]
    await conn.finish()
    await conn.stop()


class RecordingTransport:
    """An asyncio transport's write side: records bytes; `backlog` is the unsent buffer size."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.backlog = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.backlog


def parse_frames(data: bytes) -> list[tuple[Opcode, bytes]]:
    """Server frames parsed by the websockets library's own RFC 6455 parser."""
    reader = StreamReader()
    reader.feed_data(bytes(data))
    reader.feed_eof()
    frames = []
    while reader.buffer:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frame = done.value
        else:
            raise AssertionError("incomplete frame on the wire")
        assert frame.fin
        assert not (frame.rsv1)
        assert not (frame.rsv2)
        assert not (frame.rsv3)
        frames.append((frame.opcode, bytes(frame.data)))
    return frames


def test_wire_frames_use_every_length_encoding() -> None:
    payloads: list[str | bytes] = ["", "é" * 10, "x" * 125, "y" * 126, b"\x00" * 65535,
                                   "z" * 65536, b"\x01\x02" * 40_000]
    wire = b"".join(wire_frame(p) for p in payloads)
    expected = [(Opcode.TEXT, p.encode()) if isinstance(p, str) else (Opcode.BINARY, p)
                for p in payloads]
    assert parse_frames(wire) == expected


async def test_an_idle_connection_writes_frames_straight_to_the_transport() -> None:
    ws, transport = FakeSocket(), RecordingTransport()
    conn = Connection(ws, session_id=SESSION, user_id="u", queue_limit=10)
    conn.start(transport)
    assert conn.send('{"type":"chat.message"}')
    assert conn.send(b"\x00\x01")
    assert conn.queued == 0, "no queue involved"
    assert ws.frames == [], "no writer task involved"
    assert parse_frames(transport.data) == [(Opcode.TEXT, b'{"type":"chat.message"}'),
                                            (Opcode.BINARY, b"\x00\x01")]
    await conn.stop()


async def test_a_full_transport_buffer_sends_frames_through_the_queue_in_order() -> None:
    ws, transport = FakeSocket(), RecordingTransport()
    conn = Connection(ws, session_id=SESSION, user_id="u", queue_limit=100)
    conn.start(transport)
    assert conn.send("a")
    transport.backlog = DIRECT_WRITE_LIMIT + 1  # the client stopped reading for a moment
    ws.stall()
    assert conn.send("b")
    assert conn.send("c")
    await until(lambda: conn.queued == 1)  # the writer holds "b", waiting on the socket
    transport.backlog = 0
    # The queue is not empty and a write is in flight: "d" must wait its turn.
    assert conn.send("d")
    assert parse_frames(transport.data) == [(Opcode.TEXT, b"a")]
    ws.resume()
    await until(lambda: conn.queued == 0 and ws.frames == ["b", "c", "d"])
    assert conn.send("e")  # idle again: direct
    assert parse_frames(transport.data) == [(Opcode.TEXT, b"a"), (Opcode.TEXT, b"e")]
    await conn.stop()


async def test_no_direct_write_once_the_socket_or_transport_is_closing() -> None:
    ws, transport = FakeSocket(), RecordingTransport()
    conn = Connection(ws, session_id=SESSION, user_id="u", queue_limit=10)
    conn.start(transport)
    transport.closing = True
    assert conn.send("queued")
    await until(lambda: ws.frames == ["queued"])
    assert transport.data == b""
    transport.closing = False
    await ws.close(code=1000)  # e.g. aiohttp answered the client's close frame
    conn.send("late")
    assert transport.data == b"", "nothing may follow a close frame on the wire"
    await conn.stop()
