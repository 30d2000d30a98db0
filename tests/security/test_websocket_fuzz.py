"""Hostile frames on both sockets: each gets an `error` event or a defined close code, and the
gateway keeps serving everyone else."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import socket
import string
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from pycrdt import Doc, Text, create_update_message
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.realtime_scenarios import DocClient, EventsClient, ws_url
from gateway.realtime.config import DOC_FRAME_FRAMING
from gateway.realtime.ywebsocket import (
    AwarenessEntry,
    awareness_message,
    encode_awareness,
)
from services.common.config import DOCUMENT_MAX_BYTES
from tests.helpers.realtime import Crew
from tests.reliability.support import FaultyWorld, aget

pytestmark = pytest.mark.e2e

SEED = int(os.environ.get("TANDEM_FUZZ_SEED", "20261122"))
FRAMES = 150
EVENTS_MAX = 64 * 1024
# The document socket's largest frame: DOCUMENT_MAX_BYTES (the platform's default) plus framing.
DOC_MAX = DOCUMENT_MAX_BYTES + DOC_FRAME_FRAMING
# docs/api.md: 1003 text on the doc socket, 1007 not a y-websocket message (or bytes that are
# not UTF-8 in a text frame), 1009 too big, 1002 a broken WebSocket frame, 4429 a document
# socket over its rate limit.
DEFINED_CLOSES = {1002, 1003, 1007, 1009, 4429}


@dataclass
class Room:
    crew: Crew
    session_id: str
    url: str

    def events(self) -> str:
        return ws_url(self.url, f"/api/v1/sessions/{self.session_id}/events",
                      self.crew.editor.access_token)

    def doc(self) -> str:
        return ws_url(self.url, f"/api/v1/sessions/{self.session_id}/doc",
                      self.crew.editor.access_token)


@pytest.fixture(scope="module")
def room(secure: FaultyWorld) -> Room:
    crew = Crew.sign_in(secure.url)
    return Room(crew, crew.session(title="Fuzz"), secure.url)


@pytest.fixture
async def witnesses(room: Room) -> AsyncIterator[tuple[EventsClient, DocClient]]:
    """Clients that only behave: after the fuzzing they must still be served."""
    events = await EventsClient.connect(room.url, room.session_id, room.crew.owner.access_token)
    doc = await DocClient.connect(room.url, room.session_id, room.crew.owner.access_token)
    await asyncio.wait_for(doc.synced.wait(), 10)
    yield events, doc
    await events.close()
    await doc.close()


async def still_served(room: Room, witnesses: tuple[EventsClient, DocClient]) -> None:
    """The witnesses' sockets still work both ways, and the gateway is alive."""
    events, doc = witnesses
    ack = await events.chat("still here?")
    await events.wait_type("chat.message", where=lambda e: e["seq"] == ack["seq"])
    marker = f"<{random.Random().random()}>"
    await doc.insert(0, marker)
    other = await DocClient.connect(room.url, room.session_id, room.crew.viewer.access_token)
    try:
        await other.wait_until(lambda c: marker in c.value())
    finally:
        await other.close()
    assert (await aget(room.url + "/health")).status_code == 200


def hostile_texts(rng: random.Random) -> Iterator[str]:
    """Text frames a broken or hostile client might send on the events socket."""
    valid = [{"type": "ping", "id": 1}, {"type": "chat.send", "body": "hi", "client_id": "c1"},
             {"type": "presence.update", "cursor": {"line": 1}}, {"type": "hello", "last_seq": 0}]
    fixed = [
        "", " ", "null", "[]", "0", "-1e999", '"type"', "{", "}", "{}", '{"type": null}',
        '{"type": 42}', '{"type": "nope"}', '{"type": ["ping"]}', '{"type": "ping"',
        '{"type": "chat.send"}', '{"type": "chat.send", "body": 1, "client_id": 2}',
        '{"type": "chat.send", "body": "", "client_id": ""}',
        '{"type": "chat.send", "body": "x", "client_id": "' + "c" * 5000 + '"}',
        '{"type": "chat.send", "body": "' + "b" * 60_000 + '", "client_id": "big"}',
        '{"type": "hello", "last_seq": -5}', '{"type": "hello", "last_seq": "7"}',
        '{"type": "hello", "last_seq": 1e308}', '{"type": "hello", "last_seq": 99999999999999999999999}',
        '{"type": "presence.update", "cursor": "' + "x" * 2000 + '"}',
        '{"type": "presence.update", "status": {"a": 1}}',
        '{"type": "auth", "access_token": "not.a.jwt"}', '{"type": "auth", "access_token": 5}',
        '{"type": "ping", "id": ' + "[" * 2000 + "]" * 2000 + "}",
        "[" * 10_000 + "]" * 10_000,
        '{"type": "\\ud800"}', '{"type": "ping", "__proto__": {"x": 1}}',
        '{"type": "ping", "type": "chat.send"}',
    ]
    yield from fixed
    alphabet = string.printable + "\u00e9\u4e2d\U0001f600\u202e\x00"
    for _ in range(FRAMES - len(fixed)):
        kind = rng.randrange(4)
        if kind == 0:  # a valid frame cut short
            text = orjson.dumps(rng.choice(valid)).decode()
            yield text[: rng.randrange(1, len(text))]
        elif kind == 1:  # random characters
            yield "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 200)))
        elif kind == 2:  # a known type with random fields
            frame: dict[str, Any] = {"type": rng.choice(["chat.send", "hello", "presence.update",
                                                         "auth", "ping", "welcome", "error"])}
            for _ in range(rng.randrange(4)):
                frame[rng.choice(["body", "client_id", "last_seq", "cursor", "status",
                                  "access_token", "id"])] = rng.choice(
                    [None, True, -1, 2**70, 1.5, "", "x" * rng.randrange(100), [], {"a": [1]}])
            # The standard library writes integers of any size (orjson stops at 64 bits).
            yield json.dumps(frame)
        else:  # random bytes, as base64 so the frame is valid UTF-8 but not JSON
            yield base64.b64encode(rng.randbytes(rng.randrange(1, 300))).decode()


