"""Wire formats of the realtime sockets and channels, free of I/O.

Events socket: JSON text frames. Every server frame is an envelope
`{"type", "seq"?, "session_id", "at", ...payload}`; client frames are parsed
here into typed values or a `FrameError` that becomes an `error` event.

Document socket: the y-websocket binary protocol (message type 0 = sync with
step 1 / step 2 / update, 1 = awareness, 3 = query awareness), decoded strictly
so garbage is refused before anything is forwarded; the server also sends type
2 = auth (`permission-denied` + reason) when it refuses an update.

The Redis side of the realtime contract (channel names, the envelope, document
frames) is shared with the services: services/common/channels.py and
services/common/docframes.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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


# --- y-websocket binary protocol -----------------------------------------------------------

# The gateway only frames and checks these messages and never applies an update, so it
# does not load pycrdt (about 2 MB of resident memory); tests check the framing against it.
MESSAGE_SYNC = 0
MESSAGE_AWARENESS = 1
MESSAGE_AUTH = 2
MESSAGE_QUERY_AWARENESS = 3
AUTH_PERMISSION_DENIED = 0
SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2
EMPTY_UPDATE = b"\x00\x00"
MAX_AWARENESS_CLIENTS = 64


class YProtocolError(Exception):
    """Bytes that are not a y-websocket message (closes the socket with 1007)."""


class _Reader:
    """lib0 decoding with bounds checks (a truncated frame is an error, never an IndexError)."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def var_uint(self) -> int:
        value = 0
        shift = 0
        while True:
            if self.pos >= len(self.data):
                raise YProtocolError("truncated variable-length integer")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise YProtocolError("variable-length integer too long")

    def var_bytes(self) -> bytes:
        length = self.var_uint()
        end = self.pos + length
        if end > len(self.data):
            raise YProtocolError("truncated byte array")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def var_string(self) -> str:
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise YProtocolError("string is not UTF-8") from None

    def done(self) -> None:
        if self.pos != len(self.data):
            raise YProtocolError("trailing bytes after the message")


@dataclass(frozen=True, slots=True)
class SyncMessage:
    step: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class AwarenessMessage:
    update: bytes
    clients: tuple[AwarenessEntry, ...]
    # Each entry's state JSON, parsed (None for null and empty): parsed once, here.
    states: tuple[Any, ...] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    pass


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: str


YMessage = SyncMessage | AwarenessMessage | QueryAwareness


def parse_y_message(data: bytes) -> YMessage:
    """Decode one client frame of the y-websocket protocol, strictly."""
    reader = _Reader(data)
    kind = reader.var_uint()
    if kind == MESSAGE_SYNC:
        step = reader.var_uint()
        if step not in (SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE):
            raise YProtocolError(f"unknown sync message type {step}")
        payload = reader.var_bytes()
        reader.done()
        return SyncMessage(step, payload)
    if kind == MESSAGE_AWARENESS:
        update = reader.var_bytes()
        reader.done()
        return AwarenessMessage(update, *_parse_awareness(update))
    if kind == MESSAGE_QUERY_AWARENESS:
        reader.done()
        return QueryAwareness()
    raise YProtocolError(f"unknown message type {kind}")


class TooManyAwarenessClients(YProtocolError):
    """A well-formed awareness update with more entries than one connection may send."""


def parse_awareness(update: bytes) -> tuple[AwarenessEntry, ...]:
    return _parse_awareness(update)[0]


def _parse_awareness(update: bytes) -> tuple[tuple[AwarenessEntry, ...], tuple[Any, ...]]:
    """The entries of an awareness update, and each one's state parsed."""
    reader = _Reader(update)
    count = reader.var_uint()
    if count > MAX_AWARENESS_CLIENTS:
        raise TooManyAwarenessClients("too many clients in one awareness update")
    entries = []
    states = []
    for _ in range(count):
        client_id = reader.var_uint()
        clock = reader.var_uint()
        state = reader.var_string()
        try:
            # Empty means "no state" to Yjs, like null.
            states.append(orjson.loads(state) if state else None)
        except orjson.JSONDecodeError:
            raise YProtocolError("awareness state is not JSON") from None
        entries.append(AwarenessEntry(client_id, clock, state))
    reader.done()
    return tuple(entries), tuple(states)


