"""The soak's traffic: people in sessions using REST, the events socket and the document socket
at once, with reconnects, AI jobs and review comments, and the bookkeeping that proves nothing
acknowledged was lost."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from pycrdt import TransactionEvent
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.realtime_scenarios import DocClient, ws_url
from scripts.devlogin import SignedIn, sign_in_http
from soak.stats import Recorder

REPO = "tandem-demo/hello-api"
ROLES = ("editor", "editor", "viewer")  # the members besides the owner
# Answers slower than this count as errors, not just as latency.
TIMEOUT = 15.0


@dataclass(frozen=True)
class Plan:
    """How much traffic: people, sessions, and the pace of each activity (seconds)."""

    users: int = 24
    sessions: int = 8
    think: float = 1.0  # mean pause between one person's REST calls
    chat_every: float = 1.0  # per session
    doc_every: float = 2.0  # per editor
    reconnect_every: float = 15.0  # one events and one document client somewhere
    ai_every: float = 20.0  # one built-in AI review of a session's document


@dataclass
class Listener:
    """One member's events socket: what it has seen, across reconnects."""

    user: SignedIn
    seen: set[int] = field(default_factory=set)
    duplicates: int = 0
    joined_seq: int = 0
    live_since: float = 0.0
    ws: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None
    acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    closing: bool = False


@dataclass
class Room:
    """A session with its people, its review, and what was acknowledged in it."""

    index: int
    session_id: str
    owner: SignedIn
    members: list[tuple[SignedIn, str]]  # (person, role), owner first
    review_id: str
    thread_id: str
    listeners: list[Listener] = field(default_factory=list)
    docs: list[DocClient] = field(default_factory=list)
    doc_people: list[SignedIn] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)  # client_id -> seq
    sent_at: dict[str, float] = field(default_factory=dict)  # client_id -> when sent
    markers: dict[str, float] = field(default_factory=dict)  # document marker -> when typed
    unseen: list[dict[str, float]] = field(default_factory=list)  # per doc client: marker -> typed
    jobs: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)


