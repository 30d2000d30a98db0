"""In-memory stand-ins for a WebSocket, the hub and the gRPC backends (unit tests only)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from tandem.sessions.v1 import sessions_pb2

from gateway.errors import ApiError
from gateway.realtime.config import RealtimeConfig
from services.common.config import Env


def config(**overrides: str) -> RealtimeConfig:
    return RealtimeConfig.from_env(Env(overrides))


class FakeSocket:
    """Records frames; `stall()` makes sends block like a client that stopped reading."""

    def __init__(self) -> None:
        self.frames: list[str | bytes] = []
        self.closed_with: tuple[int, bytes] | None = None
        self._open = asyncio.Event()
        self._open.set()

    def stall(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    async def send_str(self, data: str, compress: int | None = None) -> None:
        await self._open.wait()
        self.frames.append(data)

    async def send_bytes(self, data: bytes, compress: int | None = None) -> None:
        await self._open.wait()
        self.frames.append(data)

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        await self._open.wait()
        self.closed_with = (code, message)
        return True

    @property
    def close_code(self) -> int | None:
        return self.closed_with[0] if self.closed_with else None

    @property
    def closed(self) -> bool:
        return self.closed_with is not None

    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(f) for f in self.frames if isinstance(f, str)]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["type"] == kind]


class FakePresence:
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}

    async def put(self, session_id: str, entry: dict[str, Any]) -> None:
        self.entries[entry["connection_id"]] = dict(entry)

    async def entries(self, session_id: str) -> list[dict[str, Any]]:
        return list(self.entries.values())

    async def remove(self, session_id: str, connection_id: str) -> bool:
        return self.entries.pop(connection_id, None) is not None


class FakeHub:
    def __init__(self) -> None:
        self.presence = FakePresence()
        self.published: list[dict[str, Any]] = []
        self.refill_slots = asyncio.Semaphore(16)

    async def publish(self, session_id: str, event: dict[str, Any]) -> bool:
        self.published.append(event)
        return True


class FakeSessions:
    """The sessions RPCs the events socket uses, over an in-memory event log."""

    def __init__(self) -> None:
        self.log: list[sessions_pb2.Event] = []
        self.list_calls: list[int] = []
        self.fail_with: ApiError | None = None

    def add(self, session_id: str, seq: int, kind: str, **payload: Any) -> dict[str, Any]:
        event = sessions_pb2.Event(session_id=session_id, seq=seq, type=kind,
                                   payload_json=orjson.dumps(payload).decode())
        event.at.FromSeconds(1_700_000_000 + seq)
        self.log.append(event)
        return {"type": kind, "seq": seq, "session_id": session_id,
                "at": None, **payload}

    async def ListEvents(self, request: sessions_pb2.ListEventsRequest,
                         **_: Any) -> sessions_pb2.ListEventsResponse:
        self.list_calls.append(request.after_seq)
        if self.fail_with is not None:
            raise self.fail_with
        after = [e for e in self.log if e.seq > request.after_seq]
        page = after[:request.limit]
        return sessions_pb2.ListEventsResponse(events=page, has_more=len(after) > len(page))

    async def PostMessage(self, request: sessions_pb2.PostMessageRequest,
                          **_: Any) -> sessions_pb2.PostMessageResponse:
        seq = len(self.log) + 1
        self.add(request.session_id, seq, "chat.message", body=request.body)
        return sessions_pb2.PostMessageResponse(message=sessions_pb2.Message(
            id=f"m{seq}", seq=seq, body=request.body, client_id=request.client_id))


class FakeBackends:
    def __init__(self) -> None:
        self.sessions = FakeSessions()

    async def call(self, service: str, method: str, fn: Callable[..., Any], request: Any, *,
                   token: str | None = None, timeout: float | None = None) -> Any:
        return await fn(request)


class FakeDocs:
    """The document RPCs, recording what the doc socket asked for."""

    def __init__(self) -> None:
        self.applied: list[bytes] = []
        self.synced: list[bytes] = []
        self.fail_with: ApiError | None = None

    async def ApplyDocumentUpdate(self, request: sessions_pb2.ApplyDocumentUpdateRequest,
                                  **_: Any) -> sessions_pb2.ApplyDocumentUpdateResponse:
        if self.fail_with is not None:
            raise self.fail_with
        self.applied.append(request.update)
        return sessions_pb2.ApplyDocumentUpdateResponse(version=len(self.applied))

    async def SyncDocument(self, request: sessions_pb2.SyncDocumentRequest,
                           **_: Any) -> sessions_pb2.SyncDocumentResponse:
        self.synced.append(request.state_vector)
        return sessions_pb2.SyncDocumentResponse(update=b"\x00\x00", state_vector=b"\x00",
                                                 version=len(self.applied))


class FakeDocHub:
    def __init__(self) -> None:
        self.frames: list[Any] = []
        self.told: list[tuple[str, dict[str, Any]]] = []
        self.versions: list[int] = []
        # Awareness client id -> the connection holding it (the hub keeps these in Redis).
        self.claims: dict[int, str] = {}
        self.redis_down = False

    async def publish_doc(self, session_id: str, frame: Any) -> bool:
        self.frames.append(frame)
        return True

    async def tell_user(self, session_id: str, user_id: str, event: dict[str, Any]) -> None:
        self.told.append((user_id, event))

    def note_doc_version(self, session_id: str, version: int) -> None:
        self.versions.append(version)

    async def claim_awareness(self, session_id: str, client_id: int, owner: str) -> bool:
        if self.redis_down:
            raise ConnectionError("redis is down")
        return self.claims.setdefault(client_id, owner) == owner

    async def release_awareness(self, session_id: str, client_ids: list[int], owner: str) -> None:
        for client_id in client_ids:
            if self.claims.get(client_id) == owner:
                del self.claims[client_id]


class DocBackends:
    def __init__(self) -> None:
        self.sessions = FakeDocs()

    async def call(self, service: str, method: str, fn: Callable[..., Any], request: Any, *,
                   token: str | None = None, timeout: float | None = None) -> Any:
        return await fn(request)


class RecordingRedis:
    """Just `publish`, recorded (the hub's fan-out needs no server to be tested)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, channel: str, data: bytes) -> int:
        self.published.append((channel, data))
        return 1
