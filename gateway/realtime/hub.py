"""The realtime hub: one Redis pub/sub subscription per gateway, fanning out per-session channels.

Every gateway replica subscribes (on one Redis connection) to the channels of
the sessions its clients are in, and hands each message to those local
connections; so a client on one gateway sees what happens on any other. When
the subscription breaks (a Redis outage) clients are told, the hub reconnects
with backoff and resubscribes by itself, and then every connection refills what
it missed: events from the session's log, documents from the stored state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

import orjson
import redis.exceptions
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.realtime.config import RealtimeConfig
from gateway.realtime.connection import CLOSE_RESTART
from gateway.realtime.presence import PresenceStore, public
from gateway.realtime.protocol import (
    dumps,
    envelope,
)
from gateway.realtime.ywebsocket import (
    MAX_AWARENESS_CLIENTS,
    AwarenessEntry,
    awareness_message,
    encode_awareness,
    sync_update,
)
from services.common.channels import TO_USER, RealtimeChannels
from services.common.docframes import DOC_AWARENESS, DOC_QUERY, DOC_UPDATE, NOBODY, DocFrame
from services.common.keyspace import KeySpace
from services.common.redisutil import REDIS_ERRORS

log = logging.getLogger(__name__)

# An awareness client id belongs to the first connection that announces it in a session (on
# any gateway); its owner renews the claim, releases it when it closes, and a claim nobody
# renews (a connection lost with its gateway) lapses after the TTL.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# An awareness update with no entries, sent to every document socket every
# DOC_KEEPALIVE_SECONDS: y-websocket's provider reconnects after 30 s without any message,
# and a client whose own awareness state is null hears no echo of it.
DOC_KEEPALIVE = awareness_message(b"\x00")
DOC_KEEPALIVE_SECONDS = 10.0

# The hub renews every claim its live connections hold on each heartbeat, so a claim lapses
# only when its gateway is gone, not while a quiet (e.g. throttled background) tab is open.
_RENEW = """
for _, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == false or owner == ARGV[1] then redis.call('SET', key, ARGV[1], 'PX', ARGV[2]) end
end
return 0
"""
# Awareness entries per frame of a query answer: what parse_awareness takes, so a joining
# y-websocket client (which re-sends every state it hears) is never closed for it.
QUERY_ANSWER_ENTRIES = MAX_AWARENESS_CLIENTS

_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""


class Member(Protocol):
    """What the hub needs from any connection."""

    id_bytes: bytes
    session_id: str
    user_id: str
    released: asyncio.Event

    def on_event(self, event: dict[str, Any], raw: str) -> None: ...

    def on_outage(self) -> None: ...

    def on_recovered(self) -> None: ...

    def close(self, code: int, reason: str = "", *, flush: bool = True) -> None: ...


class EventsMember(Member, Protocol):
    def presence_entry(self) -> dict[str, Any] | None: ...

    def behind(self, last_seq: int) -> bool: ...

    def catch_up(self) -> None: ...


class DocMember(Member, Protocol):
    def send(self, frame: str | bytes) -> bool: ...

    def awareness_entries(self) -> list[AwarenessEntry]: ...

    def awareness_claims(self) -> tuple[str, list[int]]:
        """The claim owner's name and the awareness client ids it holds (renewed by the hub)."""
        ...


DocResync = Callable[[str, list[DocMember]], Awaitable[tuple[bytes, int] | None]]
# The session's current last_seq, read with the token of one of the given members.
SeqProbe = Callable[[str, list[EventsMember]], Awaitable[int | None]]


