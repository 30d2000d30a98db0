"""A real Redis behind a TCP port the test controls: closed (refused), hung, or forwarding.

Failure injection without touching the code under test: the client is pointed at this
port and sees what it would see of a Redis that is down or stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from enum import Enum
from urllib.parse import urlsplit, urlunsplit


class Mode(Enum):
    FORWARD = "forward"  # a working Redis
    HANG = "hang"  # accepts connections and reads, never answers (a stuck server)
    CLOSED = "closed"  # nothing listens: connections are refused


class RedisFault:
    """Listens on one local port; `mode` decides what a client connecting there gets."""

    def __init__(self, redis_url: str) -> None:
        self._upstream = urlsplit(redis_url)
        self._server: asyncio.Server | None = None
        self._port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self.mode = Mode.CLOSED
        self.accepted = 0
        # Bytes clients sent since the server last started hanging: proof a call is in flight.
        self.hung_bytes = 0

    @property
    def url(self) -> str:
        host = f"127.0.0.1:{self._port}"
        return urlunsplit(self._upstream._replace(netloc=host))

    async def start(self, mode: Mode) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._port = self._server.sockets[0].getsockname()[1]
        await self.set(mode)

    async def set(self, mode: Mode) -> None:
        """Switch behaviour; open connections are cut, as a restart or outage would."""
        self.mode = mode
        self.hung_bytes = 0
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if mode is Mode.CLOSED:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None
        elif self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self._port,
                                                      reuse_address=True)

    async def close(self) -> None:
        await self.set(Mode.CLOSED)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        try:
            if self.mode is Mode.HANG:
                while chunk := await reader.read(65536):
                    self.hung_bytes += len(chunk)
                return
            up_reader, up_writer = await asyncio.open_connection(
                self._upstream.hostname, self._upstream.port or 6379)
            self._writers.add(up_writer)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


@contextlib.asynccontextmanager
async def redis_fault(redis_url: str, mode: Mode) -> AsyncIterator[RedisFault]:
    """A RedisFault in front of `redis_url`, starting in `mode`, closed afterwards."""
    fault = RedisFault(redis_url)
    await fault.start(mode)
    try:
        yield fault
    finally:
        await fault.close()


async def stopped_when_cancelled(task: asyncio.Task[None], timeout: float = 5.0) -> None:
    """Cancel a background loop and require it to end, cancelled, within `timeout`."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=timeout)
    assert done, f"the loop still ran {timeout}s after it was cancelled"
    assert task.cancelled(), "the loop ended otherwise than by the cancellation"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.transport.abort()
