"""The document frame format on a session's binary Redis channel (services/common/channels.py).

    byte 0       kind
    bytes 1-16   origin connection id (zeros, `NOBODY`: the sessions service)
    kind 0 (update):    bytes 17-24 the document version after the update (unsigned
                        64-bit, big-endian), then the Yjs update (v1) as the client sent it
    kind 1 (awareness): bytes 17-32 target connection id (zeros: everyone), then the
                        awareness update
    kind 2 (awareness query): nothing more; every gateway answers with its clients' states

The sessions service publishes kind 0 after storing an update; gateways publish kinds
1 and 2 and relay kind 0 to their document sockets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

DOC_UPDATE = 0
DOC_AWARENESS = 1
DOC_QUERY = 2
NOBODY = bytes(16)
_U64 = struct.Struct(">Q")


def update_frame(version: int, update: bytes, origin: bytes = NOBODY) -> bytes:
    """A kind-0 frame: one stored update at `version` (what the sessions service publishes)."""
    return bytes([DOC_UPDATE]) + origin + _U64.pack(version) + update


@dataclass(frozen=True, slots=True)
class DocFrame:
    """One frame on a session's document channel (the layout is the module's docstring)."""

    kind: int
    origin: bytes
    payload: bytes = b""
    version: int = 0
    target: bytes = NOBODY

    def encode(self) -> bytes:
        head = bytes([self.kind]) + self.origin
        if self.kind == DOC_UPDATE:
            return head + _U64.pack(self.version) + self.payload
        if self.kind == DOC_AWARENESS:
            return head + self.target + self.payload
        return head

    @classmethod
    def decode(cls, data: bytes) -> DocFrame:
        """Parse a frame; ValueError for one too short or of an unknown kind."""
        if len(data) < 17:
            raise ValueError("document frame too short")
        kind, origin = data[0], data[1:17]
        if kind == DOC_UPDATE:
            if len(data) < 25:
                raise ValueError("update frame too short")
            return cls(kind, origin, data[25:], version=_U64.unpack_from(data, 17)[0])
        if kind == DOC_AWARENESS:
            if len(data) < 33:
                raise ValueError("awareness frame too short")
            return cls(kind, origin, data[33:], target=data[17:33])
        if kind == DOC_QUERY:
            return cls(kind, origin)
        raise ValueError(f"unknown document frame kind {kind}")
