"""WebSocket frames written by hand, straight to the socket's transport (RFC 6455, section 5.2).

Why this exists instead of aiohttp's writer: fan-out is the gateway's hot path (a chat
message in a room of 500 is 500 frame writes). Waking one writer task per socket for each
cost half the gateway's CPU: at 545865b `Connection._write_loop` was 50 % of the gateway's
samples under `make bench ARGS="--only ws_fanout"` and p99 was 4.5 s; with frames built
once per event here and written directly to idle sockets, p99 fell to 25-82 ms at
100 msg/s to 500 listeners and 49 % of the samples are the `transport.write` system call
itself (docs/performance.md, "Fan-out"; docs/architecture.md, "Fan-out writes straight to
idle sockets"). aiohttp's own writer (`WebSocketResponse.send_str`) is still what the
connection's queue uses whenever the direct path is not taken.

Only what the server sends: final, unmasked, uncompressed text and binary frames (the
sockets are opened with compress=False). tests/realtime/test_wsframes.py checks that
aiohttp's own client decodes every length encoding (7-bit, 16-bit, 64-bit).
"""

from __future__ import annotations

import struct

_OP_TEXT, _OP_BINARY = 0x1, 0x2


def wire_frame(data: str | bytes) -> bytes:
    """One unmasked, final, uncompressed server-to-client frame (RFC 6455, section 5.2)."""
    if isinstance(data, str):
        payload, first = data.encode(), 0x80 | _OP_TEXT
    else:
        payload, first = data, 0x80 | _OP_BINARY
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", first, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


class FrameCache:
    """The wire bytes of the frame being fanned out, built once for all its receivers.

    The hub hands every member of a room the same frame object, so an identity
    check finds it: one encoding per event instead of one per connection.
    """

    __slots__ = ("_data", "_wire")

    def __init__(self) -> None:
        self._data: str | bytes | None = None
        self._wire = b""

    def wire(self, data: str | bytes) -> bytes:
        if data is not self._data:
            self._wire = wire_frame(data)
            self._data = data
        return self._wire
