"""End-to-end realtime helpers: a second gateway replica, signed-in people, sessions with members,
and a bare document-socket client that keeps every frame (refusals included)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import pytest
from pycrdt import (
    Doc,
    Text,
    YMessageType,
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.realtime.ywebsocket import (
    AwarenessEntry,
    AwarenessMessage,
    awareness_message,
    encode_awareness,
    parse_y_message,
)
from scripts.platform import LocalPlatform, ProcSpec, free_port, wait_ready
from tests.helpers.identity import SignedIn, sign_in_http

SECOND_GATEWAY = "gateway-realtime"


def ws_url(base_url: str, path: str, token: str | None = None) -> str:
    """`http://host:port` + path -> `ws://host:port/path?access_token=...`."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, path, f"access_token={token}" if token else "", ""))


@pytest.fixture(scope="session")
def gateway2(platform: LocalPlatform) -> str:
    """A second gateway replica of the shared platform (same services and Redis)."""
    if SECOND_GATEWAY not in platform.procs:
        port = platform.add_gateway(SECOND_GATEWAY)
        wait_ready(f"http://127.0.0.1:{port}/ready", 60, what=SECOND_GATEWAY)
    return "http://127.0.0.1:" + platform.specs[SECOND_GATEWAY].env["GATEWAY_PORT"]


def add_gateway_with(platform: LocalPlatform, name: str, **env: str) -> str:
    """Another gateway replica with its own settings (e.g. short presence heartbeats)."""
    port = free_port()
    spec = platform.specs["gateway"]
    platform.specs[name] = ProcSpec(name, spec.argv, dict(spec.env, GATEWAY_PORT=str(port), **env))
    platform.start([name])
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/ready", 60, what=name)
    return url


@dataclass
class Crew:
    """People signed in once per module (sign-ins count against the per-IP auth limit)."""

    url: str
    owner: SignedIn
    editor: SignedIn
    viewer: SignedIn
    stranger: SignedIn

    @classmethod
    def sign_in(cls, url: str) -> Crew:
        tag = secrets.token_hex(3)
        people = [sign_in_http(url, f"rt-{role}-{tag}")
                  for role in ("owner", "editor", "viewer", "stranger")]
        return cls(url, *people)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def session(self, *, editor: bool = True, viewer: bool = True, title: str = "Pairing") -> str:
        """A new session owned by `owner`, with the editor and viewer joined by invitation."""
        with self.api() as api:
            reply = api.post("/api/v1/sessions", json={"title": title},
                             headers=self.owner.headers)
            assert reply.status_code == 201, reply.text
            session_id: str = reply.json()["id"]
            for user, role, wanted in ((self.editor, "editor", editor),
                                       (self.viewer, "viewer", viewer)):
                if wanted:
                    self.join(api, session_id, user, role)
        return session_id

    def join(self, api: httpx.Client, session_id: str, user: SignedIn, role: str) -> None:
        invited = api.post(f"/api/v1/sessions/{session_id}/invitations",
                           json={"github_login": user.login, "role": role},
                           headers=self.owner.headers)
        assert invited.status_code == 201, invited.text
        accepted = api.post(f"/api/v1/invitations/{invited.json()['id']}/accept",
                            headers=user.headers)
        assert accepted.status_code == 200, accepted.text

    def call(self, method: str, path: str, user: SignedIn | None = None,
             **kwargs: Any) -> httpx.Response:
        with self.api() as api:
            return api.request(method, path, headers=(user or self.owner).headers, **kwargs)

    def document(self, session_id: str) -> dict[str, Any]:
        reply = self.call("GET", f"/api/v1/sessions/{session_id}/document")
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body


async def refused(url: str, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
    """The HTTP status (and error body) of a WebSocket handshake the gateway refuses."""
    with pytest.raises(InvalidStatus) as info:
        async with connect(ws_url(url, path, token), proxy=None, open_timeout=5):
            pass
    response = info.value.response
    body: dict[str, Any] = orjson.loads(response.body or b"{}")
    return response.status_code, body


async def synced_text(base_url: str, session_id: str, token: str, timeout: float = 10.0) -> str:
    """The document's text as a browser editor joining now syncs it (y-websocket steps 1 and 2)."""
    doc: Doc[Any] = Doc()
    async with asyncio.timeout(timeout), connect(
            ws_url(base_url, f"/api/v1/sessions/{session_id}/doc", token), proxy=None,
            compression=None, max_size=None, ping_interval=None, close_timeout=2) as ws:
        await ws.send(create_sync_message(doc))
        async for raw in ws:
            if isinstance(raw, bytes) and raw[0] == YMessageType.SYNC:
                reply = handle_sync_message(raw[1:], doc)
                if reply is not None:
                    await ws.send(reply)
                if raw[1] == YSyncMessageType.SYNC_STEP2:
                    return str(doc.get("code", type=Text))
    raise AssertionError("the document socket closed before sync step 2")


class YSocket:
    """A bare document-socket client that keeps every binary frame it is sent."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[bytes] = []
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, base_url: str, session_id: str, token: str) -> YSocket:
        ws = await connect(ws_url(base_url, f"/api/v1/sessions/{session_id}/doc", token),
                           proxy=None, compression=None, max_size=None, ping_interval=None,
                           open_timeout=10, close_timeout=2)
        client = cls(ws)
        client._reader = asyncio.create_task(client._read())
        await ws.send(b"\x00\x00\x01\x00")  # sync step 1 of an empty document
        await client.wait_for(lambda c: any(f[:2] == b"\x00\x01" for f in c.frames))
        return client

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    self.frames.append(raw)
                    self._changed.set()
        self._changed.set()

    async def wait_for(self, check: Callable[[YSocket], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check(self):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"condition not met within {timeout}s"
            assert self._reader is not None
            assert not self._reader.done(), f"socket closed ({self.ws.close_code})"
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        assert self._reader is not None
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.ws.close_code

    def awareness(self) -> Iterator[AwarenessEntry]:
        for frame in self.frames:
            if frame[0] == 1:
                message = parse_y_message(frame)
                assert isinstance(message, AwarenessMessage)
                yield from message.clients

    def awareness_bytes(self) -> int:
        return sum(len(f) for f in self.frames if f[0] == 1)

    def denials(self) -> list[str]:
        """Reasons of y-protocols' auth permission-denied messages received."""
        reasons = []
        for frame in self.frames:
            if frame[:2] == b"\x02\x00":
                length, pos, shift = 0, 2, 0
                while True:
                    byte = frame[pos]
                    pos += 1
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if byte < 0x80:
                        break
                reasons.append(frame[pos:pos + length].decode())
        return reasons

    async def tell(self, *entries: tuple[int, int, str]) -> None:
        await self.ws.send(awareness_message(encode_awareness(
            [AwarenessEntry(*e) for e in entries])))

    async def insert(self, text: str) -> None:
        doc: Doc[Any] = Doc()
        doc.get("code", type=Text).insert(0, text)
        await self.ws.send(create_update_message(doc.get_update()))

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader




async def answers_step1(client: YSocket) -> None:
    count = len(client.frames)
    await client.ws.send(b"\x00\x00\x01\x00")
    await client.wait_for(lambda c: any(f[:2] == b"\x00\x01" for f in c.frames[count:]))
