"""The document socket's relay rules without a network: roles, refusals, failures, awareness."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from prometheus_client import REGISTRY
from pycrdt import Doc, Text

from gateway.auth import Auth
from gateway.errors import ApiError
from gateway.realtime.doc import DocConnection
from gateway.realtime.hub import Hub
from gateway.realtime.protocol import (
    AwarenessEntry,
    awareness_message,
    encode_awareness,
    parse_awareness,
    sync_step1,
    sync_step2,
    sync_update,
)
from services.common.docframes import DOC_AWARENESS, DOC_QUERY, DocFrame
from services.common.identity import Claims
from tests.realtime.fakes import DocBackends, FakeDocHub, FakeSocket, config

SESSION = "22222222-2222-2222-2222-222222222222"


def _conn(role: str = "editor", ended: bool = False, hub: FakeDocHub | None = None,
          user: str = "user-1", login: str = "octocat",
          **env: str) -> tuple[DocConnection, FakeSocket, FakeDocHub, DocBackends]:
    ws, hub, backends = FakeSocket(), hub or FakeDocHub(), DocBackends()
    auth = Auth(Claims(user, time.time() + 3600, "j", login), "token")
    conn = DocConnection(ws, hub=cast(Hub, hub), backends=cast(Any, backends),
                         config=config(**env), session_id=SESSION, auth=auth, role=role,
                         ended=ended)
    conn.start()
    return conn, ws, hub, backends


def _update(text: str) -> bytes:
    doc: Doc = Doc()
    doc.get("code", type=Text).insert(0, text)
    return doc.get_update()


async def _done(conn: DocConnection) -> None:
    await conn.finish()
    await conn.stop()


async def test_open_sends_sync_step1_and_asks_peers_for_awareness() -> None:
    conn, ws, hub, backends = _conn()
    await conn.open()
    await asyncio.wait_for(_until(lambda: ws.frames), 2)
    assert ws.frames[0] == sync_step1(b"\x00")
    assert backends.sessions.synced == [b""], "only the state vector is asked for"
    assert hub.versions == [0]
    assert [f.kind for f in hub.frames] == [DOC_QUERY]
    await _done(conn)


async def test_editor_updates_are_stored_and_step1_is_answered_from_the_store() -> None:
    conn, ws, _, backends = _conn()
    update = _update("hi")
    await conn.handle(sync_update(update))
    await conn.handle(sync_step2(b"\x00\x00"))  # nothing new: not stored
    assert backends.sessions.applied == [update]
    await conn.handle(sync_step1(b"\x00"))
    await asyncio.wait_for(_until(lambda: ws.frames), 2)
    assert ws.frames == [sync_step2(b"\x00\x00")]
    await _done(conn)


async def test_viewer_updates_are_dropped_and_told_once_a_second() -> None:
    conn, _, hub, backends = _conn(role="viewer")
    for _ in range(5):
        await conn.handle(sync_update(_update("x")))
    assert backends.sessions.applied == []
    assert len(hub.told) == 1
    user, event = hub.told[0]
    assert user == "user-1"
    assert (event["type"], event["code"]) == ("error", "permission_denied")
    await _done(conn)


async def test_role_change_and_end_apply_to_the_open_socket() -> None:
    conn, _, hub, backends = _conn()
    conn.on_event({"type": "member.role_changed", "user_id": "someone", "role": "viewer"}, "")
    await conn.handle(sync_update(_update("a")))
    conn.on_event({"type": "member.role_changed", "user_id": "user-1", "role": "viewer"}, "")
    await conn.handle(sync_update(_update("b")))
    assert len(backends.sessions.applied) == 1
    conn.role = "editor"
    conn._last_refusal = float("-inf")
    conn.on_event({"type": "session.ended", "seq": 9}, "")
    await conn.handle(sync_update(_update("c")))
    assert len(backends.sessions.applied) == 1
    assert [e["code"] for _, e in hub.told] == ["permission_denied", "failed_precondition"]
    await _done(conn)


async def test_a_refusal_by_the_store_is_mapped_to_a_close_code() -> None:
    cases = [(ApiError(503, "unavailable", "down"), 1013), (ApiError(404, "not_found", "x"), 4403),
             (ApiError(400, "invalid_argument", "bad"), 1007),
             (ApiError(401, "unauthenticated", "x"), 4401)]
    for error, code in cases:
        conn, ws, _, backends = _conn()
        backends.sessions.fail_with = error
        await conn.handle(sync_update(_update("x")))
        await asyncio.wait_for(conn.finished.wait(), 2)
        assert ws.closed_with is not None
        assert ws.closed_with[0] == code
        await _done(conn)
    conn, ws, hub, backends = _conn()
    backends.sessions.fail_with = ApiError(403, "permission_denied", "viewers cannot edit")
    await conn.handle(sync_update(_update("x")))
    assert conn.role == "viewer"
    assert not conn.closing
    assert hub.told[0][1]["code"] == "permission_denied"
    await _done(conn)


async def test_garbage_closes_with_1007() -> None:
    conn, ws, _, _ = _conn()
    await conn.handle(b"\x00\x09\x01")
    await asyncio.wait_for(conn.finished.wait(), 2)
    assert ws.closed_with is not None
    assert ws.closed_with[0] == 1007
    await _done(conn)


async def test_awareness_is_relayed_remembered_and_cleared_on_goodbye() -> None:
    conn, _, hub, _ = _conn(role="viewer")  # viewers share cursors too
    entries = [AwarenessEntry(7, 1, '{"cursor":1}'), AwarenessEntry(8, 4, '{"cursor":2}')]
    await conn.handle(awareness_message(encode_awareness(entries)))
    await conn.handle(awareness_message(encode_awareness([AwarenessEntry(8, 5, "null")])))
    assert [e.client_id for e in conn.awareness_entries()] == [7]
    relayed = [f for f in hub.frames if f.kind == DOC_AWARENESS]
    assert len(relayed) == 2
    assert relayed[0].origin == conn.id_bytes
    await conn.goodbye()
    farewell = hub.frames[-1]
    assert isinstance(farewell, DocFrame)
    assert parse_awareness(farewell.payload) == (AwarenessEntry(7, 2, "null"),)
    await _done(conn)


def _aware(*entries: tuple[int, int, str]) -> bytes:
    return awareness_message(encode_awareness([AwarenessEntry(*e) for e in entries]))


def _relayed(hub: FakeDocHub) -> list[tuple[AwarenessEntry, ...]]:
    return [parse_awareness(f.payload) for f in hub.frames if f.kind == DOC_AWARENESS]


async def test_a_connection_is_sent_its_own_awareness_back() -> None:
    conn, ws, hub, _ = _conn()
    frame = _aware((7, 1, '{"user":{"name":"octocat"}}'))
    await conn.handle(frame)
    await asyncio.wait_for(_until(lambda: ws.frames), 2)
    assert ws.frames == [frame], "echoed as the reference y-websocket server does"
    assert _relayed(hub) == [(AwarenessEntry(7, 1, '{"user":{"name":"octocat"}}'),)]
    await _done(conn)


async def test_another_users_client_id_can_be_neither_set_nor_cleared() -> None:
    hub = FakeDocHub()
    victim, _, _, _ = _conn(hub=hub, user="victim", login="victim")
    await victim.handle(_aware((7, 1, '{"cursor":1,"user":{"name":"victim"}}')))
    thief, ws, _, _ = _conn(hub=hub, user="thief", login="thief")
    await thief.handle(_aware((7, 2, '{"cursor":666,"user":{"name":"victim"}}'),
                              (9, 1, '{"cursor":2,"user":{"name":"thief"}}')))
    await thief.handle(_aware((7, 3, "null")))
    assert _relayed(hub) == [(AwarenessEntry(7, 1, '{"cursor":1,"user":{"name":"victim"}}'),),
                             (AwarenessEntry(9, 1, '{"cursor":2,"user":{"name":"thief"}}'),)]
    assert [e.client_id for e in thief.awareness_entries()] == [9]
    await thief.goodbye()
    assert _relayed(hub)[-1] == (AwarenessEntry(9, 2, "null"),), "only its own id is cleared"
    await asyncio.wait_for(_until(lambda: ws.frames), 2)
    assert ws.frames == [_aware((9, 1, '{"cursor":2,"user":{"name":"thief"}}'))]
    await _done(thief)
    await _done(victim)


async def test_a_peers_state_sent_back_by_another_tab_of_the_same_user_is_not_taken_over() -> None:
    """y-websocket re-sends every awareness change it hears, its peers' included."""
    hub = FakeDocHub()
    first, _, _, _ = _conn(hub=hub)
    await first.handle(_aware((7, 1, '{"cursor":1}')))
    second, _, _, _ = _conn(hub=hub)  # the same user in another tab
    for _ in range(3):
        await second.handle(_aware((7, 1, '{"cursor":1}')))
    assert len(_relayed(hub)) == 1
    await second.goodbye()
    assert len(_relayed(hub)) == 1, "its goodbye does not clear the other tab's cursor"
    await first.goodbye()
    assert _relayed(hub)[-1] == (AwarenessEntry(7, 2, "null"),)
    assert hub.claims == {}, "claims are released on goodbye"
    await _done(second)
    await _done(first)