class Soak:
    """Sets up the people and sessions, runs every activity until told to stop, then checks."""

    def __init__(self, url: str, plan: Plan, recorder: Recorder, seed: int = 1) -> None:
        self.url = url
        self.plan = plan
        self.rec = recorder
        # Reproducible traffic, not secrets.
        self.rng = random.Random(seed)
        self.people: list[SignedIn] = []
        self.rooms: list[Room] = []
        self.api = httpx.AsyncClient(base_url=url, timeout=TIMEOUT,
                                     limits=httpx.Limits(max_connections=64))
        self._counter = itertools.count(1)
        self._subscriptions: list[object] = []
        # Latencies are of the traffic only, not of the checks at the end.
        self._timing = True

    # --- setup ------------------------------------------------------------------------------

    async def setup(self) -> None:
        tag = uuid.uuid4().hex[:6]
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(8) as pool:
            self.people = list(await asyncio.gather(*(
                loop.run_in_executor(pool, sign_in_http, self.url, f"soak-{tag}-{i}")
                for i in range(self.plan.users))))
        for index in range(self.plan.sessions):
            self.rooms.append(await self._room(index))
        for room in self.rooms:
            for person, _ in room.members:
                listener = Listener(person)
                room.listeners.append(listener)
                await self._listen(room, listener, first=True)
            for person, role in room.members:
                if role == "editor":
                    room.unseen.append({})
                    room.docs.append(await self._doc(room, person, len(room.docs)))
                    room.doc_people.append(person)

    async def _call(self, method: str, path: str, user: SignedIn, expect: int,
                    **kwargs: Any) -> dict[str, Any]:
        """One REST call: timed, and an error unless it answers `expect`."""
        start = time.monotonic()
        try:
            reply = await self.api.request(method, path, headers=user.headers, **kwargs)
        except httpx.HTTPError as exc:
            self.rec.error(f"rest {method} {_template(path)} {type(exc).__name__}", str(exc))
            return {}
        if self._timing:
            self.rec.observe("rest", time.monotonic() - start)
        if reply.status_code != expect:
            self.rec.error(f"rest {method} {_template(path)} {reply.status_code}", reply.text)
            return {}
        body: dict[str, Any] = reply.json() if reply.content else {}
        return body

    async def _room(self, index: int) -> Room:
        owner = self.people[(index * 4) % len(self.people)]
        others = [self.people[(index * 4 + k) % len(self.people)] for k in (1, 2, 3)]
        made = await self._call("POST", "/api/v1/sessions", owner, 201,
                                json={"title": f"Soak {index}", "language": "python"})
        session_id = made["id"]
        for person, role in zip(others, ROLES, strict=True):
            invited = await self._call("POST", f"/api/v1/sessions/{session_id}/invitations", owner,
                                       201, json={"github_login": person.login, "role": role})
            await self._call("POST", f"/api/v1/invitations/{invited['id']}/accept", person, 200)
        review = await self._call("POST", f"/api/v1/sessions/{session_id}/reviews", owner, 201,
                                  json={"repo": REPO, "pull_number": 1})
        path = next(f["path"] for f in review["files"] if f["path"].endswith(".py"))
        thread = await self._call("POST", f"/api/v1/reviews/{review['id']}/threads", owner, 201,
                                  json={"path": path, "line": 1, "body": "Let us talk about this"})
        return Room(index, session_id, owner, [(owner, "owner"), *zip(others, ROLES, strict=True)],
                    review["id"], thread["id"])

    # --- the events socket ------------------------------------------------------------------

    async def _listen(self, room: Room, listener: Listener, *, first: bool) -> None:
        url = ws_url(self.url, f"/api/v1/sessions/{room.session_id}/events",
                     listener.user.access_token)
        ws = await connect(url, proxy=None, compression=None, open_timeout=TIMEOUT,
                           ping_interval=None, close_timeout=2)
        welcome = orjson.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if first:
            listener.joined_seq = welcome["last_seq"]
        else:
            # Everything after the last message seen is replayed before live ones.
            last = max(listener.seen | {listener.joined_seq})
            await ws.send(orjson.dumps({"type": "hello", "last_seq": last}).decode())
        listener.ws, listener.closing = ws, False
        listener.live_since = time.monotonic()
        listener.reader = asyncio.create_task(self._read(room, listener, ws))

    async def _read(self, room: Room, listener: Listener, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                event = orjson.loads(raw)
                self._on_event(room, listener, event)
        except ConnectionClosed:
            pass
        if not listener.closing:
            self.rec.error(f"events socket closed by the server ({ws.close_code})", ws.close_reason or "")

    def _on_event(self, room: Room, listener: Listener, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "chat.message":
            seq = event["seq"]
            if seq in listener.seen:
                listener.duplicates += 1
                self.rec.error("chat message delivered twice", f"seq {seq}")
            listener.seen.add(seq)
            sent = room.sent_at.get(event.get("client_id") or "")
            # Replays after a reconnect are not live deliveries: no latency for them.
            if sent is not None and sent >= listener.live_since:
                self.rec.observe("chat.delivery", time.monotonic() - sent)
        elif kind == "chat.ack":
            future = listener.acks.pop(event.get("client_id", ""), None)
            if future is not None and not future.done():
                future.set_result(event)
        elif kind in ("ai.done", "ai.failed"):
            job = room.jobs.pop(event.get("job_id", ""), None)
            if job is not None and not job.done():
                job.set_result(event)
        elif kind == "error":
            self.rec.error(f"error event {event.get('code')}", event.get("message", ""))

    async def _chat(self, room: Room) -> None:
        listener = self.rng.choice(room.listeners)
        if listener.ws is None or listener.closing:
            return
        client_id = f"ws-{next(self._counter)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        listener.acks[client_id] = future
        start = time.monotonic()
        room.sent_at[client_id] = start
        try:
            await listener.ws.send(orjson.dumps({"type": "chat.send", "client_id": client_id,
                                                 "body": f"soak message {client_id}"}).decode())
            ack = await asyncio.wait_for(future, TIMEOUT)
        except (TimeoutError, ConnectionClosed) as exc:
            listener.acks.pop(client_id, None)
            if not listener.closing:
                self.rec.error(f"chat.send not acknowledged ({type(exc).__name__})", client_id)
            return
        self.rec.observe("chat.ack", time.monotonic() - start)
        room.acked[client_id] = ack["seq"]

    async def _reconnect_listener(self) -> None:
        room = self.rng.choice(self.rooms)
        listener = self.rng.choice(room.listeners)
        if listener.ws is None:
            return
        listener.closing = True
        await listener.ws.close()
        if listener.reader is not None:
            await listener.reader
        await self._listen(room, listener, first=False)

    # --- the document socket ----------------------------------------------------------------

    async def _doc(self, room: Room, person: SignedIn, slot: int) -> DocClient:
        client = await DocClient.connect(self.url, room.session_id, person.access_token)
        loop = asyncio.get_running_loop()

        def look() -> None:
            unseen = room.unseen[slot]
            if not unseen:
                return
            text = client.value()
            for marker in [m for m in unseen if m in text]:
                typed = unseen.pop(marker)
                if typed >= 0:
                    self.rec.observe("doc.delivery", time.monotonic() - typed)

        def changed(_event: TransactionEvent) -> None:
            # Read the text after the transaction that changed it, not inside its callback.
            loop.call_soon(look)

        self._subscriptions.append(client.doc.observe(changed))
        await asyncio.wait_for(client.synced.wait(), TIMEOUT)
        return client

    async def _type(self, room: Room) -> None:
        if not room.docs:
            return
        slot = self.rng.randrange(len(room.docs))
        writer = room.docs[slot]
        marker = f"<{room.index}.{next(self._counter)}>"
        # At a line start, so no edit splits another one's marker.
        text = writer.value()
        position = self.rng.choice([0, *(i + 1 for i, c in enumerate(text) if c == "\n")])
        try:
            await writer.insert(position, marker + "\n")
        except ConnectionClosed as exc:
            self.rec.error("document socket closed by the server", str(exc))
            return
        now = time.monotonic()
        room.markers[marker] = now
        for other, unseen in enumerate(room.unseen):
            if other != slot:
                unseen[marker] = now

    async def _reconnect_doc(self) -> None:
        room = self.rng.choice(self.rooms)
        if not room.docs:
            return
        slot = self.rng.randrange(len(room.docs))
        await room.docs[slot].close()
        # A new client syncs the whole document: markers still unseen arrive in its sync,
        # which is not a live delivery (-1: counted as seen, not timed).
        room.unseen[slot] = dict.fromkeys(room.unseen[slot], -1.0)
        room.docs[slot] = await self._doc(room, room.doc_people[slot], slot)

    # --- AI -----------------------------------------------------------------------------

    async def _ai(self, room: Room) -> None:
        listener = room.listeners[0]  # the owner's socket hears ai.done / ai.failed
        start = time.monotonic()
        accepted = await self._call("POST", f"/api/v1/sessions/{room.session_id}/ai", room.owner,
                                    202, json={"provider": "builtin"})
        if not accepted:
            return
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        room.jobs[accepted["job_id"]] = future
        try:
            event = await asyncio.wait_for(future, 60)
        except TimeoutError:
            room.jobs.pop(accepted["job_id"], None)
            if not listener.closing:
                # The owner's socket may have been reconnecting when it ended: ask.
                job = await self._call("GET", f"/api/v1/ai/jobs/{accepted['job_id']}", room.owner, 200)
                if job.get("status") != "done":
                    self.rec.error("AI job did not finish", str(job)[:200])
            return
        if event["type"] == "ai.failed":
            self.rec.error("AI job failed", event.get("error", ""))
            return
        self.rec.observe("ai.job", time.monotonic() - start)

    # --- REST -----------------------------------------------------------------------------

    async def _rest_once(self, person: SignedIn) -> None:
        mine = [(room, role) for room in self.rooms for p, role in room.members if p is person]
        if not mine:
            await self._call("GET", "/api/v1/me", person, 200)
            return
        room, role = self.rng.choice(mine)
        s, r = room.session_id, room.review_id
        choice = self.rng.random()
        if choice < 0.15:
            await self._call("GET", f"/api/v1/sessions/{s}", person, 200)
        elif choice < 0.30:
            await self._call("GET", f"/api/v1/sessions/{s}/messages", person, 200,
                             params={"limit": 20})
        elif choice < 0.40:
            await self._call("GET", f"/api/v1/sessions/{s}/members", person, 200)
        elif choice < 0.50:
            await self._call("GET", f"/api/v1/sessions/{s}/document", person, 200)
        elif choice < 0.58:
            await self._call("GET", "/api/v1/sessions", person, 200, params={"limit": 20})
        elif choice < 0.63:
            await self._call("GET", "/api/v1/me", person, 200)
        elif choice < 0.68:
            await self._call("GET", "/api/v1/notifications", person, 200)
        elif choice < 0.75:
            await self._call("GET", f"/api/v1/reviews/{r}", person, 200)
        elif choice < 0.82:
            await self._call("GET", f"/api/v1/reviews/{r}/threads", person, 200)
        elif choice < 0.92:
            client_id = f"rest-{next(self._counter)}"
            room.sent_at[client_id] = time.monotonic()
            said = await self._call("POST", f"/api/v1/sessions/{s}/messages", person, 201,
                                    json={"body": f"soak {client_id}", "client_id": client_id})
            if said:
                room.acked[client_id] = said["seq"]
        elif role != "viewer" and choice < 0.97:
            await self._call("POST", f"/api/v1/reviews/{r}/threads/{room.thread_id}/comments",
                             person, 201, json={"body": "Agreed"})
        elif role == "owner":
            await self._call("PATCH", f"/api/v1/sessions/{s}", person, 200,
                             json={"description": f"soak pass {next(self._counter)}"})
        else:
            await self._call("GET", f"/api/v1/sessions/{s}/reviews", person, 200)

    # --- running --------------------------------------------------------------------------

    async def _every(self, seconds: float, action: Callable[[], Awaitable[None]],
                     stop: asyncio.Event, *, jitter: bool = True) -> None:
        while not stop.is_set():
            pause = self.rng.expovariate(1 / seconds) if jitter else seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            if stop.is_set():
                return
            try:
                await action()
            except Exception as exc:  # a bug in the soak itself must show, not end the run
                self.rec.error(f"soak step failed: {type(exc).__name__}", repr(exc))

    async def run(self, stop: asyncio.Event) -> None:
        plan = self.plan
        tasks = [self._every(plan.think, functools.partial(self._rest_once, p), stop)
                 for p in self.people]
        tasks += [self._every(plan.chat_every, functools.partial(self._chat, r), stop)
                  for r in self.rooms]
        tasks += [self._every(plan.doc_every / max(1, len(r.docs)), functools.partial(self._type, r),
                              stop) for r in self.rooms]
        tasks += [self._every(plan.reconnect_every, self._reconnect_listener, stop),
                  self._every(plan.reconnect_every * 2, self._reconnect_doc, stop)]
        rooms = itertools.cycle(self.rooms)
        tasks.append(self._every(plan.ai_every, lambda: self._ai(next(rooms)), stop, jitter=False))
        await asyncio.gather(*tasks)

    # --- the end --------------------------------------------------------------------------

    async def check(self) -> dict[str, Any]:
        """Nothing acknowledged lost: every member saw every message, history and documents agree."""
        self._timing = False
        results: dict[str, Any] = {}
        acked = sum(len(room.acked) for room in self.rooms)
        missing = 0
        deadline = time.monotonic() + TIMEOUT
        for room in self.rooms:
            for listener in room.listeners:
                wanted = {seq for seq in room.acked.values() if seq > listener.joined_seq}
                await _until(functools.partial(wanted.issubset, listener.seen), deadline)
                lost = wanted - listener.seen
                if lost:
                    missing += len(lost)
                    self.rec.error("acknowledged chat message never delivered to a member",
                                   f"session {room.index}, seqs {sorted(lost)[:5]}")
        results["chat messages acknowledged"] = acked
        results["deliveries missing"] = missing
        stored_wrong = 0
        for room in self.rooms:
            history = await self._history(room)
            for client_id, seq in room.acked.items():
                found = [m for m in history if m.get("client_id") == client_id]
                if len(found) != 1 or found[0]["seq"] != seq:
                    stored_wrong += 1
                    self.rec.error("acknowledged message not in history exactly once", client_id)
        results["messages not in history exactly once"] = stored_wrong
        diverged = 0
        typed = sum(len(room.markers) for room in self.rooms)
        for room in self.rooms:
            if not await self._converged(room):
                diverged += 1
        results["document edits typed"] = typed
        results["documents diverged or lost edits"] = diverged
        return results

    async def _history(self, room: Room) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await self._call("GET", f"/api/v1/sessions/{room.session_id}/messages",
                                    room.owner, 200, params={"after_seq": after, "limit": 100})
            items += page.get("items", [])
            if not page.get("next_cursor"):
                return items
            after = int(page["next_cursor"])

    async def _converged(self, room: Room) -> bool:
        deadline = time.monotonic() + TIMEOUT
        while True:
            stored = (await self._call("GET", f"/api/v1/sessions/{room.session_id}/document",
                                       room.owner, 200)).get("text")
            texts = {doc.value() for doc in room.docs} | {stored}
            complete = stored is not None and all(marker in stored for marker in room.markers)
            if len(texts) == 1 and complete:
                return True
            if time.monotonic() > deadline:
                lost = [m for m in room.markers if stored is None or m not in stored]
                self.rec.error("document diverged or lost an edit",
                               f"session {room.index}: {len(texts)} different texts, "
                               f"{len(lost)} edits missing from the stored one, e.g. {lost[:3]}")
                if os.environ.get("SOAK_DEBUG"):
                    for i, doc in enumerate(room.docs):
                        print(f"--- client {i}: {doc.value()!r}\n--- stored: {stored!r}")
                return False
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        for room in self.rooms:
            for listener in room.listeners:
                listener.closing = True
                if listener.ws is not None:
                    await listener.ws.close()
                if listener.reader is not None:
                    with contextlib.suppress(Exception):
                        await listener.reader
            for doc in room.docs:
                await doc.close()
        await self.api.aclose()


async def _until(condition: Callable[[], bool], deadline: float) -> None:
    """Poll `condition` until it holds or the deadline passes (deliveries still in flight)."""
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110 - nothing to wait on
        await asyncio.sleep(0.1)


def _template(path: str) -> str:
    """A path with its ids replaced, so errors group by route."""
    parts = path.split("/")
    return "/".join("{id}" if len(part) == 36 and part.count("-") == 4 else part for part in parts)
