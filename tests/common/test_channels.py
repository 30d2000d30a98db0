"""The realtime contract keeps its wire: old and new processes interoperate in a rolling deploy."""

from __future__ import annotations

import orjson

from services.common.channels import RealtimeChannels, envelope
from services.common.docframes import DOC_UPDATE, NOBODY, DocFrame, update_frame
from services.common.keyspace import KeySpace


def test_channel_names_are_the_ones_every_released_process_uses() -> None:
    channels = RealtimeChannels("tandem:")
    assert channels.events("s1") == "tandem:sessions:rt:session:s1"
    assert channels.doc("s1") == "tandem:sessions:rt:doc:s1"
    # What the services built from their key space before the contract had a module.
    legacy = KeySpace("tandem:", "sessions")
    assert channels.events("s1") == legacy.key("rt", "session", "s1")
    assert channels.doc("s1") == legacy.key("rt", "doc", "s1")


def test_the_envelope_puts_the_head_first_and_seq_only_when_sequenced() -> None:
    live = envelope("presence.join", "s1", "2026-01-01T00:00:00.000000Z", {"user_id": "u"})
    assert orjson.dumps(live) == (b'{"type":"presence.join","session_id":"s1",'
                                  b'"at":"2026-01-01T00:00:00.000000Z","user_id":"u"}')
    stored = envelope("chat.message", "s1", None, {"body": "hi"}, seq=7)
    assert list(stored) == ["type", "seq", "session_id", "at", "body"]
    assert stored["seq"] == 7
    assert stored["at"] is None


def test_an_update_frame_is_the_documented_layout() -> None:
    frame = update_frame(258, b"yjs")
    assert frame == bytes([DOC_UPDATE]) + bytes(16) + (258).to_bytes(8, "big") + b"yjs"
    assert DocFrame.decode(frame) == DocFrame(DOC_UPDATE, NOBODY, b"yjs", version=258)
