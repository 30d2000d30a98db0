"""The shared document over y-websocket end to end: convergence across gateways, roles, sync."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest
from pycrdt import Awareness, Doc, create_awareness_message

from bench.realtime_scenarios import DocClient, EventsClient, seed_document_url, typing_updates
from scripts.platform import LocalPlatform
from tests.helpers.realtime import Crew, gateway2

pytestmark = pytest.mark.e2e

__all__ = ["gateway2"]  # the fixture, imported for pytest


@pytest.fixture(scope="module")
def crew(platform: LocalPlatform) -> Crew:
    return Crew.sign_in(platform.url)


async def _synced(*clients: DocClient) -> None:
    await asyncio.wait_for(asyncio.gather(*(c.synced.wait() for c in clients)), 10)


async def test_three_concurrent_editors_on_two_gateways_converge_on_the_stored_text(
        platform: LocalPlatform, gateway2: str, crew: Crew) -> None:
    session_id = crew.session()
    editors = [await DocClient.connect(url, session_id, user.access_token)
               for url, user in ((platform.url, crew.owner), (gateway2, crew.editor),
                                 (platform.url, crew.editor))]
    try:
        await _synced(*editors)
        rng = random.Random(7)

        async def type_into(client: DocClient, letter: str) -> None:
            for _ in range(30):
                await client.insert(rng.randint(0, len(client.value())), letter)
                await asyncio.sleep(0)

        await asyncio.gather(*(type_into(c, letter) for c, letter in zip(editors, "abc",
                                                                          strict=True)))
        for client in editors:
            await client.wait_until(lambda c: len(c.value()) == 90)
        texts = {client.value() for client in editors}
        assert len(texts) == 1, texts
        (text,) = texts
        assert sorted(text) == sorted("a" * 30 + "b" * 30 + "c" * 30)
        stored = crew.document(session_id)
        assert stored["text"] == text
        assert stored["version"] == 90
        # A newcomer on either gateway syncs to the same text.
        late = await DocClient.connect(gateway2, session_id, crew.viewer.access_token)
        await _synced(late)
        assert late.value() == text
        await late.close()
    finally:
        for client in editors:
            await client.close()


async def test_viewer_edits_are_dropped_and_told_on_the_events_socket(
        platform: LocalPlatform, gateway2: str, crew: Crew) -> None:
    session_id = crew.session()
    viewer_events = await EventsClient.connect(platform.url, session_id, crew.viewer.access_token)
    viewer_doc = await DocClient.connect(gateway2, session_id, crew.viewer.access_token)
    editor = await DocClient.connect(platform.url, session_id, crew.editor.access_token)
    try:
        await _synced(viewer_doc, editor)
        await editor.insert(0, "print('hi')")
        await viewer_doc.wait_until(lambda c: c.value() == "print('hi')")
        await viewer_doc.insert(0, "# vandalism\n")
        error = await viewer_events.wait_type("error",
                                              where=lambda e: e["code"] == "permission_denied")
        assert "viewer" in error["message"]
        await editor.insert(len(editor.value()), "\n")
        await viewer_doc.wait_until(lambda c: c.value().endswith("\n"))
        assert crew.document(session_id)["text"] == "print('hi')\n"
        assert editor.value() == "print('hi')\n"
    finally:
        for client in (viewer_events, viewer_doc, editor):
            await client.close()


async def test_a_role_change_applies_to_an_open_document_socket_at_once(
        platform: LocalPlatform, gateway2: str, crew: Crew) -> None:
    session_id = crew.session()
    events = await EventsClient.connect(platform.url, session_id, crew.editor.access_token)
    doc = await DocClient.connect(gateway2, session_id, crew.editor.access_token)
    try:
        await _synced(doc)
        await doc.insert(0, "ok")
        await asyncio.wait_for(_stored(crew, session_id, "ok"), 10)
        reply = crew.call("PATCH", f"/api/v1/sessions/{session_id}/members/{crew.editor.user_id}",
                          json={"role": "viewer"})
        assert reply.status_code == 200, reply.text
        changed = await events.wait_type("member.role_changed")
        assert (changed["user_id"], changed["role"]) == (crew.editor.user_id, "viewer")
        await doc.insert(2, "!")
        await events.wait_type("error", where=lambda e: e["code"] == "permission_denied")
        assert crew.document(session_id)["text"] == "ok"
    finally:
        await events.close()
        await doc.close()


async def _stored(crew: Crew, session_id: str, text: str) -> None:
    """Poll the REST document until it holds `text` (within the caller's deadline)."""
    for _ in range(400):
        if crew.document(session_id)["text"] == text:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"stored text is {crew.document(session_id)['text']!r}, not {text!r}")


