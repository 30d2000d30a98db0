"""The shared Yjs document of a session: stored updates, compaction, sync, and live publishing.

Storage (migration 050): `documents` holds one row per session with a compacted
snapshot (`state`, an encoded Yjs update from the empty document, covering every
update with id <= `upto`) and the version counter; `document_updates` holds the
updates after the snapshot. The database is the source of truth: several
sessions-service replicas may write one document, so each replica keeps only a
bounded LRU of loaded `pycrdt.Doc`s and reads the tail it has not seen before
using one. Writers serialize on the document's row lock, so update ids are
committed in id order within a session and a reader never skips one.

Size (DOCUMENT_MAX_BYTES, docs/reliability.md): beside each loaded Doc two integers,
checked under the row lock with no re-encoding and no extra statement per update:

- `size`, the snapshot's bytes plus the bytes of every update logged since. An update
  with new content that would take it past the limit is refused without being decoded,
  unless folding the log (deleted text) shows there is room after all.
- `bound`, an upper bound of the encoded state: its size when last measured plus
  GROWTH_BOUND times the bytes of each update since. Deleting splits items, so a state
  can grow by several times the bytes of the delete that caused it (measured: up to
  ~10x); `size` alone would undercount. Only when `bound` would pass the limit is the
  state measured exactly, with the update applied: a rare O(document) encode for a
  document near its limit, none for the others. That measurement, not `size`, decides
  for updates that only delete, so a full document can always be cut down.

The loaded documents of a replica are bounded by `size` (SESSIONS_DOCUMENT_CACHE_BYTES),
least recently used first.

Live delivery: after the commit the update is published on the session's
binary document channel (`<REDIS_PREFIX>sessions:rt:doc:<session_id>`), framed as

    byte 0       kind (0 = update)
    bytes 1-16   origin connection id (zeros: the sessions service)
    bytes 17-24  document version after the update (unsigned 64-bit, big-endian)
    bytes 25-    the Yjs update (v1 encoding), exactly as the client sent it

The gateway's realtime hub (gateway/realtime/protocol.py) reads the same frames and
adds awareness kinds of its own on that channel.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import weakref
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg.errors
import redis.exceptions
from google.protobuf.timestamp_pb2 import Timestamp
from pycrdt import Doc, Text
from tandem.sessions.v1 import sessions_pb2

from services.common import metrics
from services.common.context import session_id_var
from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from services.common.grpcserver import Resources
from services.common.identity import Caller
from services.common.timeconv import to_timestamp
from services.sessions.domain import Membership, Role, Status, parse_uuid

log = logging.getLogger(__name__)

TEXT_NAME = "code"
# A Yjs v1 update with no structs and an empty delete set: what a client that has
# nothing new sends as its sync step 2. Storing it would only bump the version.
EMPTY_UPDATE = b"\x00\x00"
# What a loaded Doc costs beyond its encoded state (about 3.6 KB measured for a small
# document): a budget counting only state bytes would let thousands of tiny ones in.
LOADED_OVERHEAD_BYTES = 4096
# How many bytes of encoded state one byte of update can add at most: deletes that split
# items grew states by up to ~10.5x their bytes in tests/sessions/test_documents.py's
# measurements (single characters, every other one deleted); the margin covers the rest.
GROWTH_BOUND = 16

DOC_FRAME_UPDATE = 0
NO_ORIGIN = bytes(16)
_VERSION = struct.Struct(">Q")


def doc_channel(res: Resources, session_id: str) -> str:
    """The binary channel on which a session's document updates are published."""
    return res.keys.key("rt", "doc", session_id)


def update_frame(version: int, update: bytes) -> bytes:
    """A document-channel frame carrying one stored update."""
    return bytes([DOC_FRAME_UPDATE]) + NO_ORIGIN + _VERSION.pack(version) + update


class MembershipLookup(Protocol):
    """What the document needs from the sessions service's member store."""

    def membership(self, session_id: str, user_id: str) -> Awaitable[Membership | None]: ...

    def status(self, session_id: str) -> Awaitable[Status | None]: ...


@dataclass
class _Loaded:
    """A document loaded in memory: the snapshot at `upto` plus the updates up to `last_id`."""

    doc: Doc[Any]
    upto: int
    last_id: int
    tail: int
    version: int
    updated_at: datetime | None
    # Bytes of the snapshot plus every update applied since (see the module's "Size").
    size: int
    # At least the encoded state's bytes, whatever the updates since did.
    bound: int


def _timestamp(value: datetime | None) -> Timestamp | None:
    return None if value is None else to_timestamp(value)


def _text(doc: Doc[Any]) -> str:
    return str(doc.get(TEXT_NAME, type=Text))


