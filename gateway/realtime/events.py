"""The events socket `GET /api/v1/sessions/{id}/events`: welcome, replay, live events, chat, presence."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from tandem.auth.v1 import auth_pb2
from tandem.sessions.v1 import sessions_pb2

from gateway import keys
from gateway.auth import VERIFIER, Auth, authenticate
from gateway.errors import ApiError
from gateway.grpc_clients import Backends
from gateway.http import path_uuid
from gateway.realtime.config import EVENTS_MAX_FRAME, RealtimeConfig
from gateway.realtime.connection import (
    CLOSE_ENDED,
    CLOSE_REVOKED,
    CLOSE_TOKEN_EXPIRED,
    Connection,
    Socket,
)
from gateway.realtime.flow import SeqGate, TokenBucket, expiry_step
from gateway.realtime.hub import Hub
from gateway.realtime.presence import public
from gateway.realtime.protocol import (
    AuthRefresh,
    ChatSend,
    FrameError,
    Hello,
    Ping,
    PresenceUpdate,
    dumps,
    envelope,
    error_event,
    frame_error_event,
    parse_client_frame,
    stored_event,
)
from gateway.routes.sessions import ROLE_NAMES, session_out
from gateway.schemas import user_out
from services.common.context import session_id_var
from services.common.errors import Unauthenticated
from services.common.identity import TokenVerifier
from services.common.timeconv import epoch_rfc3339, now_rfc3339, rfc3339

log = logging.getLogger(__name__)

REPLAY_PAGE = 1000
# Closing events: the connection ends once the client has been sent them.
ENDING = {"session.ended": CLOSE_ENDED, "session.deleted": CLOSE_ENDED}
# Events after whose delivery a connection may have to close (checked once per delivery).
_CLOSING_KINDS = frozenset({"member.removed", *ENDING})
# A hole in the log that stays after this many refills is skipped, not waited on forever.
MAX_REFILLS = 3
# Concurrent writes are published in commit order only per writer: a later number may
# overtake an earlier one by milliseconds. Only a hole that stays open means a loss.
GAP_WAIT = 0.2
EARLY_LIMIT = 256

Item = tuple[dict[str, Any], str]


class EventsConnection(Connection):
    """One client of the events socket and the order in which it is sent sequenced events."""

    socket = "events"

    def __init__(self, ws: Socket, *, hub: Hub, backends: Backends, verifier: TokenVerifier | None,
                 config: RealtimeConfig, session_id: str, auth: Auth,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(ws, session_id=session_id, user_id=auth.user_id,
                         queue_limit=config.send_queue, close_timeout=config.close_timeout)
        self.hub = hub
        self.backends = backends
        self.verifier = verifier
        self.config = config
        self.token = auth.token
        self.expires_at = auth.claims.expires_at
        self.clock = clock
        self.role: str | None = None
        self.revoked = False
        self.gate: SeqGate[Item] = SeqGate()
        self.bucket = TokenBucket(config.rate_per_second, config.rate_burst)
        self.id_str = str(self.id)
        self.released = asyncio.Event()
        self.welcomed = False
        self._early: list[str] = []
        self._gate_opened = False
        self._presence: dict[str, Any] | None = None
        self._refill: asyncio.Task[None] | None = None
        self._gap_check: asyncio.Task[None] | None = None
        self._fetching = asyncio.Lock()
        self._refill_again = False
        self._refills_in_a_row = 0
        self._auth_changed = asyncio.Event()
        self._settled = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- from the hub -----------------------------------------------------------------------

    def on_event(self, event: dict[str, Any], raw: str) -> None:
        kind = event["type"]
        if kind.startswith("presence.") and event.get("connection_id") == self.id_str:
            return  # a client knows its own presence
        seq = event.get("seq")
        if isinstance(seq, int) and not isinstance(seq, bool):
            if event.get("user_id") == self.user_id:  # about this client's own membership
                self._on_arrival(event)
            ready, gap = self.gate.offer(seq, (event, raw))
            self._emit(ready)
            if gap and (self._gap_check is None or self._gap_check.done()):
                self._gap_check = asyncio.create_task(self._refill_if_still_missing())
            return
        if not self.welcomed:
            if len(self._early) < EARLY_LIMIT:
                self._early.append(raw)
            return
        self.send(raw)
        if kind in ENDING:
            # session.deleted has no seq: its log is gone with the session.
            self.close(ENDING[kind], "session ended")

    def on_outage(self) -> None:
        self.send_event(error_event(
            self.session_id, "unavailable",
            "live delivery is interrupted; missed events are replayed when it returns"))

    def on_recovered(self) -> None:
        self.catch_up()

    def presence_entry(self) -> dict[str, Any] | None:
        return self._presence

    def behind(self, last_seq: int) -> bool:
        """Whether the session has events this client was not sent (and none are on the way)."""
        return (self.welcomed and not self.gate.held and last_seq > self.gate.delivered
                and (self._refill is None or self._refill.done()))

    # --- ordering ---------------------------------------------------------------------------

    def send_event(self, event: dict[str, Any]) -> bool:
        return self.send(dumps(event))

    def _on_arrival(self, event: dict[str, Any]) -> None:
        """Effects that must not wait for the event's turn in the stream."""
        if event.get("user_id") != self.user_id:
            return
        if event["type"] == "member.role_changed" and isinstance(event.get("role"), str):
            self.role = event["role"]
        elif event["type"] == "member.removed":
            self.revoked = True

    def _emit(self, items: list[Item]) -> None:
        for event, raw in items:
            self.send(raw)
            if event["type"] in _CLOSING_KINDS:
                self._after_delivery(event)

    def _after_delivery(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "member.removed" and event.get("user_id") == self.user_id:
            self.close(CLOSE_REVOKED, "removed from the session")
        elif kind in ENDING:
            self.close(ENDING[kind], "session ended")

    def open_gate(self) -> None:
        """Sequenced live events flow once the client has spoken (or after hello_wait)."""
        if self._gate_opened:
            return
        self._gate_opened = True
        self._release()

    def _release(self) -> None:
        ready, gap = self.gate.release()
        self._emit(ready)
        if gap and not self.gate.held:
            self.catch_up()
        if not self.gate.held:
            self._settled.set()

    async def _refill_if_still_missing(self) -> None:
        await asyncio.sleep(GAP_WAIT)
        if self.gate.waiting:
            self.catch_up()

    def catch_up(self) -> None:
        """Refill from the event log after a gap or an outage (one refill at a time)."""
        if self.closing:
            return
        if self._refill is not None and not self._refill.done():
            self._refill_again = True
            return
        self._refill = asyncio.create_task(self._run_refill(), name=f"refill-{self.id}")

    async def _run_refill(self) -> None:
        self.gate.hold()
        failed = False
        try:
            self._refill_again = False
            # Bounded per gateway: after an outage every client refills at once.
            async with self.hub.refill_slots, self._fetching:
                await self._fetch(self.gate.delivered)
        except ApiError as exc:
            failed = True
            self._refill_failed(exc)
        finally:
            ready, gap = self.gate.release()
        self._emit(ready)
        if not self.gate.held:
            self._settled.set()
        if failed or self.closing:
            return
        if gap or self._refill_again:
            self._refills_in_a_row += 1
            if self._refills_in_a_row >= MAX_REFILLS and gap:
                # The log has a hole no refill fills (a number never committed):
                # deliver what follows it rather than stall the stream.
                ready, _ = self.gate.skip_hole()
                self._emit(ready)
                self._refills_in_a_row = 0
                return
            await asyncio.sleep(0.05 * self._refills_in_a_row)
            self._refill = None
            self.catch_up()
        else:
            self._refills_in_a_row = 0

    def _refill_failed(self, exc: ApiError) -> None:
        if exc.status == 404:
            self.close(CLOSE_REVOKED, "no longer a member of the session")
        else:
            self.send_event(error_event(self.session_id, exc.code,
                                        "could not replay missed events: " + exc.message))

    async def _fetch(self, after: int, again: tuple[int, int] | None = None) -> None:
        """Send logged events after `after`: new ones, and those in `again` (a `hello` range).

        Callers hold `_fetching`: two fetches at once could interleave their sends.
        """
        stub = self.backends.sessions
        cursor = after
        while not self.closing:
            reply = await self.backends.call(
                "sessions", "ListEvents", stub.ListEvents,
                sessions_pb2.ListEventsRequest(session_id=self.session_id, after_seq=cursor,
                                               limit=REPLAY_PAGE),
                token=self.token)
            for item in reply.events:
                fresh = self.gate.advance(item.seq)
                if fresh or (again is not None and again[0] < item.seq <= again[1]):
                    event = stored_event(self.session_id, item.seq, item.type, item.payload_json,
                                         rfc3339(item.at) if item.HasField("at") else None)
                    # Paced: a long replay must not overflow the client's send queue.
                    await self.send_paced(dumps(event))
                    if fresh:
                        self._after_delivery(event)
            if not reply.has_more or not reply.events:
                return
            cursor = reply.events[-1].seq

    # --- from the client --------------------------------------------------------------------

    async def handle_text(self, text: str) -> None:
        if not self.bucket.allow():
            self.open_gate()
            self.send_event(error_event(
                self.session_id, "rate_limited", "too many messages; slow down",
                retry_after=round(self.bucket.retry_after(), 3)))
            return
        try:
            frame = parse_client_frame(text)
        except FrameError as exc:
            self.open_gate()
            self.send_event(frame_error_event(self.session_id, exc))
            return
        if isinstance(frame, Hello):
            await self.hello(frame.last_seq)
            return
        self.open_gate()
        if isinstance(frame, Ping):
            extra = {} if frame.ref is None else {"id": frame.ref}
            self.send_event(envelope("pong", self.session_id, **extra))
        elif isinstance(frame, ChatSend):
            await self.chat(frame)
        elif isinstance(frame, PresenceUpdate):
            await self.update_presence(frame.fields)
        elif isinstance(frame, AuthRefresh):
            await self.refresh_auth(frame.access_token)

    def handle_binary(self) -> None:
        self.open_gate()
        self.send_event(error_event(self.session_id, "invalid_argument",
                                    "frames on the events socket are JSON text"))

    async def hello(self, last_seq: int) -> None:
        """Replay every sequenced event after `last_seq`, then continue live without a seam."""
        # Held before the first-frame gate opens, so nothing live overtakes the replay.
        self.gate.hold()
        self.open_gate()
        try:
            async with self._fetching:
                # Events up to `delivered` were sent before: again only because asked.
                sent = self.gate.delivered
                await self._fetch(min(last_seq, sent), again=(last_seq, sent))
        except ApiError as exc:
            self._refill_failed(exc)
        finally:
            self._release()

    async def chat(self, frame: ChatSend) -> None:
        if self.revoked:
            self.send_event(error_event(self.session_id, "permission_denied",
                                        "you are no longer a member", client_id=frame.client_id))
            return
        try:
            reply = await self.backends.call(
                "sessions", "PostMessage", self.backends.sessions.PostMessage,
                sessions_pb2.PostMessageRequest(session_id=self.session_id, body=frame.body,
                                                client_id=frame.client_id),
                token=self.token)
        except ApiError as exc:
            extra: dict[str, Any] = {"client_id": frame.client_id}
            if exc.details:
                extra["details"] = exc.details
            self.send_event(error_event(self.session_id, exc.code, exc.message, **extra))
            return
        # Sent only now: the message is stored (docs/architecture.md rule 7).
        self.send_event(envelope("chat.ack", self.session_id, client_id=frame.client_id,
                                 seq=reply.message.seq, id=reply.message.id))

    async def update_presence(self, fields: dict[str, Any]) -> None:
        if self._presence is None:
            return
        self._presence.update(fields)
        try:
            await self.hub.presence.put(self.session_id, self._presence)
        except Exception as exc:  # Redis down: tell the client, keep the socket
            log.warning("presence update failed: %s", type(exc).__name__)
            self.send_event(error_event(self.session_id, "unavailable",
                                        "presence is unavailable right now"))
            return
        await self.hub.publish(self.session_id, envelope("presence.updated", self.session_id,
                                                         **public(self._presence)))

    async def refresh_auth(self, token: str) -> None:
        if self.verifier is None:
            return
        try:
            claims = await self.verifier.verify(token)
        except Unauthenticated as exc:
            self.send_event(error_event(self.session_id, "unauthenticated", exc.message))
            return
        if claims.user_id != self.user_id:
            self.send_event(error_event(self.session_id, "unauthenticated",
                                        "the token belongs to another user"))
            return
        self.token = token
        self.expires_at = claims.expires_at
        self._auth_changed.set()
        self.send_event(envelope("auth.ok", self.session_id,
                                 expires_at=epoch_rfc3339(claims.expires_at)))

    # --- lifecycle --------------------------------------------------------------------------

    async def join_presence(self) -> list[dict[str, Any]]:
        """Enter the session's presence; answer everyone present (for the welcome)."""
        self._presence = {"connection_id": self.id_str, "user_id": self.user_id,
                          "status": "online", "cursor": None, "since": now_rfc3339()}
        try:
            await self.hub.presence.put(self.session_id, self._presence)
            return [public(entry) for entry in await self.hub.presence.entries(self.session_id)]
        except Exception as exc:  # presence is best effort while Redis is down
            log.warning("presence join failed: %s", type(exc).__name__)
            return [public(self._presence)]

    async def announce_presence(self) -> None:
        if self._presence is not None:
            await self.hub.publish(self.session_id, envelope("presence.joined", self.session_id,
                                                             **public(self._presence)))

    async def leave_presence(self) -> None:
        if self._presence is None:
            return
        entry, self._presence = self._presence, None
        try:
            removed = await self.hub.presence.remove(self.session_id, entry["connection_id"])
        except Exception as exc:  # the entry then expires with its TTL
            log.warning("presence leave failed: %s", type(exc).__name__)
            return
        if removed:
            await self.hub.publish(self.session_id,
                                   envelope("presence.left", self.session_id, **public(entry)))

    def welcome(self, session: sessions_pb2.Session, members: list[dict[str, Any]],
                presence: list[dict[str, Any]]) -> None:
        self.role = ROLE_NAMES.get(session.role)
        self.gate.delivered = session.last_seq
        self.send_event(envelope(
            "welcome", self.session_id, session=session_out(session), role=self.role,
            members=members, presence=presence, last_seq=session.last_seq,
            connection_id=self.id_str, user_id=self.user_id))
        self.welcomed = True
        for raw in self._early:
            self.send(raw)
        self._early.clear()
        if session.status == sessions_pb2.SESSION_STATUS_ENDED:
            # Nothing live will follow: let a `hello` replay, then close.
            self._tasks.append(asyncio.create_task(self._close_when_quiet()))
        self._tasks.append(asyncio.create_task(self._hello_timer()))
        self._tasks.append(asyncio.create_task(self._watch_expiry()))

    async def _hello_timer(self) -> None:
        await asyncio.sleep(self.config.hello_wait)
        self.open_gate()

    async def _close_when_quiet(self) -> None:
        # After the hello gate opens and any replay has been sent.
        await self._settled.wait()
        while self.gate.held or (self._refill is not None and not self._refill.done()):
            self._settled.clear()
            await self._settled.wait()
        self.close(CLOSE_ENDED, "session ended")

    async def _watch_expiry(self) -> None:
        warned = False
        while not self.closing:
            step = expiry_step(self.clock(), self.expires_at, self.config.auth_grace, warned)
            if step.action == "close":
                self.close(CLOSE_TOKEN_EXPIRED, "access token expired")
                return
            if step.action == "warn":
                warned = True
                self.send_event(error_event(
                    self.session_id, "token_expired",
                    f"access token expired; send {{\"type\": \"auth\", \"access_token\": ...}} "
                    f"within {step.seconds:.0f} s", retry_after=round(step.seconds, 3)))
            self._auth_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._auth_changed.wait(), max(step.seconds, 0.01))
                warned = False

    async def finish(self) -> None:
        extra = [t for t in (self._refill, self._gap_check) if t is not None]
        for task in [*self._tasks, *extra]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _members(backends: Backends, session_id: str, token: str) -> list[dict[str, Any]]:
    reply = await backends.call(
        "sessions", "ListMembers", backends.sessions.ListMembers,
        sessions_pb2.ListMembersRequest(session_id=session_id), token=token)
    users: dict[str, dict[str, Any]] = {}
    try:
        found = await backends.call(
            "auth", "BatchGetUsers", backends.auth.BatchGetUsers,
            auth_pb2.BatchGetUsersRequest(user_ids=[m.user_id for m in reply.members]),
            token=token)
        users = {user.id: user_out(user) for user in found.users}
    except ApiError as exc:
        # Profiles are decoration: a welcome without them beats no welcome.
        log.warning("member profiles unavailable: %s", exc.code)
    # The shape of GET /api/v1/sessions/{id}/members items.
    return [{"user": users.get(m.user_id, {"id": m.user_id}), "role": ROLE_NAMES.get(m.role),
             "joined_at": rfc3339(m.joined_at)} for m in reply.members]


