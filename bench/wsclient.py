"""A lean receive-only WebSocket client for the fan-out measurement (RFC 6455).

The fan-out scenario has 500 sockets on this machine receive 50,000 frames/s.
A general-purpose client (the `websockets` library: a generator-based frame
parser and a message assembler per socket, ~20 us per frame on the default
event loop) spent as much CPU as the gateways it measured, and on two cores
the latency it reported was the load generator queueing its own reads. This
client does only what a listener needs: the opening handshake with its
Sec-WebSocket-Accept check, then a tight parse of unmasked server frames in
`data_received`, answering pings and close frames (masked, as clients must).
It is independent of the gateway's code, like the other bench clients.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_MAX_HANDSHAKE = 16 * 1024


class HandshakeError(Exception):
    """The server did not accept the WebSocket upgrade."""


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A final client-to-server frame; clients must mask (RFC 6455, section 5.3)."""
    size = len(payload)
    if size >= 126:
        raise ValueError("control and reply frames of this client stay under 126 bytes")
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | size) + mask + body


class ListenerProtocol(asyncio.Protocol):
    """Calls `on_message(payload)` for every text or binary message, in order."""

    def __init__(self, request: bytes, key: bytes, on_message: Callable[[bytes], None]) -> None:
        self._request = request
        self._accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())  # noqa: S324 - RFC 6455
        self._on_message = on_message
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self.opened.done() and not self._handshake():
            return
        self._frames()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or HandshakeError("connection closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    # --- protocol ---------------------------------------------------------------------------

    def _handshake(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HANDSHAKE:
                self._fail(HandshakeError("oversized handshake response"))
            return False
        head = bytes(self._buffer[:end]).split(b"\r\n")
        del self._buffer[:end + 4]
        status = head[0].split(b" ", 2)
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if len(status) < 2 or status[1] != b"101":
            self._fail(HandshakeError(f"upgrade refused: {head[0].decode(errors='replace')}"))
            return False
        if headers.get(b"sec-websocket-accept") != self._accept:
            self._fail(HandshakeError("wrong Sec-WebSocket-Accept"))
            return False
        self.opened.set_result(None)
        return True

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self._transport is not None:
            self._transport.close()

    def _frames(self) -> None:
        buf = self._buffer
        pos, size = 0, len(buf)
        while size - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length = second & 0x7F
            start = pos + 2
            if length == 126:
                if size - start < 2:
                    break
                length = (buf[start] << 8) | buf[start + 1]
                start += 2
            elif length == 127:
                if size - start < 8:
                    break
                (length,) = struct.unpack_from("!Q", buf, start)
                start += 8
            if second & 0x80:  # servers must not mask
                self._close(1002)
                return
            end = start + length
            if end > size:
                break
            self._frame(first & 0x80, first & 0x0F, bytes(buf[start:end]))
            pos = end
        if pos:
            del buf[:pos]

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode in (_OP_TEXT, _OP_BINARY, _OP_CONT):
            if fin and not self._fragments:
                self._on_message(payload)
            elif fin:
                self._fragments.append(payload)
                self._on_message(b"".join(self._fragments))
                self._fragments.clear()
            else:
                self._fragments.append(payload)
        elif opcode == _OP_PING and self._transport is not None:
            self._transport.write(masked_frame(_OP_PONG, payload[:125]))
        elif opcode == _OP_CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            self._close(self.close_code if self.close_code != 1005 else 1000)

    def _close(self, code: int) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(masked_frame(_OP_CLOSE, struct.pack("!H", code)))
            self._transport.close()

    def close(self) -> None:
        """Start the closing handshake (1000); `closed` resolves when the TCP connection ends."""
        self._close(1000)


async def listen(url: str, on_message: Callable[[bytes], None], *,
                 timeout: float = 10.0) -> ListenerProtocol:
    """Open `url` (ws://host:port/path?query) and deliver its messages to `on_message`."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or parts.hostname is None:
        raise ValueError("the listener speaks plain ws:// on loopback only")
    key = base64.b64encode(os.urandom(16))
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc
    request = (f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(
        loop.create_connection(lambda: ListenerProtocol(request, key, on_message),
                               parts.hostname, parts.port or 80), timeout)
    await asyncio.wait_for(asyncio.shield(protocol.opened), timeout)
    return protocol
