"""Awareness identity on the document socket, over real WebSockets to an in-process gateway:
whatever `user` a connection sends, its peers see its own GitHub login and only `#rrggbb[aa]`
colours (y-codemirror.next draws them as the cursor's label and inline style)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import grpc
import orjson
import pytest

from gateway import keys
from gateway.realtime.ywebsocket import (
    AwarenessEntry,
    AwarenessMessage,
    awareness_message,
    encode_awareness,
    parse_y_message,
)
from tests.gateway.conftest import Client, Gateway
from tests.helpers.identity import SignedIn, sign_in_grpc
from tests.sessions.conftest import unique_login

FORGED_COLOR = "red;position:fixed;inset:0;z-index:9999"
CURSOR = {"anchor": {"type": None, "tname": "code", "item": {"client": 9, "clock": 3}, "assoc": 0},
          "head": {"type": None, "tname": "code", "item": {"client": 9, "clock": 3}, "assoc": 0}}


async def _people(client: Client, *roles: str) -> list[SignedIn]:
    async with grpc.aio.insecure_channel(client.app[keys.CONFIG].common.auth_addr) as channel:
        return [await sign_in_grpc(channel, unique_login(role)) for role in roles]


async def _session(client: Client, owner: SignedIn, **members: SignedIn) -> str:
    """A session of `owner` with each member joined in the role it is named by."""
    reply = await client.post("/api/v1/sessions", json={"title": "Cursors"}, headers=owner.headers)
    assert reply.status == 201, await reply.text()
    session_id: str = (await reply.json())["id"]
    for role, user in members.items():
        invited = await client.post(f"/api/v1/sessions/{session_id}/invitations",
                                    json={"github_login": user.login, "role": role},
                                    headers=owner.headers)
        assert invited.status == 201, await invited.text()
        accepted = await client.post(f"/api/v1/invitations/{(await invited.json())['id']}/accept",
                                     headers=user.headers)
        assert accepted.status == 200, await accepted.text()
    return session_id


class Peer:
    """One y-websocket connection; keeps every awareness entry it is sent."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.entries: list[AwarenessEntry] = []
        self.raw: list[bytes] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, client: Client, session_id: str, user: SignedIn) -> Peer:
        ws = await client.ws_connect(f"/api/v1/sessions/{session_id}/doc",
                                     params={"access_token": user.access_token})
        return cls(ws)

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.BINARY and message.data[:1] == b"\x01":
                parsed = parse_y_message(message.data)
                assert isinstance(parsed, AwarenessMessage)
                self.raw.append(message.data)
                self.entries.extend(parsed.clients)

    async def tell(self, *entries: tuple[int, int, str]) -> None:
        await self.ws.send_bytes(awareness_message(encode_awareness(
            [AwarenessEntry(*e) for e in entries])))

    def state(self, client_id: int) -> str | None:
        """The latest state this peer was sent for `client_id` (highest clock wins, as in Yjs)."""
        best: AwarenessEntry | None = None
        for entry in self.entries:
            if entry.client_id == client_id and (best is None or entry.clock >= best.clock):
                best = entry
        return None if best is None else best.state

    async def wait(self, check: Callable[[Peer], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check(self):
            assert not self._reader.done(), f"socket closed ({self.ws.close_code})"
            assert time.monotonic() < deadline, "condition not met in time"
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


def _json(state: str | None) -> Any:
    assert state is not None
    return orjson.loads(state)


async def test_a_viewer_cannot_label_its_cursor_with_another_login_or_style_it(
        gateway: Gateway) -> None:
    async with gateway("sessions") as client:
        owner, viewer = await _people(client, "owner", "viewer")
        session_id = await _session(client, owner, viewer=viewer)
        watcher = await Peer.connect(client, session_id, owner)
        mallory = await Peer.connect(client, session_id, viewer)
        try:
            forged = {"user": {"name": owner.login, "color": FORGED_COLOR,
                               "colorLight": "#ff000033", "avatar": "javascript:alert(1)"},
                      "cursor": CURSOR, "extra": ["kept", 1.5]}
            await mallory.tell((4242, 1, orjson.dumps(forged).decode()))
            await watcher.wait(lambda p: p.state(4242) is not None)
            seen = _json(watcher.state(4242))
            # Labelled with the viewer's own login; the CSS in `color` is gone, the
            # well-formed light colour stays, and so does everything outside `user`.
            assert seen == {"user": {"name": viewer.login, "colorLight": "#ff000033"},
                            "cursor": CURSOR, "extra": ["kept", 1.5]}
            assert list(seen) == ["user", "cursor", "extra"], "user keeps its place"
            # Its own echo says the same (what any peer's copy would be).
            await mallory.wait(lambda p: p.state(4242) is not None)
            assert mallory.state(4242) == watcher.state(4242)
            # A name that is not a string and a colour that is not one are replaced too.
            await mallory.tell((4242, 2, '{"user":{"name":{"x":1},"color":["#000000"],'
                                         '"colorLight":"#12345"},"cursor":null}'))
            await watcher.wait(lambda p: any(e.clock == 2 for e in p.entries
                                             if e.client_id == 4242))
            assert _json(watcher.state(4242)) == {"user": {"name": viewer.login}, "cursor": None}
            # No `user` at all gets one: every cursor is labelled with who it is.
            await mallory.tell((4242, 3, '{"cursor":{"anchor":1,"head":2}}'))
            await watcher.wait(lambda p: any(e.clock == 3 for e in p.entries
                                             if e.client_id == 4242))
            assert _json(watcher.state(4242)) == {"cursor": {"anchor": 1, "head": 2},
                                                  "user": {"name": viewer.login}}
            # Removal passes as sent.
            await mallory.tell((4242, 4, "null"))
            await watcher.wait(lambda p: p.state(4242) == "null")
        finally:
            await mallory.close()
            await watcher.close()


async def test_an_honest_state_is_relayed_and_echoed_byte_for_byte(gateway: Gateway) -> None:
    async with gateway("sessions") as client:
        owner, editor = await _people(client, "owner", "editor")
        session_id = await _session(client, owner, editor=editor)
        watcher = await Peer.connect(client, session_id, owner)
        writer = await Peer.connect(client, session_id, editor)
        try:
            # What the web client sends (src/room/room.ts): its login and palette colours.
            honest = orjson.dumps({"user": {"name": editor.login, "color": "#1C7ED6",
                                            "colorLight": "#1c7ed633"},
                                   "cursor": CURSOR}).decode()
            frame = awareness_message(encode_awareness([AwarenessEntry(77, 1, honest)]))
            await writer.ws.send_bytes(frame)
            await watcher.wait(lambda p: p.state(77) is not None)
            assert watcher.state(77) == honest
            await writer.wait(lambda p: p.raw)
            assert writer.raw[0] == frame, "the echo is the frame as sent"
            # A joiner asks for the room's awareness and is sent the state as kept.
            late = await Peer.connect(client, session_id, owner)
            try:
                await late.wait(lambda p: p.state(77) is not None)
                assert late.state(77) == honest
            finally:
                await late.close()
        finally:
            await writer.close()
            await watcher.close()


async def test_a_joiner_is_sent_the_rewritten_state_and_a_rewrite_over_the_limit_is_dropped(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    # The realtime settings are read from the process environment when the gateway starts.
    monkeypatch.setenv("REALTIME_AWARENESS_ENTRY_BYTES", "200")
    async with gateway("sessions") as client:
        owner, viewer = await _people(client, "owner", "viewer")
        session_id = await _session(client, owner, viewer=viewer)
        mallory = await Peer.connect(client, session_id, viewer)
        try:
            await mallory.tell((5, 1, orjson.dumps({"user": {"name": owner.login},
                                                    "n": 1}).decode()))
            # 1e2 is re-encoded as 100.0: 40 x 3 bytes become 40 x 5, past the 200-byte limit.
            grows = '{"user":{"name":"x"},"v":[' + ",".join(["1e2"] * 40) + "]}"
            assert len(grows) <= 200
            await mallory.tell((6, 1, grows))
            await mallory.tell((7, 1, "[1,2,3]"))  # not an object: it cannot carry a user
            await mallory.tell((5, 2, orjson.dumps({"user": {"name": owner.login},
                                                    "n": 2}).decode()))
            await mallory.wait(lambda p: p.state(5) is not None and _json(p.state(5))["n"] == 2)
            late = await Peer.connect(client, session_id, owner)
            try:
                await late.wait(lambda p: p.state(5) is not None)
                assert _json(late.state(5)) == {"user": {"name": viewer.login}, "n": 2}
                assert {e.client_id for e in late.entries} == {5}
                assert {e.client_id for e in mallory.entries} == {5}, "dropped, not echoed"
            finally:
                await late.close()
        finally:
            await mallory.close()
