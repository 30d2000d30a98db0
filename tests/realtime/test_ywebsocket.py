"""The y-websocket codec against the reference, pycrdt, in both directions, and its strictness."""

from __future__ import annotations

import orjson
import pycrdt
import pytest
from pycrdt import Awareness, Doc, Text, create_awareness_message, create_sync_message, create_update_message

from gateway.realtime.ywebsocket import (
    MESSAGE_AUTH,
    MESSAGE_AWARENESS,
    MESSAGE_SYNC,
    SYNC_STEP1,
    SYNC_STEP2,
    SYNC_UPDATE,
    AwarenessEntry,
    AwarenessMessage,
    QueryAwareness,
    SyncMessage,
    YProtocolError,
    awareness_message,
    encode_awareness,
    owned_state,
    parse_awareness,
    parse_y_message,
    permission_denied,
    removal,
    sync_step1,
    sync_step2,
    sync_update,
    write_var_uint,
)

# Varint boundaries: one byte up to 127, two up to 16,383, three up to 2,097,151, ...
VARINTS = (0, 1, 127, 128, 300, 16_383, 16_384, 2_097_151, 2_097_152, 2**32 - 1, 2**53)


def _edited(text: str) -> Doc:
    doc: Doc = Doc()
    doc.get("code", type=Text).insert(0, text)
    return doc


def test_pycrdt_reads_what_the_gateway_writes() -> None:
    source = _edited("hello " * 5000)  # an update over 16 KiB: a three-byte length
    update = source.get_update()
    assert len(update) > 16_384
    for message, step, payload in ((sync_step1(source.get_state()), SYNC_STEP1, source.get_state()),
                                   (sync_step2(update), SYNC_STEP2, update),
                                   (sync_update(update), SYNC_UPDATE, update)):
        decoder = pycrdt.Decoder(message)
        assert decoder.read_var_uint() == pycrdt.YMessageType.SYNC
        assert decoder.read_var_uint() == step
        assert decoder.read_message() == payload
        assert decoder.read_message() is None, "nothing after the payload"
    # And pycrdt applies our step 2 and update to a document of its own.
    for message in (sync_step2(update), sync_update(update)):
        target: Doc = Doc()
        pycrdt.handle_sync_message(message[1:], target)
        assert str(target.get("code", type=Text)) == "hello " * 5000
    entry = AwarenessEntry(7, 3, '{"user":{"name":"ada"}}')
    decoder = pycrdt.Decoder(awareness_message(encode_awareness([entry])))
    assert decoder.read_var_uint() == pycrdt.YMessageType.AWARENESS
    peer = Awareness(Doc())
    peer.apply_awareness_update(decoder.read_message(), "test")
    assert peer.states[7] == {"user": {"name": "ada"}}
    denied = pycrdt.Decoder(permission_denied("viewers cannot edit"))
    assert denied.read_var_uint() == MESSAGE_AUTH
    assert denied.read_var_uint() == 0  # permission-denied
    assert denied.read_var_string() == "viewers cannot edit"


def test_varints_agree_with_pycrdt_both_ways() -> None:
    for number in VARINTS:
        ours = write_var_uint(number)
        assert ours == pycrdt.write_var_uint(number)
        assert pycrdt.Decoder(ours).read_var_uint() == number
    for size in (0, 127, 128, 16_383, 16_384, 70_000):
        payload = b"\x05" * size
        theirs = bytes([MESSAGE_SYNC, SYNC_UPDATE]) + pycrdt.write_message(payload)
        assert parse_y_message(theirs) == SyncMessage(SYNC_UPDATE, payload)
        assert theirs == sync_update(payload)
    encoder = pycrdt.Encoder()
    encoder.write_var_string("viewers cannot edit")
    assert permission_denied("viewers cannot edit") == bytes([MESSAGE_AUTH, 0]) + encoder.to_bytes()
    # lib0 (and so y-protocols) prefixes a string with its UTF-8 length; pycrdt 0.14's
    # Encoder.write_var_string counts characters instead, so beyond ASCII only ours is right.
    reason = "lecture seule: é"
    assert permission_denied(reason) == (bytes([MESSAGE_AUTH, 0]) + write_var_uint(len(reason.encode()))
                                         + reason.encode())


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
