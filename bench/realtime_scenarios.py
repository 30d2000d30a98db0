"""Realtime clients and measurements for `make bench` and the end-to-end tests.

Independent of the gateway's code: the events client speaks the JSON protocol of
docs/api.md and the document client is a small y-websocket provider built on
pycrdt's own sync helpers, so tests exercise the server against a second
implementation. The measuring functions take gateway URLs and access tokens and
return plain numbers; the bench registry wraps them into its table rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
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
from websockets.exceptions import ConnectionClosed

from bench.wsclient import ListenerProtocol, listen


def ws_url(base_url: str, path: str, token: str | None = None) -> str:
    """`http://host:port` + path -> `ws://host:port/path?access_token=...`."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = f"access_token={token}" if token else ""
    return urlunsplit((scheme, parts.netloc, path, query, ""))


async def _open(url: str, max_size: int | None = 1 << 20) -> ClientConnection:
    # proxy=None: never route loopback test traffic through an environment proxy.
    return await connect(url, proxy=None, compression=None, max_size=max_size,
                         open_timeout=10, ping_interval=None, close_timeout=2)


def close_code(ws: ClientConnection) -> int | None:
    return ws.close_code


# --- the events socket ---------------------------------------------------------------------


@dataclass
class EventsClient:
    """One events-socket connection; received events are kept in order for inspection."""

    ws: ClientConnection
    welcome: dict[str, Any]
    received: list[dict[str, Any]] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    on_event: Callable[[dict[str, Any]], None] | None = None

    @classmethod
    async def connect(cls, base_url: str, session_id: str, token: str, *,
                      last_seq: int | None = None,
                      on_event: Callable[[dict[str, Any]], None] | None = None) -> EventsClient:
        ws = await _open(ws_url(base_url, f"/api/v1/sessions/{session_id}/events", token))
        welcome = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if welcome.get("type") != "welcome":
            raise AssertionError(f"expected welcome first, got {welcome}")
        client = cls(ws, welcome, on_event=on_event)
        if last_seq is not None:
            await client.send({"type": "hello", "last_seq": last_seq})
        client._reader = asyncio.create_task(client._read())
        return client

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                event = orjson.loads(raw)
                self.received.append(event)
                if self.on_event is not None:
                    self.on_event(event)
                self._arrived.set()
        self._arrived.set()

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(frame if isinstance(frame, str | bytes) else orjson.dumps(frame).decode())

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e.get("type") == kind]

    async def wait_for(self, check: Callable[[list[dict[str, Any]]], Any],
                       timeout: float = 10.0) -> Any:
        """Wait until `check(received)` is truthy; answer its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = check(self.received)
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"not received within {timeout}s; last events: "
                                     f"{self.received[-5:]}")
            if self._reader is not None and self._reader.done():
                raise AssertionError(f"socket closed ({self.ws.close_code}) before the "
                                     f"condition held; last events: {self.received[-5:]}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def wait_type(self, kind: str, timeout: float = 10.0,
                        where: Callable[[dict[str, Any]], bool] = lambda e: True) -> dict[str, Any]:
        found: dict[str, Any] = await self.wait_for(
            lambda events: next((e for e in events if e.get("type") == kind and where(e)), None),
            timeout)
        return found

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        if self._reader is not None:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.ws.close_code

    async def chat(self, body: str, client_id: str | None = None) -> dict[str, Any]:
        """Send a chat message and wait for its ack."""
        cid = client_id or uuid.uuid4().hex
        await self.send({"type": "chat.send", "body": body, "client_id": cid})
        return await self.wait_type("chat.ack", where=lambda e: e.get("client_id") == cid)

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader


# --- the document socket -------------------------------------------------------------------


class DocClient:
    """A y-websocket client of the session's `Y.Text` "code", on pycrdt's sync helpers."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get("code", type=Text)
        self.synced = asyncio.Event()
        self.awareness: list[bytes] = []
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._subscription = self.doc.observe(lambda _event: self._changed.set())

    @classmethod
    async def connect(cls, base_url: str, session_id: str, token: str) -> DocClient:
        ws = await _open(ws_url(base_url, f"/api/v1/sessions/{session_id}/doc", token),
                         max_size=None)
        client = cls(ws)
        client._reader = asyncio.create_task(client._read())
        # What WebsocketProvider does on open: ask for what we lack.
        await ws.send(create_sync_message(client.doc))
        return client

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                if not isinstance(raw, bytes):
                    continue
                if raw[0] == YMessageType.SYNC:
                    reply = handle_sync_message(raw[1:], self.doc)
                    if reply is not None:
                        await self.ws.send(reply)
                    if raw[1] == YSyncMessageType.SYNC_STEP2:
                        self.synced.set()
                elif raw[0] == YMessageType.AWARENESS:
                    self.awareness.append(raw)
                self._changed.set()
        self._changed.set()

    async def insert(self, index: int, value: str) -> None:
        before = self.doc.get_state()
        self.text.insert(index, value)
        await self.ws.send(create_update_message(self.doc.get_update(before)))

    async def send_raw(self, data: bytes | str) -> None:
        await self.ws.send(data)

    def value(self) -> str:
        return str(self.text)

    async def wait_until(self, check: Callable[[DocClient], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"document condition not met within {timeout}s; "
                                     f"text is {self.value()[:200]!r}")
            if self._reader is not None and self._reader.done():
                raise AssertionError(f"document socket closed ({self.ws.close_code})")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        if self._reader is not None:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader


# --- measurements --------------------------------------------------------------------------


@dataclass(frozen=True)
class Latencies:
    """Samples in seconds, and what could not be measured."""

    samples: list[float]
    seconds: float
    errors: int = 0

    def percentile(self, p: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        index = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    @property
    def p50_ms(self) -> float | None:
        return self.percentile(50)

    @property
    def p99_ms(self) -> float | None:
        return self.percentile(99)


async def _gather_limited(factories: Sequence[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def run(factory: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await factory()

    return await asyncio.gather(*(run(f) for f in factories))


async def ws_fanout(gateways: Sequence[str], session_id: str, tokens: Sequence[str], *,
                    clients: int = 500, rate: float = 100.0, seconds: float = 10.0,
                    per_sender_rate: float = 15.0) -> Latencies:
    """Fan-out latency: `clients` event sockets split over `gateways`, chat at `rate` msg/s.

    Each chat message carries its send time; every receiver records now - sent.
    Receivers are lean listeners (bench/wsclient.py), so the load generator's own
    CPU does not dominate what is measured; senders are full clients on extra
    connections (the per-connection limit is 20 msg/s), each at `per_sender_rate`.
    `tokens` are members' access tokens, used round-robin.
    """
    received: list[float] = []
    now = time.perf_counter
    all_in = asyncio.Event()
    expected = [math.inf]
    marker = b'"chat.message"'

    def record(raw: bytes) -> None:
        if marker not in raw:
            return  # welcome and presence frames
        at = now()
        with contextlib.suppress(ValueError, TypeError, KeyError):
            body = orjson.loads(orjson.loads(raw)["body"])
            received.append(at - float(body["t"]))
            if len(received) >= expected[0]:
                all_in.set()

    token_cycle = itertools.cycle(tokens)
    plans = [(gateways[i % len(gateways)], next(token_cycle)) for i in range(clients)]

    def opener(gateway: str, token: str) -> Callable[[], Awaitable[ListenerProtocol]]:
        return lambda: listen(ws_url(gateway, f"/api/v1/sessions/{session_id}/events", token),
                              record)

    listeners: list[ListenerProtocol] = await _gather_limited(
        [opener(g, t) for g, t in plans], 50)
    senders: list[EventsClient] = []
    errors = 0
    sent = 0
    run = uuid.uuid4().hex[:12]
    start = now()
    try:
        senders_needed = max(1, math.ceil(rate / per_sender_rate))
        senders.extend([await EventsClient.connect(gateways[i % len(gateways)], session_id,
                                                   next(token_cycle))
                        for i in range(senders_needed)])
        start = now()
        interval = 1.0 / rate
        while now() - start < seconds:
            body = orjson.dumps({"t": now(), "n": sent}).decode()
            # A client_id unique to this run: a repeated one is an idempotent retry.
            await senders[sent % len(senders)].send(
                {"type": "chat.send", "body": body, "client_id": f"{run}-{sent}"})
            sent += 1
            delay = start + sent * interval - now()
            if delay > 0:
                await asyncio.sleep(delay)
        expected[0] = sent * clients
        if len(received) < expected[0]:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_in.wait(), 10.0)
        errors = sent * clients - len(received)
    finally:
        for listener in listeners:
            listener.close()
        await asyncio.gather(*(c.close() for c in senders), return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(lst.closed for lst in listeners)), 5.0)
    return Latencies(received, now() - start, max(0, errors))


async def doc_update_latency(writer_gateway: str, reader_gateway: str, session_id: str,
                             token: str, *, updates: int = 200) -> Latencies:
    """Time from one client's document update to its arrival at a client on another gateway."""
    writer = await DocClient.connect(writer_gateway, session_id, token)
    reader = await DocClient.connect(reader_gateway, session_id, token)
    samples: list[float] = []
    errors = 0
    start = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(writer.synced.wait(), reader.synced.wait()), 10)
        for i in range(updates):
            marker = f"<{i}>"
            sent = time.perf_counter()
            await writer.insert(0, marker)
            try:
                await reader.wait_until(_contains(marker), timeout=5)
                samples.append(time.perf_counter() - sent)
            except AssertionError:
                errors += 1
    finally:
        await writer.close()
        await reader.close()
    return Latencies(samples, time.perf_counter() - start, errors)


def _contains(marker: str) -> Callable[[DocClient], bool]:
    return lambda client: marker in client.value()


async def doc_sync(gateway: str, session_id: str, token: str, *, repeat: int = 5) -> Latencies:
    """Time for a new client to connect and hold the whole stored document (sync step 2)."""
    samples: list[float] = []
    start = time.perf_counter()
    for _ in range(repeat):
        began = time.perf_counter()
        client = await DocClient.connect(gateway, session_id, token)
        try:
            await asyncio.wait_for(client.synced.wait(), 60)
            samples.append(time.perf_counter() - began)
        finally:
            await client.close()
    return Latencies(samples, time.perf_counter() - start)


async def seed_document(pool: Any, session_id: str, updates: Sequence[bytes]) -> None:
    """Store Yjs updates for a session in bulk, as ApplyDocumentUpdate stores them one by one.

    `pool` is a psycopg connection or pool whose search_path is the sessions schema.
    For benchmarks and tests that need a long update log without thousands of RPCs.
    """
    async with contextlib.AsyncExitStack() as stack:
        conn = pool
        if not isinstance(pool, psycopg.AsyncConnection):
            conn = await stack.enter_async_context(pool.connection())
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO documents (session_id, version) VALUES (%s, %s) "
                "ON CONFLICT (session_id) DO UPDATE SET version = documents.version + %s, "
                "updated_at = now()", (session_id, len(updates), len(updates)))
            cur = conn.cursor()
            async with cur.copy("COPY document_updates (session_id, update) FROM STDIN") as copy:
                for update in updates:
                    await copy.write_row((session_id, update))


async def seed_document_url(database_url: str, session_id: str, updates: Sequence[bytes]) -> None:
    """`seed_document` over a fresh connection to the sessions schema."""
    async with await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, options="-c search_path=sessions") as conn:
        await seed_document(conn, session_id, updates)


def typing_updates(count: int) -> list[bytes]:
    """`count` single-character insertions, as a client typing would send them."""
    doc: Doc[Any] = Doc()
    text = doc.get("code", type=Text)
    updates = []
    for i in range(count):
        before = doc.get_state()
        text.insert(i, "abcdefghijklmnopqrstuvwxyz\n"[i % 27])
        updates.append(doc.get_update(before))
    return updates