async def test_a_connection_owns_only_its_first_client_ids() -> None:
    conn, _, hub, _ = _conn(REALTIME_AWARENESS_CLIENTS="2")
    await conn.handle(_aware(*[(i, 1, "{}") for i in range(1, 6)]))
    await conn.handle(_aware((1, 2, "null"), (2, 2, '{"a":1}')))
    await conn.handle(_aware((3, 2, "{}")))  # a freed slot is not a new one
    assert [[e.client_id for e in r] for r in _relayed(hub)] == [[1, 2], [1, 2]]
    assert [e.client_id for e in conn.awareness_entries()] == [2]
    await _done(conn)


async def test_an_oversized_awareness_entry_is_refused() -> None:
    conn, ws, hub, _ = _conn()
    big = '{"name":"' + "é" * 2100 + '"}'  # 2,112 characters, over 4 KiB encoded
    ok = '{"ok":true,"user":{"name":"octocat"}}'
    await conn.handle(_aware((7, 1, big), (8, 1, ok)))
    await conn.handle(_aware((9, 1, '{"junk":"' + "x" * 1_000_000 + '"}')))
    assert _relayed(hub) == [(AwarenessEntry(8, 1, ok),)]
    assert [e.client_id for e in conn.awareness_entries()] == [8]
    await asyncio.wait_for(_until(lambda: ws.frames), 2)
    assert ws.frames == [_aware((8, 1, ok))]
    await _done(conn)