CLIENT_TYPES = {"hello", "chat.send", "presence.update", "auth", "ping"}


def _known(frame: str) -> bool:
    """Whether `frame` is a JSON object with a client frame type (it may still be invalid)."""
    try:
        parsed = json.loads(frame)
    except (ValueError, RecursionError):
        return False
    kind = parsed.get("type") if isinstance(parsed, dict) else None
    return isinstance(kind, str) and kind in CLIENT_TYPES


async def _next(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    event: dict[str, Any] = orjson.loads(raw)
    return event


async def _read_until_closed(ws: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await _next(ws)


async def _drain_welcome(ws: ClientConnection) -> None:
    welcome = await _next(ws)
    assert welcome["type"] == "welcome"


async def test_hostile_text_frames_each_get_an_answer_and_the_socket_stays_open(
        room: Room, witnesses: tuple[EventsClient, DocClient]) -> None:
    rng = random.Random(SEED)
    async with connect(room.events(), proxy=None, max_size=None, ping_interval=None) as ws:
        await _drain_welcome(ws)
        for frame in hostile_texts(rng):
            # Each frame is followed by a ping: everything up to its pong is the frame's answer.
            await ws.send(frame)
            await ws.send(orjson.dumps({"type": "ping", "id": "probe"}).decode())
            answers = []
            while True:
                event = await _next(ws)
                if event["type"] == "pong" and event.get("id") == "probe":
                    break
                answers.append(event)
            # Garbage gets an error naming a stable code; frames that happen to be valid get
            # their normal answer (a `hello` replays the log). The socket stays open either way.
            kinds = {e["type"] for e in answers if "seq" not in e}
            assert kinds <= {"error", "pong", "chat.ack", "presence.updated", "auth.ok"}, (
                frame[:200], answers)
            for event in answers:
                if event["type"] == "error":
                    assert event["code"], event
                    assert event["message"], event
            if not _known(frame):
                errors = [e for e in answers if e["type"] == "error"]
                assert [e["code"] for e in errors] == ["invalid_argument"], (frame[:200], answers)
        assert ws.close_code is None
    await still_served(room, witnesses)


async def test_binary_and_fragmented_frames_on_the_events_socket(
        room: Room, witnesses: tuple[EventsClient, DocClient]) -> None:
    async with connect(room.events(), proxy=None, max_size=None, ping_interval=None) as ws:
        await _drain_welcome(ws)
        for data in (b"\x00", os.urandom(1000), b'{"type": "ping"}'):
            await ws.send(data)
            error = await _next(ws)
            assert (error["type"], error["code"]) == ("error", "invalid_argument"), error
        # A message split over continuation frames is one message.
        await ws.send(iter(['{"type": "pi', 'ng", "id": ', '"frag"}']))
        pong = await _next(ws)
        assert pong == {**pong, "type": "pong", "id": "frag"}
    await still_served(room, witnesses)


@pytest.mark.parametrize(("frame", "code"), [
    pytest.param("x" * (EVENTS_MAX + 1), 1009, id="text-over-64KiB"),
    pytest.param(b"\x01" * (EVENTS_MAX + 1), 1009, id="binary-over-64KiB"),
    pytest.param(b"\xff\xfe\xfd", 1007, id="text-frame-not-utf8"),
])
async def test_events_frames_that_end_the_connection_use_a_defined_code(
        room: Room, witnesses: tuple[EventsClient, DocClient], frame: str | bytes, code: int) -> None:
    async with connect(room.events(), proxy=None, max_size=None, ping_interval=None) as ws:
        await _drain_welcome(ws)
        # Bytes sent as a text frame without the client library's UTF-8 check.
        await ws.send(frame, text=isinstance(frame, bytes) and code == 1007)
        await _read_until_closed(ws)
        assert ws.close_code == code
    await still_served(room, witnesses)


def _update(text: str) -> bytes:
    doc: Doc[Any] = Doc()
    doc.get("code", type=Text).insert(0, text)
    return create_update_message(doc.get_update())


def _awareness(entries: list[tuple[int, int, str]]) -> bytes:
    return awareness_message(encode_awareness([AwarenessEntry(*e) for e in entries]))


def hostile_doc_frames(rng: random.Random) -> Iterator[tuple[str, str | bytes]]:
    yield "text frame", "hello"
    yield "empty", b""
    yield "unknown message type", b"\x07"
    yield "truncated varint", b"\x00\x02\xff\xff"
    yield "length beyond the frame", b"\x00\x02\x7f" + b"x" * 10
    yield "trailing bytes", _update("ok") + b"\x00"
    yield "unknown sync step", b"\x00\x09\x00"
    yield "garbage update", b"\x00\x02\x05abcde"
    yield "garbage step 2", b"\x00\x01\x05\xff\xff\xff\xff\xff"
    yield "garbage state vector", b"\x00\x00\x03\xff\xff\xff"
    yield "awareness not JSON", b"\x01\x0a\x01\x05\x01\x03{x}"
    yield "awareness count absurd", b"\x01\x03abc"
    yield "awareness for 64 client ids", _awareness([(i + 1, 1, "{}") for i in range(64)])
    yield "awareness entry of 1 MB", _awareness([(77, 1, '"' + "x" * 1_000_000 + '"')])
    yield "awareness removing a stranger", _awareness([(99, 9, "null")])
    yield "auth message from a client", b"\x02\x00\x02no"
    yield "over the frame limit", b"\x00\x02\x80\x80\x80\x04" + rng.randbytes(DOC_MAX + 16)
    for i in range(12):
        yield f"random bytes {i}", rng.randbytes(rng.randrange(1, 400))
    for i in range(6):
        body = rng.randbytes(rng.randrange(1, 120))
        yield f"random update {i}", b"\x00\x02" + bytes([len(body)]) + body if len(body) < 128 else b"\x00\x02\x00"


async def test_hostile_document_frames_close_with_a_defined_code_or_are_harmless(
        room: Room, witnesses: tuple[EventsClient, DocClient]) -> None:
    """Each frame either closes the socket with a defined code, or is harmless: the socket
    still answers sync step 1, and nothing stored or relayed changed."""
    rng = random.Random(SEED)
    _, witness = witnesses
    before = room.crew.document(room.session_id)
    assert witness.value() == before["text"]
    for name, frame in hostile_doc_frames(rng):
        async with connect(room.doc(), proxy=None, max_size=None, ping_interval=None) as ws:
            code: int | None = None
            try:
                # The server may close while a big frame is still being sent.
                await ws.send(frame)
                # Then a well-formed sync step 1: a connection still open answers it.
                await ws.send(b"\x00\x00\x01\x00")
                while True:
                    raw = await asyncio.wait_for(ws.recv(), 5)
                    if isinstance(raw, bytes) and raw[:2] == b"\x00\x01":
                        break  # sync step 2: the socket still works
            except ConnectionClosed:
                code = ws.close_code
            assert code is None or code in DEFINED_CLOSES, (name, code, ws.close_reason)
        # Harmless whether or not it closed: the stored document is exactly as it was (same
        # text, no update counted: nothing was applied), and the witness's live copy too.
        stored = room.crew.document(room.session_id)
        assert (stored["text"], stored["version"]) == (before["text"], before["version"]), name
        assert witness.value() == before["text"], name
    await still_served(room, witnesses)


def _handshake(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head[:200]
    return sock


@pytest.mark.parametrize("socket_name", ["events", "doc"])
@pytest.mark.parametrize("tail", [
    pytest.param(b"\x81", id="header-cut"),
    pytest.param(b"\x81\xfe\x00", id="length-cut"),
    pytest.param(b"\x82\xff" + (2**62).to_bytes(8, "big") + b"\x00\x00\x00\x00", id="absurd-length"),
    pytest.param(b"\x81\x05hello", id="unmasked"),
    pytest.param(b"\x8f\x80\x00\x00\x00\x00", id="reserved-opcode"),
    pytest.param(b"\xf1\x80\x00\x00\x00\x00", id="reserved-bits"),
])
async def test_broken_websocket_frames_do_not_hurt_the_gateway(
        room: Room, witnesses: tuple[EventsClient, DocClient], socket_name: str, tail: bytes) -> None:
    """Bytes no WebSocket library sends: cut-off frames, absurd lengths, protocol violations."""
    url = room.events() if socket_name == "events" else room.doc()
    path = url.split(str(room.url.rsplit(":", 1)[1]), 1)[1]
    port = int(room.url.rsplit(":", 1)[1])

    def abuse() -> bytes:
        sock = _handshake(port, path)
        try:
            sock.sendall(tail)
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            return answer
        except OSError:
            return b""
        finally:
            sock.close()

    answer = await asyncio.to_thread(abuse)
    # If the server says goodbye it is with a close frame of a defined code.
    close = answer.rfind(b"\x88")
    if close >= 0 and len(answer) >= close + 4:
        code = int.from_bytes(answer[close + 2: close + 4], "big")
        assert code in DEFINED_CLOSES | {1000, 1006}, code
    await still_served(room, witnesses)
