"""The y-websocket binary protocol of the document socket, encoded and decoded here.

Message type 0 = sync (step 1 / step 2 / update), 1 = awareness, 3 = query awareness,
decoded strictly so garbage is refused (1007) before anything is forwarded; the server
also sends type 2 = auth (`permission-denied` + reason) when it refuses an update.

Why not pycrdt's codec, which sessions uses: this is the untrusted edge, and this decoder
checks every length and varint, refuses trailing bytes and caps awareness entries before
anything reaches the hub (pycrdt's `Decoder` slices past the end of a short message
without a word, fails with IndexError on a truncated varint and reads varints of any
length); and the gateway never
applies an update, so it does not load pycrdt (about 2 MB of resident memory in the
gateway, docs/performance.md "Idle memory"). tests/realtime/test_ywebsocket.py checks both
directions against pycrdt's encoder and decoder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

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
