"""The document socket's relay rules without a network: roles, refusals, failures, awareness."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from pycrdt import Doc, Text

from gateway.auth import Auth
from gateway.errors import ApiError
from gateway.realtime.doc import DocConnection
from gateway.realtime.hub import Hub
from gateway.realtime.protocol import (
    DOC_AWARENESS,
    DOC_QUERY,
    AwarenessEntry,
    DocFrame,
    awareness_message,
    encode_awareness,
    parse_awareness,
    sync_step1,
    sync_step2,
    sync_update,
)
from services.common.identity import Claims
from tests.realtime.fakes import DocBackends, FakeDocHub, FakeSocket, config

SESSION = "22222222-2222-2222-2222-222222222222"


def _conn(role: str = "editor", ended: bool = False) -> tuple[DocConnection, FakeSocket,
                                                            FakeDocHub, DocBackends]:
    ws, hub, backends = FakeSocket(), FakeDocHub(), DocBackends()
    auth = Auth(Claims("user-1", time.time() + 3600, "j", "octocat"), "token")
    conn = DocConnection(ws, hub=cast(Hub, hub), backends=cast(Any, backends), config=config(),
                         session_id=SESSION, auth=auth, role=role, ended=ended)
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
