"""The shared Yjs document's machinery, free of I/O: loaded documents, their size rules, the LRU.

Storage (migration 050, SQL in repository.DocumentTx): `documents` holds one row per
session with a compacted snapshot (`state`, an encoded Yjs update from the empty
document, covering every update with id <= `upto`) and the version counter;
`document_updates` holds the updates after the snapshot. The database is the source of
truth: several sessions-service replicas may write one document, so each replica keeps
only a bounded LRU of loaded `pycrdt.Doc`s and reads the tail it has not seen before
using one. Writers serialize on the document's row lock, so update ids are committed in
id order within a session and a reader never skips one. The use case that drives this
is usecases.DocumentUseCases.

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
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pycrdt import Doc, Text

from services.common import metrics
from services.common.errors import InvalidArgument, ResourceExhausted

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
# Updates logged after the snapshot before they are folded into it.
COMPACT_AFTER = 500
DEFAULT_CACHE_BYTES = 16 * 1024 * 1024


class DocumentTooLarge(ResourceExhausted):
    """The update would take the stored document past DOCUMENT_MAX_BYTES (HTTP 413)."""

    default_reason = "document_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the document would pass its size limit of {limit} bytes; "
                         "the update was not stored")
        metrics.DOCUMENT_UPDATES_TOO_LARGE.inc()


class GrewPastLimit(Exception):
    """The update, applied, made the state too large (the loaded Doc now holds it)."""


class OverLimit(Exception):
    """Raised inside the writer's transaction (rolling it back) when an update does not fit."""

    def __init__(self, loaded: LoadedDocument) -> None:
        super().__init__("over the document size limit")
        self.loaded = loaded


def check_decodes(update: bytes) -> None:
    """Refuse bytes that are not a Yjs update before they are stored.

    Called once the update is known to fit: an update refused for its size is never
    decoded, so at the limit a refusal costs a row lock, not a scratch document.
    """
    try:
        # A scratch document: decoding errors surface here, and the loaded
        # document never sees an update that has not been stored.
        Doc().apply_update(update)
    except ValueError:
        raise InvalidArgument("update is not a valid Yjs update") from None


def deletes_only(update: bytes) -> bool:
    """No structs, only a delete set: the update cannot add content."""
    return update[:1] == b"\x00"


@dataclass
class LoadedDocument:
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

    @classmethod
    def empty(cls) -> LoadedDocument:
        return cls(Doc(), 0, 0, 0, 0, None, 0, 0)

    @classmethod
    def from_snapshot(cls, state: bytes, upto: int) -> LoadedDocument:
        doc: Doc[Any] = Doc()
        if state:
            doc.apply_update(state)
        return cls(doc, upto, upto, 0, 0, None, len(state), len(state))

    @property
    def text(self) -> str:
        return str(self.doc.get(TEXT_NAME, type=Text))

    def catch_up(self, stored: list[tuple[int, bytes]]) -> None:
        """Apply updates stored (by any replica) after `last_id`, in id order."""
        for update_id, update in stored:
            self.doc.apply_update(update)
            self.last_id = update_id
            self.tail += 1
            self.size += len(update)
            self.bound += GROWTH_BOUND * len(update)

    def admit(self, update: bytes, max_bytes: int) -> None:
        """Before storing: OverLimit if new content cannot fit, InvalidArgument if not Yjs."""
        if not deletes_only(update) and self.size + len(update) > max_bytes:
            raise OverLimit(self)
        check_decodes(update)

    def apply_new(self, update_id: int, update: bytes, max_bytes: int) -> None:
        """Apply an update just stored in the writer's transaction; GrewPastLimit if the state
        it makes is too large (the caller rolls back and forgets this document)."""
        self.doc.apply_update(update)
        bound = self.bound + GROWTH_BOUND * len(update)
        if bound > max_bytes:
            # Near the limit: what the state really is now, with this update.
            bound = len(self.doc.get_update())
            if bound > max_bytes:
                raise GrewPastLimit
            self.size = min(self.size + len(update), bound)
        else:
            self.size += len(update)
        self.bound = bound
        self.last_id = update_id
        self.tail += 1

    def compacted(self) -> bytes:
        """Fold the tail into the state: the new snapshot, covering updates up to `last_id`."""
        state = self.doc.get_update()
        self.upto = self.last_id
        self.tail = 0
        self.size = self.bound = len(state)
        return state


class LoadedDocuments:
    """This replica's loaded documents, bounded in bytes (least recently used go first),
    and one lock per document: the loaded Doc is shared state, and publishing under the
    lock keeps this replica's frames in version order."""

    def __init__(self, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._cache_bytes = cache_bytes
        # Least recently used first; each entry weighs its size plus LOADED_OVERHEAD_BYTES.
        self._cache: OrderedDict[str, LoadedDocument] = OrderedDict()
        self._weights: dict[str, int] = {}
        self._weight = 0
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def lock(self, session_id: str) -> asyncio.Lock:
        lock = self._locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[session_id] = lock
        return lock

    def get(self, session_id: str) -> LoadedDocument | None:
        return self._cache.get(session_id)

    def sizes(self) -> dict[str, int]:
        """The size counted for each loaded document, least recently used first."""
        return {session_id: loaded.size for session_id, loaded in self._cache.items()}

    def remember(self, session_id: str, loaded: LoadedDocument) -> None:
        weight = loaded.size + LOADED_OVERHEAD_BYTES
        self._weight += weight - self._weights.get(session_id, 0)
        self._weights[session_id] = weight
        self._cache[session_id] = loaded
        self._cache.move_to_end(session_id)
        # The document just used stays even when it alone is over the budget.
        while self._weight > self._cache_bytes and len(self._cache) > 1:
            oldest, _ = self._cache.popitem(last=False)
            self._weight -= self._weights.pop(oldest)
        metrics.DOCUMENTS_LOADED_BYTES.set(self._weight)

    def forget(self, session_id: str) -> None:
        """Drop a document that may hold an update whose transaction did not commit."""
        if self._cache.pop(session_id, None) is not None:
            self._weight -= self._weights.pop(session_id)
            metrics.DOCUMENTS_LOADED_BYTES.set(self._weight)