async def test_with_redis_down_a_connection_keeps_its_ids_and_takes_no_new_one() -> None:
    conn, _, hub, _ = _conn()
    await conn.handle(_aware((7, 1, '{"me":1}')))
    hub.redis_down = True
    conn._owned[7] = 0.0  # renewed long ago: the next frame asks Redis again
    # Its own id is still its own; a peer's state it re-sends does not become its own.
    await conn.handle(_aware((7, 2, '{"me":2}'), (8, 1, '{"peer":1}')))
    assert [e.client_id for e in conn.awareness_entries()] == [7]
    assert _relayed(hub)[-1] == (AwarenessEntry(7, 2, '{"me":2,"user":{"name":"octocat"}}'),)
    await _done(conn)


async def test_more_awareness_entries_than_a_connection_may_send_are_dropped_not_closed() -> None:
    """A joiner's y-websocket client re-sends a busy room's states as one update."""
    conn, _, hub, _ = _conn()
    await conn.handle(_aware(*((n, 1, "{}") for n in range(100, 165))))
    assert not conn.closing
    assert _relayed(hub) == []
    await conn.handle(_aware((7, 1, "{}")))
    assert _relayed(hub) == [(AwarenessEntry(7, 1, '{"user":{"name":"octocat"}}'),)]
    await _done(conn)


async def test_a_flood_closes_the_socket_with_4429_and_is_counted() -> None:
    before = REGISTRY.get_sample_value("tandem_ws_rate_limited_total", {"socket": "doc"}) or 0.0
    conn, ws, hub, _ = _conn(REALTIME_DOC_RATE_PER_SECOND="1", REALTIME_DOC_RATE_BURST="5")
    for i in range(50):
        await conn.handle(_aware((7, i + 1, "{}")))
        if conn.closing:
            break
    await asyncio.wait_for(conn.finished.wait(), 2)
    assert ws.closed_with is not None
    assert ws.closed_with[0] == 4429
    assert len(_relayed(hub)) == 5
    after = REGISTRY.get_sample_value("tandem_ws_rate_limited_total", {"socket": "doc"})
    assert after == before + 1
    await _done(conn)