async def test_an_ended_session_document_is_read_only_for_everyone(
        platform: LocalPlatform, crew: Crew) -> None:
    session_id = crew.session()
    owner = await DocClient.connect(platform.url, session_id, crew.owner.access_token)
    events = await EventsClient.connect(platform.url, session_id, crew.owner.access_token)
    try:
        await _synced(owner)
        await owner.insert(0, "final")
        await asyncio.wait_for(_stored(crew, session_id, "final"), 10)
        assert crew.call("POST", f"/api/v1/sessions/{session_id}/end").status_code == 200
        assert await events.wait_closed() == 4410
        await owner.insert(0, "too late ")
        late = await DocClient.connect(platform.url, session_id, crew.viewer.access_token)
        await _synced(late)
        assert late.value() == "final"
        assert crew.document(session_id)["text"] == "final"
        await late.close()
    finally:
        await owner.close()


async def test_a_document_with_many_stored_updates_syncs_to_a_new_client(
        platform: LocalPlatform, gateway2: str, crew: Crew) -> None:
    session_id = crew.session()
    updates = typing_updates(3000)
    await seed_document_url(platform.env["DATABASE_URL"], session_id, updates)
    expected = Doc()
    for update in updates:
        expected.apply_update(update)
    client = await DocClient.connect(gateway2, session_id, crew.viewer.access_token)
    try:
        await asyncio.wait_for(client.synced.wait(), 20)
        assert client.value() == str(expected.get("code", type=type(client.text)))
        assert crew.document(session_id)["version"] == 3000
    finally:
        await client.close()


async def test_bad_frames_close_only_the_sender_with_a_defined_code(
        platform: LocalPlatform, crew: Crew) -> None:
    session_id = crew.session()
    bystander = await DocClient.connect(platform.url, session_id, crew.owner.access_token)
    try:
        await _synced(bystander)
        for frame, code in ((b"\x00\x07garbage", 1007), (b"\x05", 1007), ("text frame", 1003)):
            sender = await DocClient.connect(platform.url, session_id, crew.editor.access_token)
            await _synced(sender)
            await sender.send_raw(frame)
            assert await sender.wait_closed() == code
        await bystander.insert(0, "still here")
        await asyncio.wait_for(_stored(crew, session_id, "still here"), 10)
        assert bystander.ws.close_code is None
    finally:
        await bystander.close()


async def test_awareness_is_relayed_across_gateways_and_cleared_when_a_client_leaves(
        platform: LocalPlatform, gateway2: str, crew: Crew) -> None:
    session_id = crew.session()
    alice = await DocClient.connect(platform.url, session_id, crew.owner.access_token)
    try:
        await _synced(alice)
        awareness = Awareness(alice.doc)
        awareness.set_local_state({"user": {"name": "alice"}, "cursor": 3})
        await alice.send_raw(create_awareness_message(
            awareness.encode_awareness_update([alice.doc.client_id])))
        # A client arriving later is sent the states of those already there.
        bob = await DocClient.connect(gateway2, session_id, crew.editor.access_token)
        await _synced(bob)
        seen = Awareness(bob.doc)

        def alice_state(client: DocClient) -> bool:
            for message in client.awareness:
                seen.apply_awareness_update(message[1:][_varint_len(message[1:]):], "test")
            client.awareness.clear()
            return seen.states.get(alice.doc.client_id, {}).get("cursor") == 3

        await bob.wait_until(alice_state)
        await alice.close()

        def alice_gone(client: DocClient) -> bool:
            alice_state(client)
            return alice.doc.client_id not in seen.states

        await bob.wait_until(alice_gone)
        await bob.close()
    finally:
        await alice.close()


def _varint_len(data: bytes) -> int:
    """Bytes taken by the lib0 length prefix at the start of `data`."""
    for i, byte in enumerate(data):
        if byte < 0x80:
            return i + 1
    raise AssertionError(orjson.dumps(list(data[:8])))
