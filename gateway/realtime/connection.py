"""One realtime WebSocket connection: a bounded send queue drained by its own writer task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from typing import Protocol

from gateway.realtime.wsframes import FrameCache
from services.common import metrics

log = logging.getLogger(__name__)

# Close codes of the realtime sockets (docs/api.md, "Realtime").
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_RESTART = 1012
CLOSE_TRY_AGAIN = 1013
CLOSE_TOKEN_EXPIRED = 4401
CLOSE_REVOKED = 4403
CLOSE_ENDED = 4410
CLOSE_ABNORMAL = 1006


# A frame is written straight to the socket's transport only while the kernel keeps up:
# with more than this many bytes already waiting, frames queue for the writer task,
# which waits for the transport to drain (and the queue limit applies).
DIRECT_WRITE_LIMIT = 64 * 1024

_FRAMES = FrameCache()


class Transport(Protocol):
    """The part of an asyncio transport the direct write path uses."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...


class Socket(Protocol):
    """The part of aiohttp's WebSocketResponse a connection writes to (tests pass fakes)."""

    async def send_str(self, data: str, compress: int | None = None) -> None: ...

    async def send_bytes(self, data: bytes, compress: int | None = None) -> None: ...

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool: ...

    @property
    def close_code(self) -> int | None: ...

    @property
    def closed(self) -> bool: ...


class Connection:
    """Frames are written at once while the client keeps up, else queued for one writer task.

    Fan-out is the hot path (one chat message is written to every socket of the
    room), so a frame goes straight to the transport when nothing is queued or
    being written and the transport's buffer is small: no task switch, and the
    frame's bytes are built once for the whole room. Otherwise it joins a
    bounded queue drained by the writer task, which respects the transport's
    flow control. A client that cannot keep up is closed with 1013 rather than
    letting its queue grow without limit; every other close flushes what is
    queued first.
    """

    socket = "events"

    def __init__(self, ws: Socket, *, session_id: str, user_id: str, queue_limit: int,
                 close_timeout: float = 2.0) -> None:
        self.ws = ws
        self.id = uuid.uuid4()
        self.id_bytes = self.id.bytes
        self.session_id = session_id
        self.user_id = user_id
        self.queue_limit = queue_limit
        self.close_timeout = close_timeout
        self.close_code: int | None = None
        self._reason = ""
        self.closing = False
        self._queue: deque[str | bytes] = deque()
        self._wakeup = asyncio.Event()
        # Set while the queue is below half full: bulk senders (replays) wait on it.
        self._room = asyncio.Event()
        self._room.set()
        self._writer: asyncio.Task[None] | None = None
        self._transport: Transport | None = None
        self._writing = False
        self._finisher: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()

    # --- sending ----------------------------------------------------------------------------

    def send(self, frame: str | bytes) -> bool:
        """Send a frame (directly, or through the queue); False when closing (it is dropped)."""
        if self.closing:
            return False
        transport = self._transport
        if (transport is not None and not self._queue and not self._writing
                and not self.ws.closed and not transport.is_closing()
                and transport.get_write_buffer_size() <= DIRECT_WRITE_LIMIT):
            transport.write(_FRAMES.wire(frame))
            return True
        if len(self._queue) >= self.queue_limit:
            log.info("closing slow realtime client", extra={"socket": self.socket,
                                                              "queued": len(self._queue)})
            self.close(CLOSE_TRY_AGAIN, "client too slow: send queue full", flush=False)
            return False
        self._queue.append(frame)
        self._wakeup.set()
        if len(self._queue) >= self.queue_limit // 2:
            self._room.clear()
        return True

    async def send_paced(self, frame: str | bytes) -> bool:
        """Queue a frame of a bulk transfer, waiting while the client works through the queue."""
        if not self._room.is_set():
            await self._room.wait()
        return self.send(frame)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self, transport: Transport | None = None) -> None:
        """Start the writer (after the WebSocket handshake).

        With the connection's `transport` (the request's), frames may skip the
        queue and be written directly (see the class docstring).
        """
        self._transport = transport
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.id}")

    async def _write_loop(self) -> None:
        try:
            while True:
                while self._queue:
                    frame = self._queue.popleft()
                    if len(self._queue) < self.queue_limit // 2:
                        self._room.set()
                    self._writing = True
                    try:
                        if isinstance(frame, str):
                            await self.ws.send_str(frame)
                        else:
                            await self.ws.send_bytes(frame)
                    finally:
                        self._writing = False
                if self.closing:
                    break
                self._wakeup.clear()
                await self._wakeup.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a peer that vanished mid-write ends the writer
            log.debug("realtime write failed: %s", type(exc).__name__)
            self.closing = True
            self._room.set()
            self._queue.clear()
            self.finished.set()
            return
        await self._close_socket()

    # --- closing ----------------------------------------------------------------------------

    def close(self, code: int, reason: str = "", *, flush: bool = True) -> None:
        """Close with `code`; with `flush`, frames already queued are written first."""
        if self.closing:
            return
        self.closing = True
        self._room.set()
        self.close_code = code
        self._reason = reason
        if flush and self._writer is not None and not self._writer.done():
            self._wakeup.set()
            return
        self._queue.clear()
        if self._writer is not None and not self._writer.done():
            # The writer may be stuck waiting for a client that does not read.
            self._writer.cancel()
        self._finisher = asyncio.create_task(self._close_socket(), name=f"ws-close-{self.id}")

    async def _close_socket(self) -> None:
        code = self.close_code or CLOSE_NORMAL
        try:
            async with asyncio.timeout(self.close_timeout):
                await self.ws.close(code=code, message=self._reason.encode()[:120])
        except TimeoutError:
            # aiohttp closes the transport when its close is interrupted.
            log.debug("realtime close timed out")
        except Exception as exc:  # the peer may already be gone
            log.debug("realtime close failed: %s", type(exc).__name__)
        finally:
            self.finished.set()

    async def stop(self) -> None:
        """The read side has ended: let a close we started finish, then release the tasks."""
        ours = self.close_code is not None
        self.closing = True
        self._room.set()
        for task in (self._writer, self._finisher):
            if task is None or task.done():
                continue
            if ours:
                # Our close handshake (after flushing) is in progress on this task.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), self.close_timeout + 1.0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.finished.set()

    def final_code(self) -> int:
        """The close code for metrics: ours if we closed, else the client's."""
        if self.close_code is not None:
            return self.close_code
        return self.ws.close_code or CLOSE_ABNORMAL

    def record_open(self) -> None:
        metrics.WS_CONNECTIONS.labels(self.socket).inc()

    def record_closed(self) -> None:
        metrics.WS_CONNECTIONS.labels(self.socket).dec()
        metrics.WS_CLOSED.labels(self.socket, str(self.final_code())).inc()