class DocumentTooLarge(ResourceExhausted):
    """The update would take the stored document past DOCUMENT_MAX_BYTES (HTTP 413)."""

    default_reason = "document_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the document would pass its size limit of {limit} bytes; "
                         "the update was not stored")
        metrics.DOCUMENT_UPDATES_TOO_LARGE.inc()


class _GrewPastLimit(Exception):
    """The update, applied, made the state too large (the cached Doc now holds it)."""


class _OverLimit(Exception):
    """Raised inside the writer's transaction (rolling it back) when an update does not fit."""

    def __init__(self, loaded: _Loaded) -> None:
        super().__init__("over the document size limit")
        self.loaded = loaded


def check_decodes(update: bytes) -> None:
    """Refuse bytes that are not a Yjs update before they are stored.

    Called once the update is known to fit: an update refused for its size is never
    decoded, so at the limit a refusal costs a row lock, not a scratch document.
    """
    try:
        # A scratch document: decoding errors surface here, and the cached
        # document never sees an update that has not been stored.
        Doc().apply_update(update)
    except ValueError:
        raise InvalidArgument("update is not a valid Yjs update") from None


class DocumentService:
    """GetDocument, SyncDocument and ApplyDocumentUpdate over stored updates and snapshots."""

    def __init__(self, res: Resources, members: MembershipLookup, *, compact_after: int = 500,
                 cache_bytes: int = 16 * 1024 * 1024, publish_timeout: float = 1.0) -> None:
        self._res = res
        self._members = members
        self._compact_after = compact_after
        self._max_bytes = res.config.document_max_bytes
        self._cache_bytes = cache_bytes
        self._publish_timeout = publish_timeout
        # Least recently used first; each entry weighs its size plus LOADED_OVERHEAD_BYTES.
        self._cache: OrderedDict[str, _Loaded] = OrderedDict()
        self._weights: dict[str, int] = {}
        self._cached_weight = 0
        # One lock per session in this process: the cached Doc is shared state,
        # and publishing under it keeps this replica's frames in version order.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # --- RPCs -----------------------------------------------------------------------------

    async def get_document(self, request: sessions_pb2.GetDocumentRequest,
                           caller: Caller) -> sessions_pb2.GetDocumentResponse:
        session_id = await self._authorize_read(request.session_id, caller)
        async with self._lock(session_id):
            loaded = await self._read(session_id)
            text = _text(loaded.doc)
        return sessions_pb2.GetDocumentResponse(text=text, version=loaded.version,
                                                updated_at=_timestamp(loaded.updated_at))

    async def sync_document(self, request: sessions_pb2.SyncDocumentRequest,
                            caller: Caller) -> sessions_pb2.SyncDocumentResponse:
        """Answer a state vector with the update it lacks; an empty one asks only for ours.

        The empty request lets the gateway open the y-websocket handshake (its
        sync step 1 needs the server's state vector) without moving the whole
        document over the wire.
        """
        session_id = await self._authorize_read(request.session_id, caller)
        client_state = bytes(request.state_vector)
        async with self._lock(session_id):
            loaded = await self._read(session_id)
            state = loaded.doc.get_state()
            update = b""
            if client_state:
                try:
                    update = loaded.doc.get_update(client_state)
                except ValueError:
                    raise InvalidArgument("state_vector is not a Yjs state vector") from None
        return sessions_pb2.SyncDocumentResponse(update=update, state_vector=state,
                                                 version=loaded.version)

    async def apply_update(self, request: sessions_pb2.ApplyDocumentUpdateRequest,
                           caller: Caller) -> sessions_pb2.ApplyDocumentUpdateResponse:
        """Store one update; answered only after the commit, then published to gateways."""
        session_id = await self._authorize_write(request.session_id, caller)
        update = bytes(request.update)
        if len(update) > self._max_bytes:
            raise DocumentTooLarge(self._max_bytes)  # can never fit
        async with self._lock(session_id):
            if update == EMPTY_UPDATE:
                return sessions_pb2.ApplyDocumentUpdateResponse(
                    version=(await self._read(session_id)).version)
            try:
                loaded = await self._store_within_limit(session_id, update)
            except (DocumentTooLarge, InvalidArgument):
                raise  # refused before anything was applied to the cached Doc
            except psycopg.errors.ForeignKeyViolation:
                # Deleted after the (cached) membership check passed.
                self._forget(session_id)
                raise NotFound("session not found") from None
            except BaseException:
                # The cached Doc may hold an update whose transaction did not
                # commit: forget it, the next reader loads from the database.
                self._forget(session_id)
                raise
            await self._publish(session_id, update_frame(loaded.version, update))
        return sessions_pb2.ApplyDocumentUpdateResponse(version=loaded.version)

    # --- authorization --------------------------------------------------------------------

    async def _authorize_read(self, raw_id: str, caller: Caller) -> str:
        session_id = parse_uuid(raw_id, "session")
        session_id_var.set(session_id)
        if caller.user_id is None:
            # A service acting for nobody in particular (e.g. the AI reviewer).
            if not caller.internal or await self._members.status(session_id) is None:
                raise NotFound("session not found")
            return session_id
        if await self._members.membership(session_id, caller.user_id) is None:
            raise NotFound("session not found")
        return session_id

    async def _authorize_write(self, raw_id: str, caller: Caller) -> str:
        session_id = parse_uuid(raw_id, "session")
        session_id_var.set(session_id)
        user_id = caller.require_user()
        membership = await self._members.membership(session_id, user_id)
        if membership is None:
            raise NotFound("session not found")
        if membership.status is Status.ENDED:
            raise FailedPrecondition("the session has ended; its document is read-only",
                                     reason="session_ended")
        if not membership.role.at_least(Role.EDITOR):
            raise PermissionDenied("viewers cannot edit the document")
        return session_id

    # --- storage --------------------------------------------------------------------------

    def _lock(self, session_id: str) -> asyncio.Lock:
        lock = self._locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[session_id] = lock
        return lock

    def loaded(self) -> dict[str, int]:
        """The size counted for each loaded document, least recently used first."""
        return {session_id: loaded.size for session_id, loaded in self._cache.items()}

    def _remember(self, session_id: str, loaded: _Loaded) -> None:
        weight = loaded.size + LOADED_OVERHEAD_BYTES
        self._cached_weight += weight - self._weights.get(session_id, 0)
        self._weights[session_id] = weight
        self._cache[session_id] = loaded
        self._cache.move_to_end(session_id)
        # The document just used stays even when it alone is over the budget.
        while self._cached_weight > self._cache_bytes and len(self._cache) > 1:
            oldest, _ = self._cache.popitem(last=False)
            self._cached_weight -= self._weights.pop(oldest)
        metrics.DOCUMENTS_LOADED_BYTES.set(self._cached_weight)

    def _forget(self, session_id: str) -> None:
        if self._cache.pop(session_id, None) is not None:
            self._cached_weight -= self._weights.pop(session_id)
            metrics.DOCUMENTS_LOADED_BYTES.set(self._cached_weight)

    async def _read(self, session_id: str) -> _Loaded:
        """The committed document, bringing the cached copy up to date with the database."""
        async with self._res.pool.connection() as conn, conn.transaction():
            # One snapshot for the head row and the tail: a compaction committed
            # between two reads would otherwise hide updates from us.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur = await conn.execute(
                "SELECT upto, version, updated_at FROM documents WHERE session_id = %s",
                (session_id,))
            head = await cur.fetchone()
            if head is None:
                loaded = self._cache.get(session_id) or _Loaded(Doc(), 0, 0, 0, 0, None, 0, 0)
                self._remember(session_id, loaded)
                return loaded
            loaded = await self._catch_up(conn, session_id, int(head["upto"]))
            loaded.version = int(head["version"])
            loaded.updated_at = head["updated_at"]
        self._remember(session_id, loaded)
        if loaded.tail >= self._compact_after:
            # Compaction otherwise happens only on writes: a document written long ago
            # and then only read would replay its whole tail on every cold load.
            await self._compact_after_read(session_id, loaded)
        return loaded

    async def _compact_after_read(self, session_id: str, loaded: _Loaded) -> None:
        try:
            async with self._res.pool.connection() as conn, conn.transaction():
                # The writers' row lock: no update can commit while we fold the tail.
                cur = await conn.execute(
                    "SELECT upto FROM documents WHERE session_id = %s FOR UPDATE", (session_id,))
                head = await cur.fetchone()
                if head is None or int(head["upto"]) != loaded.upto:
                    return  # deleted, or another replica compacted meanwhile
                loaded = await self._catch_up(conn, session_id, loaded.upto)
                await self._compact(conn, session_id, loaded)
        except psycopg.Error:
            # Only an optimisation: the document stays correct without it.
            self._forget(session_id)
            log.warning("could not compact a document after a read", exc_info=True)
            return
        self._remember(session_id, loaded)

    async def _catch_up(self, conn: Any, session_id: str, upto: int) -> _Loaded:
        """The cached document plus the updates stored since, or a fresh load."""
        loaded = self._cache.get(session_id)
        if loaded is None or loaded.upto != upto:
            # Never loaded, or another replica compacted since: start from the snapshot.
            cur = await conn.execute("SELECT state FROM documents WHERE session_id = %s",
                                     (session_id,))
            row = await cur.fetchone()
            doc: Doc[Any] = Doc()
            state = b"" if row is None else bytes(row["state"])
            if state:
                doc.apply_update(state)
            loaded = _Loaded(doc, upto, upto, 0, 0, None, len(state), len(state))
        cur = await conn.execute(
            "SELECT id, update FROM document_updates WHERE session_id = %s AND id > %s ORDER BY id",
            (session_id, loaded.last_id))
        for row in await cur.fetchall():
            update = bytes(row["update"])
            loaded.doc.apply_update(update)
            loaded.last_id = int(row["id"])
            loaded.tail += 1
            loaded.size += len(update)
            loaded.bound += GROWTH_BOUND * len(update)
        return loaded

    async def _store_within_limit(self, session_id: str, update: bytes) -> _Loaded:
        """Store the update if the document stays within DOCUMENT_MAX_BYTES, else refuse it."""
        for attempt in range(2):
            try:
                return await self._store(session_id, update)
            except _GrewPastLimit:
                # Rolled back; the cached Doc holds the refused update: the next reader reloads.
                self._forget(session_id)
                raise DocumentTooLarge(self._max_bytes) from None
            except _OverLimit as over:
                self._remember(session_id, over.loaded)
                if attempt or over.loaded.tail == 0:
                    raise DocumentTooLarge(self._max_bytes) from None
                # The count includes every logged update, also text deleted since: fold the
                # log to learn the real size (only near the limit), then decide on that.
                await self._compact_after_read(session_id, over.loaded)
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def _store(self, session_id: str, update: bytes) -> _Loaded:
        async with self._res.pool.connection() as conn, conn.transaction():
            # The upsert takes the row lock: writers of one document (on any
            # replica) queue here, so versions and update ids follow commit order.
            cur = await conn.execute(
                "INSERT INTO documents (session_id, version) VALUES (%s, 1) "
                "ON CONFLICT (session_id) DO UPDATE "
                "SET version = documents.version + 1, updated_at = now() "
                "RETURNING upto, version, updated_at",
                (session_id,))
            head = await cur.fetchone()
            assert head is not None  # noqa: S101 - RETURNING of an upsert always yields the row
            loaded = await self._catch_up(conn, session_id, int(head["upto"]))
            deletes_only = update[:1] == b"\x00"  # no structs: a delete set alone
            if not deletes_only and loaded.size + len(update) > self._max_bytes:
                # Rolls back the version bump; the cached Doc holds only committed updates.
                raise _OverLimit(loaded)
            check_decodes(update)
            cur = await conn.execute(
                "INSERT INTO document_updates (session_id, update) VALUES (%s, %s) RETURNING id",
                (session_id, update))
            new = await cur.fetchone()
            assert new is not None  # noqa: S101 - INSERT ... RETURNING yields the row
            loaded.doc.apply_update(update)
            bound = loaded.bound + GROWTH_BOUND * len(update)
            if bound > self._max_bytes:
                # Near the limit: what the state really is now, with this update.
                bound = len(loaded.doc.get_update())
                if bound > self._max_bytes:
                    raise _GrewPastLimit  # rolls the insert back
                loaded.size = min(loaded.size + len(update), bound)
            else:
                loaded.size += len(update)
            loaded.bound = bound
            loaded.last_id = int(new["id"])
            loaded.tail += 1
            loaded.version = int(head["version"])
            loaded.updated_at = head["updated_at"]
            if loaded.tail >= self._compact_after:
                await self._compact(conn, session_id, loaded)
        self._remember(session_id, loaded)
        return loaded

    async def _compact(self, conn: Any, session_id: str, loaded: _Loaded) -> None:
        """Fold the tail into the snapshot, in the writer's transaction."""
        state = loaded.doc.get_update()
        await conn.execute("UPDATE documents SET state = %s, upto = %s WHERE session_id = %s",
                           (state, loaded.last_id, session_id))
        await conn.execute("DELETE FROM document_updates WHERE session_id = %s AND id <= %s",
                           (session_id, loaded.last_id))
        log.info("document compacted", extra={"updates": loaded.tail, "bytes": len(state)})
        loaded.upto = loaded.last_id
        loaded.tail = 0
        loaded.size = loaded.bound = len(state)

    async def _publish(self, session_id: str, frame: bytes) -> None:
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._res.redis.publish(doc_channel(self._res, session_id), frame)
        except (TimeoutError, redis.exceptions.RedisError) as exc:
            # Stored and acknowledged regardless: gateways resync their clients
            # from the database when their subscription comes back.
            log.warning("document update not published: %s", type(exc).__name__)