def upgrade_check(request: web.Request, ws: web.WebSocketResponse, hub: Hub) -> None:
    if not ws.can_prepare(request).ok:
        raise ApiError(426, "upgrade_required", "this route speaks WebSocket only",
                       headers={"Upgrade": "websocket"})
    if hub.draining:
        raise ApiError(503, "unavailable", "this gateway is shutting down; connect again",
                       retry_after=1)


async def events_socket(request: web.Request) -> web.StreamResponse:
    hub, config, backends = request.app[keys.HUB], request.app[keys.REALTIME], request.app[keys.BACKENDS]
    session_id = path_uuid(request, "id", "session")
    session_id_var.set(session_id)
    auth = await authenticate(request, allow_query=True)
    ws = web.WebSocketResponse(max_msg_size=EVENTS_MAX_FRAME, timeout=config.close_timeout,
                               heartbeat=30.0, compress=False)
    upgrade_check(request, ws, hub)
    conn = EventsConnection(ws, hub=hub, backends=backends, verifier=request.app[VERIFIER],
                            config=config, session_id=session_id, auth=auth)
    # Subscribe before reading last_seq: every event after it then reaches us live.
    live = await hub.join_events(conn)
    try:
        session_reply, members = await asyncio.gather(
            backends.call("sessions", "GetSession", backends.sessions.GetSession,
                          sessions_pb2.GetSessionRequest(session_id=session_id,
                                                         include_last_seq=True),
                          token=auth.token),
            _members(backends, session_id, auth.token))
        await ws.prepare(request)
    except BaseException:
        hub.leave(conn)
        raise
    conn.record_open()
    try:
        conn.start(request.transport)
        conn.welcome(session_reply.session, members, await conn.join_presence())
        if not live:
            conn.on_outage()
        await conn.announce_presence()
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await conn.handle_text(message.data)
            elif message.type == WSMsgType.BINARY:
                conn.handle_binary()
            if conn.closing:
                break
    finally:
        hub.leave(conn)
        await conn.finish()
        await conn.leave_presence()
        await conn.stop()
        conn.record_closed()
        conn.released.set()
    return ws
