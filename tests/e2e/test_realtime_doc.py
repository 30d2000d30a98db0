"""The shared document over y-websocket end to end: convergence across gateways, roles, sync,
awareness bounds, the rate limit and refusals told on the socket."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pycrdt import Awareness, Doc, create_awareness_message
from websockets.exceptions import ConnectionClosed

from bench.realtime_scenarios import (
    DocClient,
    EventsClient,
    seed_document_url,
    typing_updates,
)
from gateway.realtime.config import RealtimeConfig
from gateway.realtime.ywebsocket import (
    AwarenessEntry,
)
from scripts.platform import LocalPlatform, ProcSpec, free_ports, wait_ready
from services.common.config import Env
from tests.helpers.realtime import Crew, YSocket, answers_step1, gateway2

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


async def test_a_viewer_promoted_on_an_open_document_socket_edits_without_reconnecting(
        platform: LocalPlatform, gateway2: str, crew: Crew) -> None:
    session_id = crew.session()
    owner = await DocClient.connect(platform.url, session_id, crew.owner.access_token)
    # The promoted viewer's sockets are on the other gateway: the role change reaches them
    # through Redis, as for anyone whose gateway did not serve the PATCH.
    events = await EventsClient.connect(gateway2, session_id, crew.viewer.access_token)
    viewer = await YSocket.connect(gateway2, session_id, crew.viewer.access_token)
    try:
        await _synced(owner)
        await viewer.insert("# vandalism\n")
        await viewer.wait_for(lambda c: bool(c.denials()))
        assert "viewers cannot edit" in viewer.denials()[0]
        reply = crew.call("PATCH", f"/api/v1/sessions/{session_id}/members/{crew.viewer.user_id}",
                          json={"role": "editor"})
        assert reply.status_code == 200, reply.text
        # What a client waits for before it lets its user type: the event on its events socket
        # (its gateway hands an event to the document socket in the same step).
        changed = await events.wait_type("member.role_changed",
                                         where=lambda e: e["user_id"] == crew.viewer.user_id)
        assert changed["role"] == "editor"
        # A fresh edit (the refused one stays out, as docs/api.md tells clients to do).
        await viewer.insert("print('promoted')\n")
        await asyncio.wait_for(_stored(crew, session_id, "print('promoted')\n"), 10)
        await owner.wait_until(lambda c: c.value() == "print('promoted')\n")
        assert len(viewer.denials()) == 1, viewer.denials()
        assert viewer.ws.close_code is None
    finally:
        for client in (owner, events, viewer):
            await client.close()


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
    # A second socket of the owner's that keeps every frame: the refusal is told on it.
    writer = await YSocket.connect(platform.url, session_id, crew.owner.access_token)
    events = await EventsClient.connect(platform.url, session_id, crew.owner.access_token)
    try:
        await _synced(owner)
        await owner.insert(0, "final")
        await asyncio.wait_for(_stored(crew, session_id, "final"), 10)
        assert crew.call("POST", f"/api/v1/sessions/{session_id}/end").status_code == 200
        assert await events.wait_closed() == 4410
        # Even the owner's write on a socket opened before the end is refused, and said so.
        await writer.insert("too late ")
        await writer.wait_for(lambda c: bool(c.denials()))
        assert "session has ended" in writer.denials()[0]
        # A later sync proves the state: the refused write is nowhere, and the document
        # stays readable.
        late = await DocClient.connect(platform.url, session_id, crew.viewer.access_token)
        await _synced(late)
        assert late.value() == "final"
        assert crew.document(session_id)["text"] == "final"
        await late.close()
        await answers_step1(writer)
    finally:
        await owner.close()
        await writer.close()


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


# --- awareness bounds, the rate limit, refusals on the socket (issue 14, items 2 and 4) ------


def _state(client: YSocket, client_id: int) -> str | None:
    """The latest state `client` was sent for `client_id` (highest clock wins, as in Yjs)."""
    best: AwarenessEntry | None = None
    for entry in client.awareness():
        if entry.client_id == client_id and (best is None or entry.clock >= best.clock):
            best = entry
    return None if best is None else best.state


async def test_a_stolen_awareness_client_id_is_ignored_on_every_gateway(
        platform: LocalPlatform, gateway2: str, crew: Crew) -> None:
    session_id = crew.session()
    alice = await YSocket.connect(platform.url, session_id, crew.owner.access_token)
    bob = mallory = None
    # What the owner's client says (the gateway keeps a state naming its own login as sent).
    first = orjson.dumps({"user": {"name": crew.owner.login}, "cursor": 1}).decode()
    second = orjson.dumps({"user": {"name": crew.owner.login}, "cursor": 2}).decode()
    try:
        await alice.tell((1001, 1, first))
        bob = await YSocket.connect(gateway2, session_id, crew.editor.access_token)
        await bob.wait_for(lambda c: _state(c, 1001) == first)
        # The viewer reuses alice's client id, on either gateway, to set it and to clear it.
        mallory = await YSocket.connect(gateway2, session_id, crew.viewer.access_token)
        await mallory.tell((1001, 5, '{"user":"mallory"}'), (2002, 1, '{"user":"mallory"}'))
        await mallory.tell((1001, 6, "null"))
        await alice.tell((1001, 2, second))
        await bob.wait_for(lambda c: _state(c, 2002) is not None
                           and _state(c, 1001) == second)
        assert [e for e in bob.awareness() if e.client_id == 1001] == [
            AwarenessEntry(1001, 1, first), AwarenessEntry(1001, 2, second)]
        # Its own id carries its own login, whatever it said.
        assert orjson.loads(_state(bob, 2002) or "null") == {"user": {"name": crew.viewer.login}}
        assert all(e.client_id != 1001 for e in mallory.awareness()
                   if crew.viewer.login in e.state or e.state == "null")
    finally:
        for client in (alice, bob, mallory):
            if client is not None:
                await client.close()


def _n(client: YSocket, client_id: int) -> object:
    """The `n` of the latest state `client` was sent for `client_id` (None: none yet)."""
    state = _state(client, client_id)
    return None if state is None else orjson.loads(state).get("n")


async def test_oversized_awareness_is_refused_and_a_joiner_is_sent_little(
        platform: LocalPlatform, crew: Crew) -> None:
    session_id = crew.session()
    attacker = await YSocket.connect(platform.url, session_id, crew.viewer.access_token)
    joiner = None
    try:
        megabyte = '{"junk":"' + "x" * 1_000_000 + '"}'
        for i in range(5):
            await attacker.tell((3000 + i, 1, megabyte))
        await attacker.tell(*[(4000 + i, 1, '{"n":"' + "y" * 300 + f'","i":{i}}}')
                              for i in range(40)])
        await attacker.tell((5000, 1, '{"big":"' + "z" * 5000 + '"}'), (4000, 2, '{"n":0}'))
        joiner = await YSocket.connect(platform.url, session_id, crew.editor.access_token)
        await joiner.wait_for(lambda c: _n(c, 4000) == 0)
        for _ in range(3):
            await joiner.ws.send(b"\x03")
        # A marker after the queries: once it is here, their answers have been sent too.
        await attacker.tell((4000, 3, '{"n":"marker"}'))
        await joiner.wait_for(lambda c: _n(c, 4000) == "marker")
        # Four ids (the first announced, none oversized) were accepted; nothing else.
        assert {e.client_id for e in joiner.awareness()} == {4000, 4001, 4002, 4003}
        assert joiner.awareness_bytes() < 4 * 4096 * 2 + 1024, joiner.awareness_bytes()
    finally:
        for client in (attacker, joiner):
            if client is not None:
                await client.close()


def _rate_limited(base_url: str) -> float:
    text = httpx.get(base_url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "tandem_ws_rate_limited_total"
                    and sample.labels.get("socket") == "doc"):
                return float(sample.value)
    return 0.0


async def test_a_flood_on_the_document_socket_closes_it_with_4429_and_is_counted(
        platform: LocalPlatform, crew: Crew) -> None:
    session_id = crew.session()
    limits = RealtimeConfig.from_env(Env(platform.specs["gateway"].env))
    bystander = await YSocket.connect(platform.url, session_id, crew.owner.access_token)
    opened = time.monotonic()  # the flooder's token bucket starts full when its socket opens
    flooder = await YSocket.connect(platform.url, session_id, crew.editor.access_token)
    sent = 0
    try:
        before = _rate_limited(platform.url)
        with contextlib.suppress(ConnectionClosed):
            for i in range(1000):
                await flooder.tell((6000, i + 1, f'{{"i":{i}}}'))
                sent += 1
        assert await flooder.wait_closed() == 4429
        elapsed = time.monotonic() - opened
        assert _rate_limited(platform.url) == before + 1
        relayed = [e for e in bystander.awareness() if e.client_id == 6000]
        # What the bucket allows: its burst plus what refilled while the flood ran (a slow,
        # loaded machine sends the flood over more seconds, so more is allowed, never more).
        allowed = limits.doc_rate_burst + limits.doc_rate_per_second * elapsed
        assert len(relayed) <= allowed, f"{len(relayed)} relayed, the limiter allows {allowed:.0f}"
        assert len(relayed) < sent, "the rest of the flood was never relayed"
        await bystander.insert("still served")
        await asyncio.wait_for(_stored(crew, session_id, "still served"), 10)
    finally:
        await bystander.close()
        await flooder.close()


async def test_refused_updates_are_answered_with_permission_denied_on_the_document_socket(
        platform: LocalPlatform, crew: Crew) -> None:
    session_id = crew.session()
    viewer = await YSocket.connect(platform.url, session_id, crew.viewer.access_token)
    editor = await YSocket.connect(platform.url, session_id, crew.editor.access_token)
    try:
        await viewer.insert("# vandalism")
        await viewer.wait_for(lambda c: bool(c.denials()))
        assert "viewers cannot edit" in viewer.denials()[0]
        assert crew.call("POST", f"/api/v1/sessions/{session_id}/end").status_code == 200
        # The ended session reaches the open socket through the events channel.
        deadline = time.monotonic() + 10
        while not editor.denials():
            assert time.monotonic() < deadline, "no permission-denied after the end"
            await editor.insert("too late")
            with contextlib.suppress(AssertionError):
                await editor.wait_for(lambda c: bool(c.denials()), timeout=0.5)
        assert "session has ended" in editor.denials()[0]
        assert crew.document(session_id)["text"] == ""
        # Both sockets stay open and keep answering the protocol.
        for client in (viewer, editor):
            await answers_step1(client)
    finally:
        await viewer.close()
        await editor.close()


SMALL_DOCS = 4096


@pytest.fixture(scope="module")
def small_docs(platform: LocalPlatform) -> Iterator[str]:
    """A sessions replica and a gateway in front of it with DOCUMENT_MAX_BYTES=4096."""
    grpc_port, metrics_port, gateway_port = free_ports(3)
    sessions = platform.specs["sessions"]
    gateway = platform.specs["gateway"]
    names = ("sessions-small-docs", "gateway-small-docs")
    platform.specs[names[0]] = ProcSpec(names[0], sessions.argv, dict(
        sessions.env, SESSIONS_GRPC_PORT=str(grpc_port), SESSIONS_METRICS_PORT=str(metrics_port),
        DOCUMENT_MAX_BYTES=str(SMALL_DOCS)))
    platform.specs[names[1]] = ProcSpec(names[1], gateway.argv, dict(
        gateway.env, GATEWAY_PORT=str(gateway_port), SESSIONS_ADDR=f"127.0.0.1:{grpc_port}",
        DOCUMENT_MAX_BYTES=str(SMALL_DOCS)))
    platform.start(list(names))
    url = f"http://127.0.0.1:{gateway_port}"
    try:
        wait_ready(url + "/ready", 60, what=names[1])
        yield url
    finally:
        for name in reversed(names):
            platform.stop(name)
            platform.specs.pop(name, None)


async def test_an_update_past_the_document_size_limit_is_answered_with_permission_denied(
        small_docs: str, crew: Crew) -> None:
    session_id = crew.session()
    editor = await YSocket.connect(small_docs, session_id, crew.editor.access_token)
    try:
        await editor.insert("print('kept')\n")
        await asyncio.wait_for(_stored(crew, session_id, "print('kept')\n"), 10)
        await editor.insert("x" * (SMALL_DOCS + 100))
        await editor.wait_for(lambda c: bool(c.denials()))
        assert "size limit" in editor.denials()[0]
        assert crew.document(session_id)["text"] == "print('kept')\n", "nothing stored is lost"
        # The socket stays open and answers the protocol.
        await answers_step1(editor)
        assert editor.ws.close_code is None
    finally:
        await editor.close()
