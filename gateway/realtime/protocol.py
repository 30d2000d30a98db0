"""Wire formats of the realtime sockets and channels, free of I/O.

Events socket: JSON text frames. Every server frame is an envelope
`{"type", "seq"?, "session_id", "at", ...payload}`; client frames are parsed
here into typed values or a `FrameError` that becomes an `error` event.

Document socket: the y-websocket binary protocol, in gateway/realtime/ywebsocket.py.

The Redis side of the realtime contract (channel names, the envelope, document
frames) is shared with the services: services/common/channels.py and
services/common/docframes.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from services.common import channels
from services.common.timeconv import now_rfc3339

# --- events socket: client frames ----------------------------------------------------------

MAX_STATUS_CHARS = 64
MAX_CURSOR_BYTES = 1024
MAX_TOKEN_CHARS = 8192


class FrameError(Exception):
    """A client frame the server cannot act on; answered with an `error` event."""

    def __init__(self, message: str, field: str | None = None, *,
                 code: str = "invalid_argument", ref: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.ref = ref or {}


@dataclass(frozen=True, slots=True)
class Hello:
    last_seq: int


@dataclass(frozen=True, slots=True)
class ChatSend:
    body: str
    client_id: str


@dataclass(frozen=True, slots=True)
class PresenceUpdate:
    # Only the fields the client sent change; `cursor` may be set to null on purpose.
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuthRefresh:
    access_token: str


@dataclass(frozen=True, slots=True)
class Ping:
    ref: Any


ClientFrame = Hello | ChatSend | PresenceUpdate | AuthRefresh | Ping

CLIENT_TYPES = ("hello", "chat.send", "presence.update", "auth", "ping")


def _string(data: dict[str, Any], name: str, ref: dict[str, Any]) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise FrameError(f"{name} is required and must be a non-empty string", name, ref=ref)
    return value


def parse_client_frame(text: str) -> ClientFrame:
    """Parse one events-socket text frame; every problem names the field."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise FrameError("frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise FrameError("frame must be a JSON object")
    kind = data.get("type")
    # Echoed in errors so a client can match a refusal to what it sent.
    ref = {"client_id": data["client_id"]} if isinstance(data.get("client_id"), str) else {}
    if not isinstance(kind, str) or not kind:
        raise FrameError("type is required", "type", ref=ref)
    if kind == "hello":
        last_seq = data.get("last_seq", 0)
        if isinstance(last_seq, bool) or not isinstance(last_seq, int) or last_seq < 0:
            raise FrameError("last_seq must be a non-negative integer", "last_seq")
        return Hello(last_seq)
    if kind == "chat.send":
        return ChatSend(_string(data, "body", ref), _string(data, "client_id", ref))
    if kind == "presence.update":
        return PresenceUpdate(_presence_fields(data))
    if kind == "auth":
        token = _string(data, "access_token", ref)
        if len(token) > MAX_TOKEN_CHARS:
            raise FrameError("access_token is too long", "access_token")
        return AuthRefresh(token)
    if kind == "ping":
        return Ping(data.get("id"))
    raise FrameError(f"unknown frame type {kind[:40]!r}; expected one of "
                     + ", ".join(CLIENT_TYPES), "type", ref=ref)


def _presence_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "status" in data:
        status = data["status"]
        if not isinstance(status, str) or not 0 < len(status) <= MAX_STATUS_CHARS:
            raise FrameError(f"status must be a string of 1..{MAX_STATUS_CHARS} characters",
                             "status")
        fields["status"] = status
    if "cursor" in data:
        cursor = data["cursor"]
        if len(orjson.dumps(cursor)) > MAX_CURSOR_BYTES:
            raise FrameError(f"cursor must encode to at most {MAX_CURSOR_BYTES} bytes", "cursor")
        fields["cursor"] = cursor
    if not fields:
        raise FrameError("presence.update needs cursor or status", "cursor")
    return fields


# --- events socket: server frames ----------------------------------------------------------


def envelope(kind: str, session_id: str, **payload: Any) -> dict[str, Any]:
    """A non-sequenced event of this gateway's, in the standard envelope, stamped now."""
    return channels.envelope(kind, session_id, now_rfc3339(), payload)


def error_event(session_id: str, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return envelope("error", session_id, code=code, message=message, **extra)


def frame_error_event(session_id: str, exc: FrameError) -> dict[str, Any]:
    extra: dict[str, Any] = dict(exc.ref)
    if exc.field:
        extra["details"] = [{"field": exc.field, "message": exc.message}]
    return error_event(session_id, exc.code, exc.message, **extra)


def stored_event(session_id: str, seq: int, kind: str, payload_json: str, at: str | None) -> dict[str, Any]:
    """A replayed event from the log, shaped exactly like its live copy."""
    payload = orjson.loads(payload_json) if payload_json else {}
    if not isinstance(payload, dict):
        payload = {}
    return channels.envelope(kind, session_id, at, payload, seq)


def dumps(event: dict[str, Any]) -> str:
    return orjson.dumps(event).decode()
