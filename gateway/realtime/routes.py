"""Realtime routes (documented in /openapi.json), the hub's lifetime, and the drain on shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from tandem.sessions.v1 import sessions_pb2

from gateway import keys
from gateway.errors import ApiError
from gateway.grpc_clients import Backends
from gateway.openapi import Operation, RouteTable
from gateway.realtime.config import RealtimeConfig
from gateway.realtime.doc import doc_socket
from gateway.realtime.events import events_socket
from gateway.realtime.hub import DocMember, DocResync, EventsMember, Hub, SeqProbe
from services.common.config import ConfigError, Env, fail

log = logging.getLogger(__name__)

_TOKEN_QUERY = (("access_token", {"type": "string"},
                 "access token, for clients that cannot set the Authorization header"),)

EVENTS_DESCRIPTION = """WebSocket (JSON text frames). The server sends `welcome`
`{session, role, members, presence, last_seq, connection_id, user_id}` first. Client frames:
`hello {last_seq}` (replay every sequenced event after it, then live), `chat.send {body,
client_id}` (answered by `chat.ack {client_id, seq, id}` once stored), `presence.update
{cursor?, status?}`, `auth {access_token}` (a fresh token before the current one expires plus
the grace period), `ping` (answered by `pong`). Every server frame is an envelope `{type,
seq?, session_id, at, ...}`. A malformed or unknown frame gets an `error {code, message}` and
the socket stays open. Close codes: 1009 frame over 64 KiB, 1012 gateway restarting
(reconnect with your last seq), 1013 client too slow, 4401 token expired, 4403 removed from
the session, 4410 session ended."""

DOC_DESCRIPTION = """WebSocket (binary): the y-websocket protocol (sync step 1/2, update,
awareness) over the session's shared document, a `Y.Text` named `code`. Updates are stored
before they reach other clients; a refused update (a viewer's, any after the session ended,
or one that would take the document past its size limit) is dropped and answered on this
socket with y-protocols' auth message `permission-denied` and a reason (and with an `error`
on the events socket). A connection's own awareness is sent back to it; it owns the
awareness client ids it announces first (4 by default), each entry at most 4 KiB by default.
Close codes: 1003 text frame, 1007 not a y-websocket message, 1012 gateway restarting, 1013
document store unavailable (reconnect to resync), 4401 token expired, 4403 removed from the
session, 4410 session deleted, 4429 too many frames (by default over 100 a second, bursts of
300)."""


def add_routes(table: RouteTable) -> None:
    table.add(Operation(
        "GET", "/api/v1/sessions/{id}/events", events_socket,
        "Realtime events of a session (WebSocket)", "realtime", status=101,
        errors=(404, 426), query=_TOKEN_QUERY, token_in_query=True, name="session_events_socket",
        extra={"description": EVENTS_DESCRIPTION}))
    table.add(Operation(
        "GET", "/api/v1/sessions/{id}/doc", doc_socket,
        "The session's shared document over y-websocket (WebSocket)", "realtime", status=101,
        errors=(404, 426), query=_TOKEN_QUERY, token_in_query=True, name="session_doc_socket",
        extra={"description": DOC_DESCRIPTION}))


def document_resync(backends: Backends) -> DocResync:
    """The stored document, read with the token of any member still connected."""

    async def resync(session_id: str, members: list[DocMember]) -> tuple[bytes, int] | None:
        for member in members:
            token = getattr(member, "token", None)
            if not isinstance(token, str):
                continue
            try:
                reply = await backends.call(
                    "sessions", "SyncDocument", backends.sessions.SyncDocument,
                    # The encoded empty state vector: "send me everything".
                    sessions_pb2.SyncDocumentRequest(session_id=session_id, state_vector=b"\x00"),
                    token=token)
            except ApiError as exc:
                log.warning("document resync failed: %s", exc.code)
                continue
            return reply.update, reply.version
        return None

    return resync


def last_seq_probe(backends: Backends) -> SeqProbe:
    """The session's last_seq, read with the token of a member still connected."""

    async def probe(session_id: str, members: list[EventsMember]) -> int | None:
        for member in members:
            token = getattr(member, "token", None)
            if not isinstance(token, str):
                continue
            try:
                reply = await backends.call(
                    "sessions", "GetSession", backends.sessions.GetSession,
                    sessions_pb2.GetSessionRequest(session_id=session_id, include_last_seq=True),
                    token=token)
            except ApiError:
                continue
            return reply.session.last_seq
        return None

    return probe


async def realtime_ctx(app: web.Application) -> AsyncIterator[None]:
    """The hub lives from start-up (after Redis and backends) to cleanup."""
    try:
        config = RealtimeConfig.from_env(Env())
    except ConfigError as exc:
        fail(exc, "gateway")
    common = app[keys.CONFIG].common
    backends = app[keys.BACKENDS]
    hub = Hub(common.redis_url, app[keys.REDIS], common.redis_prefix, config,
              document_resync(backends), last_seq_probe(backends))
    app[keys.REALTIME] = config
    app[keys.HUB] = hub
    await hub.start()
    yield
    await hub.stop()


async def drain(app: web.Application) -> None:
    """on_shutdown: the listening socket is already closed; flush and close every client."""
    hub = app.get(keys.HUB)
    if hub is not None:
        # Leave part of the shutdown grace for aiohttp to finish the handlers.
        await hub.drain(max(0.5, app[keys.CONFIG].common.shutdown_grace * 0.6))
