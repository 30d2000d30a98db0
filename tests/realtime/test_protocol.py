"""Wire formats: events-socket client frames and server envelopes, document channel frames."""

from __future__ import annotations

import pytest

from gateway.realtime.protocol import (
    AuthRefresh,
    ChatSend,
    FrameError,
    Hello,
    Ping,
    PresenceUpdate,
    frame_error_event,
    parse_client_frame,
    stored_event,
)
from services.common.docframes import DOC_AWARENESS, DOC_QUERY, DOC_UPDATE, NOBODY, DocFrame, update_frame


def test_client_frames_parse_into_typed_values() -> None:
    assert parse_client_frame('{"type": "hello", "last_seq": 7}') == Hello(7)
    assert parse_client_frame('{"type": "hello"}') == Hello(0)
    assert parse_client_frame('{"type":"chat.send","body":"hi","client_id":"c1"}') == ChatSend("hi", "c1")
    assert parse_client_frame('{"type":"presence.update","cursor":{"line":3}}') == PresenceUpdate(
        {"cursor": {"line": 3}})
    assert parse_client_frame('{"type":"presence.update","cursor":null,"status":"away"}') == \
        PresenceUpdate({"cursor": None, "status": "away"})
    assert parse_client_frame('{"type":"auth","access_token":"t"}') == AuthRefresh("t")
    assert parse_client_frame('{"type":"ping","id":5}') == Ping(5)


@pytest.mark.parametrize(("text", "field"), [
    ("not json", None),
    ("[1, 2]", None),
    ('{"no": "type"}', "type"),
    ('{"type": "dance"}', "type"),
    ('{"type": "hello", "last_seq": -1}', "last_seq"),
    ('{"type": "hello", "last_seq": "3"}', "last_seq"),
    ('{"type": "hello", "last_seq": true}', "last_seq"),
    ('{"type": "chat.send", "client_id": "c1"}', "body"),
    ('{"type": "chat.send", "body": "hi"}', "client_id"),
    ('{"type": "chat.send", "body": 5, "client_id": "c"}', "body"),
    ('{"type": "presence.update"}', "cursor"),
    ('{"type": "presence.update", "status": ""}', "status"),
    ('{"type": "presence.update", "cursor": "' + "x" * 2000 + '"}', "cursor"),
    ('{"type": "auth"}', "access_token"),
])
def test_bad_client_frames_name_the_problem(text: str, field: str | None) -> None:
    with pytest.raises(FrameError) as info:
        parse_client_frame(text)
    assert info.value.field == field
    event = frame_error_event("s1", info.value)
    assert event["type"] == "error"
    assert event["code"] == "invalid_argument"
    assert event["message"]
    if field:
        assert event["details"] == [{"field": field, "message": info.value.message}]


def test_errors_echo_the_client_id_of_a_refused_chat() -> None:
    with pytest.raises(FrameError) as info:
        parse_client_frame('{"type": "chat.send", "client_id": "c9"}')
    assert frame_error_event("s", info.value)["client_id"] == "c9"


def test_replayed_events_have_the_shape_of_live_envelopes() -> None:
    event = stored_event("s1", 4, "member.role_changed", '{"user_id": "u", "role": "viewer"}',
                         "2024-01-02T03:04:05.123456Z")
    assert event == {"type": "member.role_changed", "seq": 4, "session_id": "s1",
                     "at": "2024-01-02T03:04:05.123456Z", "user_id": "u", "role": "viewer"}


def test_document_frames_round_trip_and_match_the_sessions_service() -> None:
    origin = bytes(range(16))
    frames = [DocFrame(DOC_UPDATE, NOBODY, b"upd", version=2**40 + 3),
              DocFrame(DOC_AWARENESS, origin, b"aw", target=bytes(15) + b"\x01"),
              DocFrame(DOC_QUERY, origin)]
    for frame in frames:
        assert DocFrame.decode(frame.encode()) == frame
    # The sessions service writes update frames with its own copy of the format.
    assert DocFrame.decode(update_frame(9, b"yjs")) == DocFrame(DOC_UPDATE, NOBODY, b"yjs", version=9)
    for bad in (b"", b"\x00" * 10, b"\x00" * 20, b"\x07" + bytes(16)):
        with pytest.raises(ValueError, match="frame"):
            DocFrame.decode(bad)
