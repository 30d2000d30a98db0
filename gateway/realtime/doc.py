"""The document socket `GET /api/v1/sessions/{id}/doc`: the y-websocket protocol, relayed.

The gateway keeps no document. Sync step 1 is answered from the sessions
service's stored state (SyncDocument); client updates are stored there
(ApplyDocumentUpdate, acknowledged only after the write) and come back to
every client of the session, on any gateway, through the document channel.
Awareness (cursors, names) is relayed between clients and never stored; like the
reference y-websocket server, a client is sent its own awareness back, which is what
keeps y-websocket's provider (it reconnects after 30 s without a message) connected
when it is alone. A connection owns at most `REALTIME_AWARENESS_CLIENTS` awareness
client ids, the first it announces (claimed in Redis, so no other connection on any
gateway can set or clear them; y-websocket re-sends every peer's state it hears, and
those copies are dropped here), each entry at most `REALTIME_AWARENESS_ENTRY_BYTES`.
Every state a connection sends is kept and relayed with its `user` rewritten: `name` is
the connection's GitHub login (from its access token) and only `#rrggbb[aa]` colours stay,
since y-codemirror.next draws them as the cursor's label and inline style (a state that is
not a JSON object, or grows past the entry limit by the rewrite, is dropped). Frames are
rate-limited per connection (4429 when exceeded). A refused update is
answered on this socket with y-protocols' auth `permission-denied` and a reason (and,
as before, an `error` on the user's events sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from tandem.sessions.v1 import sessions_pb2

from gateway import keys
from gateway.auth import Auth, authenticate
from gateway.errors import ApiError
from gateway.grpc_clients import Backends
from gateway.http import path_uuid
from gateway.realtime.config import RealtimeConfig
from gateway.realtime.connection import (
    CLOSE_ENDED,
    CLOSE_INVALID_PAYLOAD,
    CLOSE_REVOKED,
    CLOSE_TOKEN_EXPIRED,
    CLOSE_TRY_AGAIN,
    CLOSE_UNSUPPORTED,
    Connection,
    Socket,
)
from gateway.realtime.events import upgrade_check
from gateway.realtime.flow import TokenBucket, expiry_step
from gateway.realtime.hub import DocMember, Hub
from gateway.realtime.protocol import (
    EMPTY_UPDATE,
    MESSAGE_AWARENESS,
    SYNC_STEP1,
    AwarenessEntry,
    AwarenessMessage,
    QueryAwareness,
    SyncMessage,
    TooManyAwarenessClients,
    YProtocolError,
    awareness_message,
    encode_awareness,
    error_event,
    owned_state,
    parse_y_message,
    permission_denied,
    removal,
    sync_step1,
    sync_step2,
)
from gateway.routes.sessions import ROLE_NAMES
from services.common import metrics
from services.common.context import session_id_var
from services.common.docframes import DOC_AWARENESS, DOC_QUERY, NOBODY, DocFrame

log = logging.getLogger(__name__)

# A viewer's editor may emit an update per keystroke: one error event a second is enough.
REFUSAL_INTERVAL = 1.0
# A client that sends faster than REALTIME_DOC_RATE_PER_SECOND (docs/api.md).
CLOSE_RATE_LIMITED = 4429
# Each query-awareness frame makes every gateway send the asker all its clients' states:
# one answered per connection in this many seconds is plenty (y-websocket never sends one).
QUERY_INTERVAL = 1.0

VIEWER_MESSAGE = "viewers cannot edit the document; the update was dropped"
ENDED_MESSAGE = "the session has ended; its document is read-only"
TOO_LARGE_MESSAGE = ("the document would exceed its size limit; the update was not stored "
                     "(what is stored is unchanged)")
# The refusals on the document socket itself, built once.
_DENIED = {"permission_denied": permission_denied(VIEWER_MESSAGE),
           "failed_precondition": permission_denied(ENDED_MESSAGE),
           "payload_too_large": permission_denied(TOO_LARGE_MESSAGE)}
_RATE_LIMITED = metrics.WS_RATE_LIMITED.labels("doc")


class DocConnection(Connection):
    """One y-websocket client; its updates go to the sessions service, never straight to peers."""

    socket = "doc"

    def __init__(self, ws: Socket, *, hub: Hub, backends: Backends, config: RealtimeConfig,
                 session_id: str, auth: Auth, role: str | None, ended: bool,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(ws, session_id=session_id, user_id=auth.user_id,
                         queue_limit=config.send_queue, close_timeout=config.close_timeout)
        self.hub = hub
        self.backends = backends
        self.config = config
        self.token = auth.token
        # The name every awareness state of this connection carries (the token's login).
        self.login = auth.claims.login
        self.expires_at = auth.claims.expires_at
        self.clock = clock
        self.role = role
        self.ended = ended
        self.released = asyncio.Event()
        self._awareness: dict[int, AwarenessEntry] = {}
        # Awareness client ids this connection owns -> when its claim was last renewed, and
        # ids it was refused -> when (asked again only after `_renew_after`).
        self._owned: dict[int, float] = {}
        self._refused: dict[int, float] = {}
        self._renew_after = config.presence_ttl / 3
        self._owner = self.id.hex
        # An awareness frame bigger than every entry this connection may own is refused unread.
        self._awareness_frame_max = config.awareness_clients * (config.awareness_entry_bytes + 32)
        self.bucket = TokenBucket(config.doc_rate_per_second, config.doc_rate_burst)
        self._last_query = float("-inf")
        self._last_refusal = float("-inf")
        self._tasks: list[asyncio.Task[None]] = []

    # --- from the hub -----------------------------------------------------------------------

    def on_event(self, event: dict[str, Any], raw: str) -> None:
        kind = event["type"]
        mine = event.get("user_id") == self.user_id
        if kind == "member.role_changed" and mine and isinstance(event.get("role"), str):
            self.role = event["role"]
        elif kind == "member.removed" and mine:
            self.close(CLOSE_REVOKED, "removed from the session")
        elif kind == "session.ended":
            self.ended = True
        elif kind == "session.deleted":
            self.close(CLOSE_ENDED, "session deleted")

    def on_outage(self) -> None:
        """Nothing to say over y-websocket; the hub resends the document when Redis returns."""

    def on_recovered(self) -> None:
        """The hub resyncs every document room at once (see Hub._recovered)."""

    def awareness_claims(self) -> tuple[str, list[int]]:
        return self._owner, list(self._owned)

    def awareness_entries(self) -> list[AwarenessEntry]:
        return list(self._awareness.values())

    # --- protocol ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Send sync step 1 with the stored state vector, and ask peers for their awareness."""
        reply = await self._sync(b"")
        self.send(sync_step1(reply.state_vector))
        self.hub.note_doc_version(self.session_id, reply.version)
        await self.hub.publish_doc(self.session_id, DocFrame(DOC_QUERY, self.id_bytes))
        self._tasks.append(asyncio.create_task(self._watch_expiry()))

    async def _sync(self, state_vector: bytes) -> sessions_pb2.SyncDocumentResponse:
        return await self.backends.call(
            "sessions", "SyncDocument", self.backends.sessions.SyncDocument,
            sessions_pb2.SyncDocumentRequest(session_id=self.session_id,
                                             state_vector=state_vector),
            token=self.token)

    async def handle(self, data: bytes) -> None:
        if not self.bucket.allow():
            _RATE_LIMITED.inc()
            self.close(CLOSE_RATE_LIMITED, "too many messages; slow down and reconnect")
            return
        if len(data) > self._awareness_frame_max and data[0] == MESSAGE_AWARENESS:
            return
        try:
            message = parse_y_message(data)
        except TooManyAwarenessClients:
            return  # e.g. a busy room's states re-sent by a joiner: dropped, like a peer's
        except YProtocolError as exc:
            self.close(CLOSE_INVALID_PAYLOAD, f"not a y-websocket message: {exc}")
            return
        if isinstance(message, SyncMessage):
            if message.step == SYNC_STEP1:
                try:
                    reply = await self._sync(message.payload)
                except ApiError as exc:
                    self.failed(exc)
                    return
                self.send(sync_step2(reply.update))
            else:
                await self._apply(message.payload)
        elif isinstance(message, AwarenessMessage):
            update = await self._accept_awareness(message)
            if update is None:
                return
            # The reference server's echo: y-websocket counts on hearing its own awareness
            # renewals (every 15 s) to know the connection is alive.
            self.send(data if update is message.update else awareness_message(update))
            await self.hub.publish_doc(self.session_id, DocFrame(
                DOC_AWARENESS, self.id_bytes, update, target=NOBODY))
        elif isinstance(message, QueryAwareness):
            now = time.monotonic()
            if now - self._last_query >= QUERY_INTERVAL:
                self._last_query = now
                await self.hub.publish_doc(self.session_id, DocFrame(DOC_QUERY, self.id_bytes))

    async def _accept_awareness(self, message: AwarenessMessage) -> bytes | None:
        """The part of an awareness update this connection may make (None: nothing), each
        state's `user` made this connection's (see `owned_state`)."""
        accepted: list[AwarenessEntry] = []
        changed = False
        for entry, value in zip(message.clients, message.states, strict=True):
            if self._too_big(entry.state):
                continue  # an oversized entry is refused, never stored or relayed
            gone = value is None
            renewed = self._owned.get(entry.client_id)
            # The steady state (an id it owns, renewed lately) needs no Redis round trip.
            if ((renewed is None or time.monotonic() - renewed >= self._renew_after)
                    and not await self._owns(entry.client_id, claim=not gone)):
                continue
            kept = entry
            if gone:
                self._awareness.pop(entry.client_id, None)
            else:
                # Owned ids only: a peer's state re-sent by this client costs no rewriting.
                state = owned_state(entry.state, value, self.login)
                if state is None:
                    continue
                if state is not entry.state:
                    if self._too_big(state):
                        continue
                    kept = AwarenessEntry(entry.client_id, entry.clock, state)
                    changed = True
                self._awareness[entry.client_id] = kept
            accepted.append(kept)
        if not accepted:
            return None
        if not changed and len(accepted) == len(message.clients):
            return message.update
        return encode_awareness(accepted)

    def _too_big(self, state: str) -> bool:
        limit = self.config.awareness_entry_bytes
        size = len(state)
        return size > limit or (size * 4 > limit and len(state.encode()) > limit)

    async def _owns(self, client_id: int, *, claim: bool) -> bool:
        """Whether this connection may speak for `client_id` (claiming or renewing it)."""
        now = time.monotonic()
        renewed = self._owned.get(client_id)
        if renewed is not None and now - renewed < self._renew_after:
            return True
        if renewed is None:
            if not claim or len(self._owned) >= self.config.awareness_clients:
                return False
            refused = self._refused.get(client_id)
            if refused is not None and now - refused < self._renew_after:
                return False
        try:
            owned = await self.hub.claim_awareness(self.session_id, client_id, self._owner)
        except Exception as exc:
            # Redis down: keep speaking for the ids this connection already holds, but take
            # no new one (a peer's state re-sent by this client must not become its own).
            log.warning("awareness claim failed: %s", type(exc).__name__)
            if renewed is None:
                return False
            self._owned[client_id] = now
            return True
        if owned:
            self._owned[client_id] = now
            self._refused.pop(client_id, None)
        else:
            self._owned.pop(client_id, None)
            if len(self._refused) >= 64:
                self._refused.clear()
            self._refused[client_id] = now
        return owned

    async def _apply(self, update: bytes) -> None:
        if update == EMPTY_UPDATE:
            return
        if self.ended:
            await self._refuse("failed_precondition", ENDED_MESSAGE)
            return
        if self.role == "viewer":
            await self._refuse("permission_denied", VIEWER_MESSAGE)
            return
        try:
            await self.backends.call(
                "sessions", "ApplyDocumentUpdate", self.backends.sessions.ApplyDocumentUpdate,
                sessions_pb2.ApplyDocumentUpdateRequest(session_id=self.session_id, update=update),
                token=self.token)
        except ApiError as exc:
            if exc.status == 403:
                self.role = "viewer"
                await self._refuse("permission_denied", VIEWER_MESSAGE)
            elif exc.code in ("failed_precondition", "gone"):
                self.ended = True
                await self._refuse("failed_precondition", ENDED_MESSAGE)
            elif exc.status == 413:
                # document_too_large: nothing was stored; the socket stays usable.
                await self._refuse("payload_too_large", TOO_LARGE_MESSAGE)
            else:
                self.failed(exc)

    def failed(self, exc: ApiError) -> None:
        if exc.status == 404:
            self.close(CLOSE_REVOKED, "not a member of the session")
        elif exc.status == 401:
            self.close(CLOSE_TOKEN_EXPIRED, "access token no longer valid")
        elif exc.status in (400, 422):
            self.close(CLOSE_INVALID_PAYLOAD, "the document refused this message")
        else:
            # Not stored, so not acknowledged: the client resends it when it
            # reconnects and syncs (its step 2 carries what the server lacks).
            self.close(CLOSE_TRY_AGAIN, "document store unavailable; reconnect")

    async def _refuse(self, code: str, message: str) -> None:
        # Every refused update is answered on this socket, in y-protocols' own terms.
        self.send(_DENIED[code])
        now = time.monotonic()
        if now - self._last_refusal < REFUSAL_INTERVAL:
            return
        self._last_refusal = now
        await self.hub.tell_user(self.session_id, self.user_id,
                                 error_event(self.session_id, code, message, socket="doc"))

    async def _watch_expiry(self) -> None:
        # y-websocket has no way to present a fresh token on an open socket: the
        # client reconnects with one (its provider's `params`).
        step = expiry_step(self.clock(), self.expires_at, self.config.auth_grace, True)
        while step.action != "close":
            await asyncio.sleep(step.seconds)
            step = expiry_step(self.clock(), self.expires_at, self.config.auth_grace, True)
        self.close(CLOSE_TOKEN_EXPIRED, "access token expired")

    async def goodbye(self) -> None:
        """Tell peers this client's cursors are gone (y-websocket servers do the same)."""
        entries = list(self._awareness.values())
        self._awareness.clear()
        if entries:
            await self.hub.publish_doc(self.session_id, DocFrame(
                DOC_AWARENESS, self.id_bytes, removal(entries), target=NOBODY))
        if self._owned:
            await self.hub.release_awareness(self.session_id, list(self._owned), self._owner)
            self._owned.clear()

    async def finish(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def doc_socket(request: web.Request) -> web.StreamResponse:
    hub, config, backends = request.app[keys.HUB], request.app[keys.REALTIME], request.app[keys.BACKENDS]
    session_id = path_uuid(request, "id", "session")
    session_id_var.set(session_id)
    auth = await authenticate(request, allow_query=True)
    ws = web.WebSocketResponse(max_msg_size=config.doc_max_frame, timeout=config.close_timeout,
                               heartbeat=30.0, compress=False)
    upgrade_check(request, ws, hub)
    membership = await backends.call(
        "sessions", "GetMembership", backends.sessions.GetMembership,
        sessions_pb2.GetMembershipRequest(session_id=session_id), token=auth.token)
    conn = DocConnection(ws, hub=hub, backends=backends, config=config, session_id=session_id,
                         auth=auth, role=ROLE_NAMES.get(membership.role),
                         ended=membership.status == sessions_pb2.SESSION_STATUS_ENDED)
    member: DocMember = conn
    # Subscribed before the first sync: no stored update can fall between the two.
    await hub.join_doc(member)
    try:
        await ws.prepare(request)
    except BaseException:
        hub.leave(member)
        raise
    conn.record_open()
    try:
        conn.start(request.transport)
        try:
            await conn.open()
        except ApiError as exc:
            conn.failed(exc)
        async for message in ws:
            if conn.closing:
                break
            if message.type == WSMsgType.BINARY:
                await conn.handle(message.data)
            elif message.type == WSMsgType.TEXT:
                conn.close(CLOSE_UNSUPPORTED, "the document socket speaks binary y-websocket")
            if conn.closing:
                break
    finally:
        hub.leave(member)
        await conn.goodbye()
        await conn.finish()
        await conn.stop()
        conn.record_closed()
        conn.released.set()
    return ws