async def test_query_awareness_is_answered_at_most_once_a_second() -> None:
    conn, _, hub, _ = _conn()
    for _ in range(20):
        await conn.handle(b"\x03")
    assert [f.kind for f in hub.frames] == [DOC_QUERY]
    await _done(conn)


async def test_a_refused_update_is_answered_with_permission_denied_on_the_socket() -> None:
    viewer, ws, _, _ = _conn(role="viewer")
    for _ in range(3):
        await viewer.handle(sync_update(_update("x")))
    await asyncio.wait_for(_until(lambda: len(ws.frames) == 3), 2)
    reason = b"viewers cannot edit the document; the update was dropped"
    # y-protocols: messageAuth (2), permission denied (0), the reason as a varString.
    assert ws.frames == [b"\x02\x00" + bytes([len(reason)]) + reason] * 3
    await _done(viewer)
    ended, ws, _, _ = _conn(ended=True)
    await ended.handle(sync_update(_update("x")))
    await asyncio.wait_for(_until(lambda: ws.frames), 2)
    assert b"session has ended" in ws.frames[0]
    await _done(ended)
    editor, ws, hub, backends = _conn()
    backends.sessions.fail_with = ApiError(413, "payload_too_large", "document too large")
    await editor.handle(sync_update(_update("x" * 100)))
    await asyncio.wait_for(_until(lambda: ws.frames), 2)
    assert b"size limit" in ws.frames[0]
    assert not editor.closing, "the socket stays usable"
    assert hub.told[0][1]["code"] == "payload_too_large"
    await _done(editor)


async def test_removal_closes_the_document_socket_with_4403() -> None:
    conn, ws, _, _ = _conn()
    conn.on_event({"type": "member.removed", "seq": 3, "user_id": "user-1"}, "")
    await asyncio.wait_for(conn.finished.wait(), 2)
    assert ws.closed_with is not None
    assert ws.closed_with[0] == 4403
    await _done(conn)


async def _until(check: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.005)


async def test_awareness_user_is_the_connections_login_whatever_it_sends() -> None:
    conn, ws, hub, _ = _conn(role="viewer", login="monalisa")
    honest = '{"user":{"name":"monalisa","color":"#2b8a3e","colorLight":"#2b8a3e33"},"c":1}'
    forged = '{"user":{"name":"octocat","color":"red;position:fixed;inset:0"},"c":2}'
    await conn.handle(_aware((7, 1, honest), (8, 1, forged), (9, 1, "[1]")))
    fixed = '{"user":{"name":"monalisa"},"c":2}'
    # The honest entry is kept as sent, the forged one rewritten, the array dropped.
    assert _relayed(hub) == [(AwarenessEntry(7, 1, honest), AwarenessEntry(8, 1, fixed))]
    assert conn.awareness_entries() == [AwarenessEntry(7, 1, honest), AwarenessEntry(8, 1, fixed)]
    await asyncio.wait_for(_until(lambda: ws.frames), 2)
    assert ws.frames == [_aware((7, 1, honest), (8, 1, fixed))]
    await conn.handle(_aware((8, 2, "null")))
    assert _relayed(hub)[-1] == (AwarenessEntry(8, 2, "null"),), "a removal passes as sent"
    assert conn.awareness_entries() == [AwarenessEntry(7, 1, honest)]
    await _done(conn)


async def test_a_peers_state_re_sent_is_dropped_before_any_rewriting() -> None:
    hub = FakeDocHub()
    peer, _, _, _ = _conn(hub=hub, user="peer", login="hubot")
    await peer.handle(_aware((7, 1, '{"user":{"name":"hubot"}}')))
    me, _, _, _ = _conn(hub=hub, user="me", login="octocat")
    await me.handle(_aware((7, 1, '{"user":{"name":"hubot"}}')))
    assert _relayed(hub) == [(AwarenessEntry(7, 1, '{"user":{"name":"hubot"}}'),)]
    await _done(me)
    await _done(peer)
