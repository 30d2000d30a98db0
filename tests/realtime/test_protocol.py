"""Wire formats: events-socket client frames, the y-websocket codec, document channel frames."""

from __future__ import annotations

import orjson
import pycrdt
import pytest
from pycrdt import Awareness, Doc, Text, create_awareness_message, create_sync_message, create_update_message

from gateway.realtime.protocol import (
    MESSAGE_AWARENESS,
    MESSAGE_SYNC,
    SYNC_STEP1,
    SYNC_STEP2,
    SYNC_UPDATE,
    AuthRefresh,
    AwarenessEntry,
    AwarenessMessage,
    ChatSend,
    FrameError,
    Hello,
    Ping,
    PresenceUpdate,
    QueryAwareness,
    SyncMessage,
    YProtocolError,
    encode_awareness,
    frame_error_event,
    owned_state,
    parse_awareness,
    parse_client_frame,
    parse_y_message,
    removal,
    stored_event,
    sync_step1,
    sync_step2,
    write_var_uint,
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


def test_y_messages_from_pycrdt_decode() -> None:
    doc: Doc = Doc()
    doc.get("code", type=Text).insert(0, "hello")
    step1 = parse_y_message(create_sync_message(doc))
    assert step1 == SyncMessage(SYNC_STEP1, doc.get_state())
    update = parse_y_message(create_update_message(doc.get_update()))
    assert update == SyncMessage(SYNC_UPDATE, doc.get_update())
    assert parse_y_message(sync_step2(b"\x00\x00")) == SyncMessage(SYNC_STEP2, b"\x00\x00")
    assert sync_step1(doc.get_state()) == create_sync_message(doc)
    assert parse_y_message(bytes([3])) == QueryAwareness()


def test_the_codec_agrees_with_pycrdt_which_the_gateway_does_not_load() -> None:
    assert (MESSAGE_SYNC, MESSAGE_AWARENESS) == (pycrdt.YMessageType.SYNC, pycrdt.YMessageType.AWARENESS)
    assert (SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE) == (
        pycrdt.YSyncMessageType.SYNC_STEP1, pycrdt.YSyncMessageType.SYNC_STEP2,
        pycrdt.YSyncMessageType.SYNC_UPDATE)
    for number in (0, 1, 127, 128, 300, 16_383, 16_384, 2**32 - 1, 2**53):
        assert write_var_uint(number) == pycrdt.write_var_uint(number)


def test_awareness_round_trips_and_removal_bumps_the_clock() -> None:
    doc: Doc = Doc()
    awareness = Awareness(doc)
    awareness.set_local_state({"user": {"name": "ada"}, "cursor": 4})
    update = awareness.encode_awareness_update([doc.client_id])
    message = parse_y_message(create_awareness_message(update))
    assert isinstance(message, AwarenessMessage)
    (entry,) = message.clients
    assert entry.client_id == doc.client_id
    assert orjson.loads(entry.state) == {"user": {"name": "ada"}, "cursor": 4}
    assert encode_awareness([entry]) == update
    gone = parse_awareness(removal([entry]))
    assert gone == (AwarenessEntry(entry.client_id, entry.clock + 1, "null"),)
    # pycrdt applies our removal: the remote state disappears.
    other = Awareness(Doc())
    other.apply_awareness_update(update, "test")
    assert entry.client_id in other.states
    other.apply_awareness_update(removal([entry]), "test")
    assert entry.client_id not in other.states


def _owned(state: str, login: str = "ada") -> str | None:
    return owned_state(state, orjson.loads(state), login)


def test_a_state_that_already_carries_the_login_is_kept_as_the_same_string() -> None:
    for state in ('{"user":{"name":"ada","color":"#d6336c","colorLight":"#d6336c33"},"cursor":4}',
                  '{"cursor":null,"user":{"name":"ada","color":"#ABCDEF"}}',
                  '{"user":{"name":"ada"}}',
                  '{"user": {"name": "\\u0061da"}}'):  # spelt differently, the same JSON
        assert _owned(state) is state, state


@pytest.mark.parametrize(("state", "user"), [
    ('{"user":{"name":"grace"}}', {"name": "ada"}),
    ('{"user":"grace"}', {"name": "ada"}),
    ('{"user":null}', {"name": "ada"}),
    ("{}", {"name": "ada"}),
    ('{"user":{"name":"ada","color":"red;position:fixed;inset:0"}}', {"name": "ada"}),
    ('{"user":{"name":"ada","color":"#d6336c\\n","colorLight":"#d6336c33"}}',
     {"name": "ada", "colorLight": "#d6336c33"}),
    ('{"user":{"name":"ada","color":"#d6336","colorLight":"#d6336c3"}}', {"name": "ada"}),
    ('{"user":{"name":"ada","color":"d6336c","colorLight":"#d6336c333"}}', {"name": "ada"}),
    ('{"user":{"name":"ada","color":null,"colorLight":["#d6336c"]}}', {"name": "ada"}),
    ('{"user":{"name":"ada","color":"#D6336C","avatar":"x"}}', {"name": "ada", "color": "#D6336C"}),
    # JSON.parse keeps the last of duplicate keys, and so does the gateway.
    ('{"user":{"name":"ada","name":"grace"}}', {"name": "ada"}),
    ('{"user":{"name":"ada"},"user":{"name":"grace","color":"#000000"}}',
     {"name": "ada", "color": "#000000"}),
])
def test_user_is_rewritten_to_the_login_and_well_formed_colours(state: str,
                                                                user: dict[str, str]) -> None:
    rewritten = _owned(state)
    assert rewritten is not None
    value = orjson.loads(rewritten)
    assert value.pop("user") == user
    before = orjson.loads(state)
    before.pop("user", None)
    assert value == before, "the rest of the state is unchanged"


def test_user_keeps_its_place_and_a_state_that_is_not_an_object_cannot_be_owned() -> None:
    assert _owned('{"a":1,"user":{"name":"x"},"b":2}') == '{"a":1,"user":{"name":"ada"},"b":2}'
    assert _owned('{"a":1}') == '{"a":1,"user":{"name":"ada"}}'
    for state in ("[]", "1", '"ada"', "true"):
        assert _owned(state) is None


def test_parsing_an_awareness_message_keeps_each_state_parsed() -> None:
    update = encode_awareness([AwarenessEntry(1, 1, '{"a":1}'), AwarenessEntry(2, 1, "null"),
                               AwarenessEntry(3, 1, "")])
    message = parse_y_message(b"\x01" + write_var_uint(len(update)) + update)
    assert isinstance(message, AwarenessMessage)
    assert message.states == ({"a": 1}, None, None)


@pytest.mark.parametrize("data", [
    b"",                      # nothing
    b"\x00",                  # sync without a step
    b"\x00\x07\x00",          # unknown step
    b"\x00\x02\x05ab",        # truncated payload
    b"\x00\x02\x01a\xff",     # trailing bytes
    b"\x09",                  # unknown message type
    b"\x01\x03\x01\x01\x01",  # awareness whose state is truncated
    b"\x01\x05\x01\x01\x01\x01{",  # awareness state that is not JSON
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # varint overflow
    b"hello",
])
def test_garbage_is_not_a_y_message(data: bytes) -> None:
    with pytest.raises(YProtocolError):
        parse_y_message(data)


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
