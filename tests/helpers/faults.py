"""Real network faults for end-to-end tests: a TCP relay in front of a server that a test cuts
(every connection dropped, new ones closed at once) - at a moment it chooses or right after a
given request has been answered - and restores. Nothing of ours is patched: the process under
test simply loses its server, as when a link or the server dies."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator


class CuttableRelay:
    """Relays 127.0.0.1:<port> to `target_host:target_port` on a thread of its own."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._open = True
        self._trigger: Callable[[bytes], bool] | None = None
        # Set once a cut happened (by `cut` or by the armed trigger).
        self.was_cut = threading.Event()
        self.port = 0

    def start(self) -> int:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._relay, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def _call(self, coro: object) -> asyncio.Server:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    def cut_after_reply_to(self, matches: Callable[[bytes], bool]) -> None:
        """Cut everything right after the server has answered a client chunk that `matches`."""
        self.was_cut.clear()
        self._trigger = matches

    def cut(self) -> None:
        self._loop.call_soon_threadsafe(self._cut)

    def restore(self) -> None:
        """Accept and relay connections again (the client reconnects by itself)."""
        self._trigger = None
        self._open = True

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._cut)
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _cut(self) -> None:
        self._open = False
        self._trigger = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
        self.was_cut.set()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        answered_then_cut = asyncio.Event()

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, upstream: bool) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while chunk := await src.read(65536):
                    trigger = self._trigger
                    if upstream and trigger is not None and trigger(chunk):
                        answered_then_cut.set()
                    dst.write(chunk)
                    await dst.drain()
                    if not upstream and answered_then_cut.is_set():
                        self._cut()
                        return
            dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))
        self._writers.difference_update((writer, up_writer))


@contextlib.contextmanager
def cuttable_relay(target_host: str, target_port: int) -> Iterator[CuttableRelay]:
    relay = CuttableRelay(target_host, target_port)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()