# What y-codemirror.next draws from an awareness state's `user`: `name` is the text of the
# cursor's label, `color` and `colorLight` go into inline `style` attributes. The gateway
# makes every state a connection sends carry that connection's GitHub login as the name, and
# keeps a colour only when it is `#rrggbb` or `#rrggbbaa`; nothing else stays in `user`.
AWARENESS_COLORS = ("color", "colorLight")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}(?:[0-9a-fA-F]{2})?")


# Colours seen well-formed lately: a room uses a few, so the usual check is a set lookup.
_GOOD_COLORS: set[str] = set()


def _good_color(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if value in _GOOD_COLORS:
        return True
    if not _COLOR.fullmatch(value):
        return False
    if len(_GOOD_COLORS) >= 1024:
        _GOOD_COLORS.clear()
    _GOOD_COLORS.add(value)
    return True


def _user_is(user: Any, login: str) -> bool:
    """Whether `user` is already what `owned_state` would make it for `login`."""
    if not isinstance(user, dict) or user.get("name") != login:
        return False
    fields = 1
    for key in AWARENESS_COLORS:
        if key in user:
            if not _good_color(user[key]):
                return False
            fields += 1
    return len(user) == fields


def owned_state(state: str, value: Any, login: str) -> str | None:
    """`state` (JSON; `value` parsed) with `user` made `login`'s, or None if it cannot carry one.

    A state that already says so (what an honest client sends) is answered as is, the same
    string, so the usual frame is never re-encoded; otherwise `user` becomes `{"name": login}`
    plus the well-formed colours it had, in its place (or last, when it had none), and every
    other field of the state stays as it was. A state that is not a JSON object (Yjs clients
    only send objects, or null for "gone", which is not for this function) answers None.
    """
    if not isinstance(value, dict):
        return None
    user = value.get("user")
    if _user_is(user, login):
        return state
    fixed: dict[str, Any] = {"name": login}
    if isinstance(user, dict):
        for key in AWARENESS_COLORS:
            colour = user.get(key)
            if _good_color(colour):
                fixed[key] = colour
    return orjson.dumps({**value, "user": fixed}).decode()


def write_var_uint(num: int) -> bytes:
    """lib0's unsigned varint: 7 bits per byte, least significant first, high bit = more."""
    out = bytearray()
    while num > 0x7F:
        out.append(0x80 | (num & 0x7F))
        num >>= 7
    out.append(num)
    return bytes(out)


def encode_awareness(entries: list[AwarenessEntry] | tuple[AwarenessEntry, ...]) -> bytes:
    out = [write_var_uint(len(entries))]
    for entry in entries:
        state = entry.state.encode()
        out += [write_var_uint(entry.client_id), write_var_uint(entry.clock),
                write_var_uint(len(state)), state]
    return b"".join(out)


def removal(entries: list[AwarenessEntry] | tuple[AwarenessEntry, ...]) -> bytes:
    """The awareness update saying these clients are gone (clock + 1, state null)."""
    return encode_awareness([AwarenessEntry(e.client_id, e.clock + 1, "null") for e in entries])


def _y_bytes(prefix: list[int], payload: bytes) -> bytes:
    return bytes(prefix) + write_var_uint(len(payload)) + payload


def sync_step1(state_vector: bytes) -> bytes:
    return _y_bytes([MESSAGE_SYNC, SYNC_STEP1], state_vector)


def sync_step2(update: bytes) -> bytes:
    return _y_bytes([MESSAGE_SYNC, SYNC_STEP2], update)


def sync_update(update: bytes) -> bytes:
    return _y_bytes([MESSAGE_SYNC, SYNC_UPDATE], update)


def awareness_message(update: bytes) -> bytes:
    return _y_bytes([MESSAGE_AWARENESS], update)


def permission_denied(reason: str) -> bytes:
    """y-protocols' auth message `permission-denied` with a human reason (y-websocket's
    provider hands the reason to its permission-denied handler)."""
    return _y_bytes([MESSAGE_AUTH, AUTH_PERMISSION_DENIED], reason.encode())