class Room:
    """This gateway's connections in one session."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.events: set[EventsMember] = set()
        self.docs: set[DocMember] = set()
        # Highest document version delivered without a hole, and versions seen past it.
        self.doc_version: int | None = None
        self.doc_ahead: set[int] = set()
        self.doc_check: asyncio.Task[None] | None = None

    @property
    def empty(self) -> bool:
        return not self.events and not self.docs


class Hub:
    """Subscriptions, fan-out, presence heartbeats and drain for one gateway process."""

    PING_INTERVAL = 5.0
    PING_TIMEOUT = 3.0
    LINGER = 5.0
    GAP_WAIT = 1.0

    def __init__(self, redis_url: str, redis: Redis, prefix: str, config: RealtimeConfig,
                 resync: DocResync, probe: SeqProbe) -> None:
        self._redis_url = redis_url
        self.redis = redis
        self.config = config
        self.channels = RealtimeChannels(prefix)
        self.presence = PresenceStore(redis, KeySpace(prefix, "gateway"), config.presence_ttl)
        self._control = KeySpace(prefix, "gateway").key("rt", "hub")
        self._claims = KeySpace(prefix, "gateway")
        # The claim scripts, registered at first use.
        self._claim: Any = None
        self._renew: Any = None
        self._release: Any = None
        self._resync = resync
        self._probe = probe
        self.rooms: dict[str, Room] = {}
        self._routes: dict[bytes, tuple[str, str]] = {}
        self._requested: set[str] = set()
        self._subscribed: set[str] = set()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._pending_batch: set[str] = set()
        self._lingering: dict[str, asyncio.TimerHandle] = {}
        self._pubsub: Any = None
        self._outage = False
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self.draining = False
        # How many clients of this gateway may replay from the event log at once.
        self.refill_slots = asyncio.Semaphore(16)

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen_forever(), name="hub-listen"),
                       asyncio.create_task(self._heartbeat_forever(), name="hub-heartbeat"),
                       asyncio.create_task(self._check_seqs_forever(), name="hub-seq-check"),
                       asyncio.create_task(self._keep_docs_alive_forever(), name="hub-doc-alive")]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._background]:
            task.cancel()
        for task in [*self._tasks, *self._background]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for handle in self._lingering.values():
            handle.cancel()

    def connections(self) -> Iterator[Member]:
        for room in list(self.rooms.values()):
            yield from list(room.events)
            yield from list(room.docs)

    async def drain(self, timeout: float) -> None:
        """Stop taking connections, flush every queue and close each socket with 1012."""
        self.draining = True
        members = list(self.connections())
        for member in members:
            member.close(CLOSE_RESTART, "gateway restarting", flush=True)
        if members:
            waits = [asyncio.create_task(m.released.wait()) for m in members]
            _, pending = await asyncio.wait(waits, timeout=timeout)
            for task in pending:
                task.cancel()
            log.info("realtime drained", extra={"connections": len(members),
                                                "unfinished": len(pending)})

    def spawn(self, coro: Awaitable[Any]) -> None:
        """A fire-and-forget task the hub keeps a reference to (and cancels at stop)."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- membership -------------------------------------------------------------------------

    def events_channel(self, session_id: str) -> str:
        return self.channels.events(session_id)

    def doc_channel(self, session_id: str) -> str:
        return self.channels.doc(session_id)

    def room(self, session_id: str) -> Room:
        room = self.rooms.get(session_id)
        if room is None:
            room = Room(session_id)
            self.rooms[session_id] = room
            self._routes[self.events_channel(session_id).encode()] = ("events", session_id)
            self._routes[self.doc_channel(session_id).encode()] = ("doc", session_id)
        return room

    async def join_events(self, member: EventsMember) -> bool:
        """Add a connection; True once its session's channel is live (False: catch up later)."""
        self.room(member.session_id).events.add(member)
        return await self._ensure(self.events_channel(member.session_id))

    async def join_doc(self, member: DocMember) -> bool:
        self.room(member.session_id).docs.add(member)
        live = await asyncio.gather(self._ensure(self.events_channel(member.session_id)),
                                    self._ensure(self.doc_channel(member.session_id)))
        return all(live)

    def leave(self, member: Member) -> None:
        room = self.rooms.get(member.session_id)
        if room is None:
            return
        room.events.discard(member)
        room.docs.discard(member)
        if not room.docs:
            self._linger(self.doc_channel(room.session_id))
            room.doc_version = None
            room.doc_ahead.clear()
        if room.empty:
            self._linger(self.events_channel(room.session_id))
            if not self._has_lingering(room.session_id):
                self._forget(room)

    def _wanted(self) -> set[str]:
        wanted = {self._control}
        for room in self.rooms.values():
            if not room.empty:
                wanted.add(self.events_channel(room.session_id))
            if room.docs:
                wanted.add(self.doc_channel(room.session_id))
        return wanted | set(self._lingering)

    async def _ensure(self, channel: str) -> bool:
        handle = self._lingering.pop(channel, None)
        if handle is not None:
            handle.cancel()
        if channel in self._subscribed:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, []).append(waiter)
        if channel not in self._requested and self._pubsub is not None:
            self._requested.add(channel)
            try:
                await self._pubsub.subscribe(channel)
            except REDIS_ERRORS as exc:
                # The listener notices the broken connection and resubscribes everything.
                log.warning("subscribe failed: %s", type(exc).__name__)
        try:
            async with asyncio.timeout(self.config.subscribe_timeout):
                await asyncio.shield(waiter)
            return True
        except TimeoutError:
            return False

    def _linger(self, channel: str) -> None:
        # Keep the subscription a little: a reconnecting client finds it ready.
        if channel in self._lingering or channel not in self._requested:
            return
        loop = asyncio.get_running_loop()
        self._lingering[channel] = loop.call_later(self.LINGER, self._drop, channel)

    def _drop(self, channel: str) -> None:
        self._lingering.pop(channel, None)
        if channel in self._wanted():
            return
        self._requested.discard(channel)
        self._subscribed.discard(channel)
        kind_session = self._routes.get(channel.encode())
        if kind_session is not None:
            room = self.rooms.get(kind_session[1])
            if room is not None and room.empty and not self._has_lingering(room.session_id):
                self._forget(room)
        if self._pubsub is not None:
            self.spawn(self._unsubscribe(channel))

    def _forget(self, room: Room) -> None:
        self.rooms.pop(room.session_id, None)
        self._routes.pop(self.events_channel(room.session_id).encode(), None)
        self._routes.pop(self.doc_channel(room.session_id).encode(), None)

    def _has_lingering(self, session_id: str) -> bool:
        return any(c in self._lingering for c in (self.events_channel(session_id),
                                                   self.doc_channel(session_id)))

    async def _unsubscribe(self, channel: str) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            if self._pubsub is not None:
                await self._pubsub.unsubscribe(channel)

    # --- publishing -------------------------------------------------------------------------

    async def publish(self, session_id: str, event: dict[str, Any]) -> bool:
        """Publish a non-sequenced event to the session on every gateway."""
        try:
            async with asyncio.timeout(1.0):
                await self.redis.publish(self.events_channel(session_id), orjson.dumps(event))
            return True
        except REDIS_ERRORS as exc:
            log.warning("realtime publish failed: %s", type(exc).__name__)
            return False

    async def tell_user(self, session_id: str, user_id: str, event: dict[str, Any]) -> None:
        """An event for one user's events sockets, wherever they are connected."""
        if not await self.publish(session_id, {**event, TO_USER: user_id}):
            room = self.rooms.get(session_id)
            for member in list(room.events) if room else []:
                if member.user_id == user_id:
                    member.on_event(event, dumps(event))

    def _claim_key(self, session_id: str, client_id: int) -> str:
        return self._claims.key("rt", "awareness", session_id, str(client_id))

    async def claim_awareness(self, session_id: str, client_id: int, owner: str) -> bool:
        """Take or renew `client_id`'s awareness in the session for the connection `owner`;
        False when another connection holds it. Raises on a Redis failure (the caller decides)."""
        if self._claim is None:
            self._claim = self.redis.register_script(_CLAIM)
        async with asyncio.timeout(1.0):
            owned = await self._claim(keys=[self._claim_key(session_id, client_id)],
                                      args=[owner, int(self.config.presence_ttl * 1000)])
        return bool(owned)

    async def renew_awareness(self) -> None:
        """Renew the awareness claims of every live document connection here, in one trip."""
        claims = [(room.session_id, *member.awareness_claims())
                  for room in list(self.rooms.values()) for member in list(room.docs)]
        claims = [claim for claim in claims if claim[2]]
        if not claims:
            return
        if self._renew is None:
            self._renew = self.redis.register_script(_RENEW)
        ttl = int(self.config.presence_ttl * 1000)
        async with asyncio.timeout(2.0), self.redis.pipeline(transaction=False) as pipe:
            for session_id, owner, ids in claims:
                await self._renew(keys=[self._claim_key(session_id, c) for c in ids],
                                  args=[owner, ttl], client=pipe)
            await pipe.execute()

    async def release_awareness(self, session_id: str, client_ids: list[int], owner: str) -> None:
        """Give up the claims `owner` holds (a reconnecting client may take its id at once)."""
        if not client_ids:
            return
        if self._release is None:
            self._release = self.redis.register_script(_RELEASE)
        try:
            async with asyncio.timeout(1.0):
                await self._release(keys=[self._claim_key(session_id, c) for c in client_ids],
                                    args=[owner])
        except REDIS_ERRORS as exc:  # the claims lapse with their TTL
            log.warning("awareness release failed: %s", type(exc).__name__)

    async def publish_doc(self, session_id: str, frame: DocFrame) -> bool:
        try:
            async with asyncio.timeout(1.0):
                await self.redis.publish(self.doc_channel(session_id), frame.encode())
            return True
        except REDIS_ERRORS as exc:
            log.warning("document frame not published: %s", type(exc).__name__)
            return False

    # --- the subscription -------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        delay = 0.1
        while True:
            started = time.monotonic()
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: reconnect with backoff
                log.warning("realtime subscription lost: %s", type(exc).__name__)
            self._pubsub = None
            self._requested.clear()
            self._subscribed.clear()
            if not self._outage:
                self._outage = True
                for member in list(self.connections()):
                    member.on_outage()
            if time.monotonic() - started > 10:
                delay = 0.1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _listen_once(self) -> None:
        # A client of its own without retries: a broken subscription must surface
        # here (to tell clients and refill), not be silently reconnected.
        client = Redis.from_url(self._redis_url, retry=Retry(NoBackoff(), 0),
                                socket_connect_timeout=1.0, socket_timeout=None,
                                socket_keepalive=True, decode_responses=False)
        pubsub = client.pubsub()
        try:
            channels = sorted(self._wanted())
            self._requested = set(channels)
            self._pending_batch = set(channels)
            await pubsub.subscribe(*channels)
            self._pubsub = pubsub
            # Sessions joined while the batch was being sent.
            late = sorted(self._wanted() - self._requested)
            if late:
                self._requested.update(late)
                await pubsub.subscribe(*late)
            last_heard = time.monotonic()
            ping_sent: float | None = None
            while True:
                message = await pubsub.get_message(timeout=1.0)
                now = time.monotonic()
                if message is None:
                    if ping_sent is not None and now - ping_sent > self.PING_TIMEOUT:
                        raise redis.exceptions.ConnectionError("no answer to a ping")
                    if ping_sent is None and now - last_heard > self.PING_INTERVAL:
                        await pubsub.ping(b"tandem-hub")
                        ping_sent = now
                    continue
                last_heard = now
                ping_sent = None
                self._handle(message)
        finally:
            self._pubsub = None
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
            with contextlib.suppress(Exception):
                await client.aclose()

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "message":
            route = self._routes.get(message["channel"])
            if route is None:
                return
            room = self.rooms.get(route[1])
            if room is None:
                return
            if route[0] == "events":
                self._on_event(room, message["data"])
            else:
                self._on_doc(room, message["data"])
        elif kind == "subscribe":
            channel = message["channel"].decode()
            self._subscribed.add(channel)
            for waiter in self._waiters.pop(channel, []):
                if not waiter.done():
                    waiter.set_result(None)
            self._pending_batch.discard(channel)
            if not self._pending_batch and self._outage:
                self._recovered()

    def _recovered(self) -> None:
        self._outage = False
        log.info("realtime subscription restored")
        for room in list(self.rooms.values()):
            for member in [*room.events, *room.docs]:
                member.on_recovered()
            if room.docs:
                self.spawn(self._resync_room(room))

    # --- fan-out ----------------------------------------------------------------------------

    def _on_event(self, room: Room, data: bytes) -> None:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.warning("dropped a realtime message that is not JSON")
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return
        target = event.pop(TO_USER, None)
        raw = data.decode() if target is None else dumps(event)
        for member in list(room.events):
            if target is None or member.user_id == target:
                member.on_event(event, raw)
        if target is None:
            for doc in list(room.docs):
                doc.on_event(event, raw)

    def _on_doc(self, room: Room, data: bytes) -> None:
        try:
            frame = DocFrame.decode(data)
        except ValueError:
            log.warning("dropped a malformed document frame")
            return
        if frame.kind == DOC_UPDATE:
            message = sync_update(frame.payload)
            for member in list(room.docs):
                member.send(message)
            self._track_version(room, frame.version)
        elif frame.kind == DOC_AWARENESS:
            message = awareness_message(frame.payload)
            for member in list(room.docs):
                if member.id_bytes == frame.origin:
                    continue
                if frame.target not in (NOBODY, member.id_bytes):
                    continue
                member.send(message)
        elif frame.kind == DOC_QUERY:
            entries = [entry for member in list(room.docs) if member.id_bytes != frame.origin
                       for entry in member.awareness_entries()]
            for start in range(0, len(entries), QUERY_ANSWER_ENTRIES):
                chunk = entries[start:start + QUERY_ANSWER_ENTRIES]
                answer = DocFrame(DOC_AWARENESS, NOBODY, encode_awareness(chunk),
                                  target=frame.origin)
                self.spawn(self.publish_doc(room.session_id, answer))

    # --- document versions ------------------------------------------------------------------

    def note_doc_version(self, session_id: str, version: int) -> None:
        """A connection synced at `version`: everything up to it is in its clients' hands."""
        room = self.rooms.get(session_id)
        if room is None:
            return
        if room.doc_version is None or version > room.doc_version:
            room.doc_version = version
            self._advance(room)

    def _track_version(self, room: Room, version: int) -> None:
        if room.doc_version is None or version <= room.doc_version:
            return
        room.doc_ahead.add(version)
        self._advance(room)
        if room.doc_ahead and (room.doc_check is None or room.doc_check.done()):
            # Versions from several sessions-service replicas may arrive out of
            # order; only a hole that stays open means an update was missed.
            room.doc_check = asyncio.create_task(self._check_gap(room))

    @staticmethod
    def _advance(room: Room) -> None:
        assert room.doc_version is not None  # noqa: S101 - callers set it first
        while room.doc_version + 1 in room.doc_ahead:
            room.doc_version += 1
            room.doc_ahead.discard(room.doc_version)
        room.doc_ahead = {v for v in room.doc_ahead if v > room.doc_version}

    async def _check_gap(self, room: Room) -> None:
        await asyncio.sleep(self.GAP_WAIT)
        if room.doc_ahead and room.docs:
            log.info("document update missed; resyncing")
            await self._resync_room(room)

    async def _resync_room(self, room: Room) -> None:
        """Send the stored document to every local client of the session (Yjs ignores dupes)."""
        members = list(room.docs)
        if not members:
            return
        answer = await self._resync(room.session_id, members)
        if answer is None:
            return
        update, version = answer
        message = sync_update(update)
        for member in list(room.docs):
            member.send(message)
        room.doc_version = max(room.doc_version or 0, version)
        self._advance(room)

    # --- presence ---------------------------------------------------------------------------

    async def _keep_docs_alive_forever(self) -> None:
        while True:
            await asyncio.sleep(DOC_KEEPALIVE_SECONDS)
            self.keep_docs_alive()

    def keep_docs_alive(self) -> None:
        """One tiny frame to each document socket (the same bytes for all of them)."""
        for room in list(self.rooms.values()):
            for member in list(room.docs):
                member.send(DOC_KEEPALIVE)

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.presence_heartbeat)
            try:
                await self.heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next beat tries again
                log.warning("presence heartbeat failed: %s", type(exc).__name__)

    async def heartbeat(self) -> None:
        """Refresh this gateway's presence entries and sweep ones whose owner stopped beating."""
        entries: list[tuple[str, dict[str, Any]]] = []
        for room in list(self.rooms.values()):
            for member in list(room.events):
                entry = member.presence_entry()
                if entry is not None:
                    entries.append((room.session_id, entry))
        await self.presence.refresh(entries)
        await self.renew_awareness()
        for room in list(self.rooms.values()):
            if not room.events:
                continue
            for gone in await self.presence.sweep(room.session_id):
                await self.publish(room.session_id,
                                   envelope("presence.left", room.session_id, **public(gone)))

    # --- the sequence safety net ------------------------------------------------------------

    async def _check_seqs_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.seq_check)
            try:
                await self.check_seqs()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again
                log.warning("sequence check failed: %s", type(exc).__name__)

    async def check_seqs(self) -> None:
        """Catch clients up whose session moved on without them hearing of it.

        A gap shows when the next live event arrives; an event whose publish was
        lost with nothing after it shows only here.
        """
        gate = asyncio.Semaphore(8)

        async def check(room: Room) -> None:
            members = list(room.events)
            if not members or self._outage:
                return
            async with gate:
                last_seq = await self._probe(room.session_id, members)
            if last_seq is None:
                return
            for member in members:
                if member.behind(last_seq):
                    member.catch_up()

        await asyncio.gather(*(check(room) for room in list(self.rooms.values())))
