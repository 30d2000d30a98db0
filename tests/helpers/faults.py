"""Real network faults: a TCP relay in front of a real server (Redis, PostgreSQL...) that a test
turns into a dead or a stuck server, at a moment it chooses or right after a given request has
been answered. Nothing of ours is patched: the process under test simply loses its server, as
when the link or the server dies.

The relay runs its own event loop on a thread, so it serves processes, in-process services and
the test's own clients alike, from sync and async tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator
from enum import Enum
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


class Mode(Enum):
    FORWARD = "forward"  # a working server
    HANG = "hang"  # accepts connections and reads, never answers (a stuck server)
    CLOSED = "closed"  # nothing listens: connections are refused (a dead server)


class TcpFault:
    """Listens on one loopback port and relays to `upstream_url`'s host and port (or not)."""

    def __init__(self, upstream_url: str, mode: Mode = Mode.FORWARD) -> None:
        self._upstream = urlsplit(upstream_url)
        if not self._upstream.hostname:
            raise ValueError(f"{upstream_url} names no TCP host")
        self._initial = mode
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._trigger: tuple[Callable[[bytes], bool], Mode] | None = None
        self._cutting: asyncio.Task[None] | None = None
        self.mode = mode
        self.port = 0
        # Connections accepted so far, and bytes received since the relay last began to hang
        # (proof that a call is in flight).
        self.accepted = 0
        self.hung_bytes = 0
        # Set when `cut_after_reply_to`'s request has been answered and the relay switched.
        self.was_cut = threading.Event()

    @property
    def url(self) -> str:
        """`upstream_url` with this relay's address instead (same scheme, credentials, path)."""
        credentials = self._upstream.netloc.rpartition("@")[0]
        address = f"127.0.0.1:{self.port}"
        return self._upstream._replace(netloc=f"{credentials}@{address}" if credentials
                                       else address).geturl()

    # --- control (from any thread) ------------------------------------------------------------

    def start(self) -> TcpFault:
        self._thread.start()
        self._run(self._listen(0))
        self._run(self._switch(self._initial))
        return self

    def stop(self) -> None:
        self._run(self._switch(Mode.CLOSED))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def set(self, mode: Mode) -> None:
        """Switch behaviour; open connections are cut, as a restart or an outage would."""
        self._trigger = None
        self._run(self._switch(mode))

    def cut_after_reply_to(self, matches: Callable[[bytes], bool], mode: Mode = Mode.CLOSED) -> None:
        """Once the server has answered a client chunk that `matches`, switch to `mode`."""
        self.was_cut.clear()
        self._trigger = (matches, mode)

    def __enter__(self) -> TcpFault:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # --- on the relay's loop ------------------------------------------------------------------

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _switch(self, mode: Mode) -> None:
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
            await self._listen(self.port)

    async def _cut(self, mode: Mode) -> None:
        await self._switch(mode)
        self.was_cut.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        try:
            if self.mode is Mode.HANG:
                while chunk := await reader.read(65536):
                    self.hung_bytes += len(chunk)
                return
            up_reader, up_writer = await asyncio.open_connection(
                self._upstream.hostname, self._upstream.port or _DEFAULT_PORTS.get(
                    self._upstream.scheme, 0))
            self._writers.add(up_writer)
            answered = asyncio.Event()
            await asyncio.gather(self._pipe(reader, up_writer, answered, upstream=True),
                                 self._pipe(up_reader, writer, answered, upstream=False))
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    answered: asyncio.Event, *, upstream: bool) -> None:
        try:
            while chunk := await reader.read(65536):
                trigger = self._trigger
                if upstream and trigger is not None and trigger[0](chunk):
                    answered.set()  # the next chunk back is its answer
                writer.write(chunk)
                await writer.drain()
                if not upstream and answered.is_set() and self._trigger is not None:
                    mode = self._trigger[1]
                    self._trigger = None
                    # A task of its own: the switch cuts this very connection.
                    self._cutting = self._loop.create_task(self._cut(mode))
                    return
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()


_DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "postgresql": 5432, "postgres": 5432}


@contextlib.contextmanager
def tcp_fault(upstream_url: str, mode: Mode = Mode.FORWARD) -> Iterator[TcpFault]:
    """A started `TcpFault` for the block."""
    with TcpFault(upstream_url, mode) as fault:
        yield fault
