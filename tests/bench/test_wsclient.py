"""The fan-out benchmark's lean listener against a real aiohttp WebSocket server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from bench.wsclient import HandshakeError, listen, masked_frame


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)  # so receive() returns the pong
        await ws.prepare(request)
        await ws.send_str("small")
        await ws.send_str("x" * 300)  # 16-bit length
        await ws.send_bytes(b"\x00" * 70_000)  # 64-bit length
        await ws.ping(b"are you there")
        pong = await ws.receive()
        await ws.send_str(f"pong:{pong.data.decode()}" if pong.type == WSMsgType.PONG else "no pong")
        await ws.close(code=4410, message=b"ended")
        return ws

    async def refused(request: web.Request) -> web.Response:
        return web.Response(status=403, text="no")

    app = web.Application()
    app.router.add_get("/ws", socket)
    app.router.add_get("/refused", refused)
    async with TestServer(app, host="127.0.0.1") as srv:
        yield srv


async def test_the_listener_receives_every_message_answers_pings_and_sees_the_close_code(
        server: TestServer) -> None:
    received: list[bytes] = []
    listener = await listen(f"ws://127.0.0.1:{server.port}/ws?access_token=t", received.append)
    code = await asyncio.wait_for(listener.closed, 5)
    assert code == 4410
    assert received == [b"small", b"x" * 300, b"\x00" * 70_000, b"pong:are you there"]


async def test_a_refused_upgrade_is_an_error_not_a_hang(server: TestServer) -> None:
    with pytest.raises(HandshakeError, match="403"):
        await listen(f"ws://127.0.0.1:{server.port}/refused", lambda _: None, timeout=5)


def test_client_frames_are_masked_and_small() -> None:
    frame = masked_frame(0x9, b"hi")
    assert frame[0] == 0x89
    assert frame[1] == 0x80 | 2
    mask, body = frame[2:6], frame[6:]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(body)) == b"hi"
    with pytest.raises(ValueError, match="under 126 bytes"):
        masked_frame(0x9, b"x" * 126)
