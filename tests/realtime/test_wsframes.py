"""The hand-written server frames decode with aiohttp's own WebSocket client, at every length."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.realtime.wsframes import FrameCache, wire_frame

# 7-bit lengths (0, 125), 16-bit (126, 65535), 64-bit (65536 and up); text with multi-byte
# characters, whose length on the wire is in bytes.
PAYLOADS: list[str | bytes] = ["", "é" * 10, "x" * 125, "y" * 126, b"\x00" * 65535,
                               "z" * 65536, b"\x01\x02" * 40_000, "ü" * 70_000]


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        for payload in PAYLOADS:
            # What Connection.send does on its direct path.
            transport.write(wire_frame(payload))
        await ws.receive()  # the client's close
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("/ws"))
    await server.close()


async def test_aiohttps_client_reads_every_length_encoding(server_url: str) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(
            server_url, max_msg_size=0) as ws:
        received = []
        for _ in PAYLOADS:
            msg = await asyncio.wait_for(ws.receive(), 10)
            received.append(msg)
        await ws.close()
    for msg, payload in zip(received, PAYLOADS, strict=True):
        if isinstance(payload, str):
            assert msg.type is aiohttp.WSMsgType.TEXT
        else:
            assert msg.type is aiohttp.WSMsgType.BINARY
        assert msg.data == payload


def test_the_cache_builds_a_frame_once_per_object_it_is_handed() -> None:
    cache = FrameCache()
    event = '{"type":"chat.message"}'
    first = cache.wire(event)
    assert cache.wire(event) is first, "the same object: the bytes built once"
    other = '{"type":"chat.message"}x'[:-1]  # equal text, another object
    assert cache.wire(other) == first
    assert cache.wire(b"\x00") == wire_frame(b"\x00")
