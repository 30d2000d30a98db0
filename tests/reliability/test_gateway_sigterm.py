"""A gateway SIGTERMed with 50 clients on the events socket: every client is closed with 1012,
resumes on another replica with its last seq, and sees every acknowledged message exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from dataclasses import dataclass, field

import pytest

from bench.realtime_scenarios import EventsClient
from scripts.platform import wait_ready
from tests.helpers.realtime import Crew
from tests.reliability.support import FaultyWorld
from tests.reliability.test_redis_outage import history

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENTS = 50
SESSIONS = 2
DOOMED = "gateway-doomed"


@dataclass
class Listener:
    """One client: its events before the restart, then after resuming elsewhere."""

    session_id: str
    token: str
    first: EventsClient
    second: EventsClient | None = None

    def chat_seqs(self) -> list[int]:
        events = [*self.first.received, *(self.second.received if self.second else [])]
        return [e["seq"] for e in events if e.get("type") == "chat.message"]

    async def resumed_live(self) -> None:
        """Wait for a chat message newer than anything seen before the restart."""
        assert self.second is not None
        seen = self.last_seq()
        await self.second.wait_type("chat.message", timeout=15, where=lambda e: e["seq"] > seen)

    async def has_all(self, seqs: set[int]) -> None:
        """Wait until every seq in `seqs` has arrived before or after the restart."""
        assert self.second is not None
        await self.second.wait_for(lambda _events: seqs <= set(self.chat_seqs()), timeout=20)

    def last_seq(self) -> int:
        seqs: list[int] = [e["seq"] for e in self.first.received if isinstance(e.get("seq"), int)]
        return max([int(self.first.welcome["last_seq"]), *seqs])


@dataclass
class Writer:
    """Chats steadily on the surviving gateway and remembers what was acknowledged."""

    client: EventsClient
    acked: dict[str, int] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            ack = await self.client.chat(f"steady {n}", client_id=f"writer-{uuid.uuid4().hex[:8]}")
            self.acked[ack["client_id"]] = ack["seq"]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)


async def test_sigterm_closes_50_clients_with_1012_and_they_resume_elsewhere_losing_nothing(
        world: FaultyWorld) -> None:
    platform = world.platform
    survivor = world.url
    port = await asyncio.to_thread(platform.add_gateway, DOOMED)
    doomed = f"http://127.0.0.1:{port}"
    await asyncio.to_thread(wait_ready, doomed + "/ready", 60, what=DOOMED)
    crew = await asyncio.to_thread(Crew.sign_in, survivor)
    sessions = [await asyncio.to_thread(crew.session, title=f"drain {i}") for i in range(SESSIONS)]
    tokens = [crew.owner.access_token, crew.editor.access_token, crew.viewer.access_token]

    gate = asyncio.Semaphore(10)

    async def listen(i: int) -> Listener:
        session_id, token = sessions[i % SESSIONS], tokens[i % len(tokens)]
        async with gate:
            return Listener(session_id, token, await EventsClient.connect(doomed, session_id, token))

    listeners = await asyncio.gather(*(listen(i) for i in range(CLIENTS)))
    writers = [Writer(await EventsClient.connect(survivor, s, crew.owner.access_token))
               for s in sessions]
    stop = asyncio.Event()
    running = [asyncio.create_task(w.run(stop)) for w in writers]
    # Messages sent on the doomed gateway while it shuts down: acknowledged or not, a client
    # resends unacknowledged ones with the same client_id after reconnecting.
    last_words: dict[str, tuple[str, str]] = {}  # client_id -> (session_id, token)
    try:
        for listener in listeners:
            await listener.first.wait_type("chat.message", timeout=15)

        for i, listener in enumerate(listeners[:10]):
            client_id = f"last-words-{i}"
            last_words[client_id] = (listener.session_id, listener.token)
            await listener.first.send({"type": "chat.send", "body": f"last words {i}",
                                       "client_id": client_id})
        code = await asyncio.to_thread(platform.stop, DOOMED, signal.SIGTERM)
        assert code == 0, platform.tail_logs()

        closes = await asyncio.gather(*(lis.first.wait_closed(timeout=15) for lis in listeners))
        assert closes == [1012] * CLIENTS

        async def resume(listener: Listener) -> None:
            async with gate:
                listener.second = await EventsClient.connect(
                    survivor, listener.session_id, listener.token, last_seq=listener.last_seq())

        await asyncio.gather(*(resume(lis) for lis in listeners))
        # Resend what was not acknowledged before the close (a repeat returns the stored one).
        acked_words: dict[str, int] = {}
        for client_id, (session_id, token) in last_words.items():
            sender = next(lis for lis in listeners if lis.session_id == session_id and lis.token == token)
            before = [e for e in sender.first.of_type("chat.ack") if e["client_id"] == client_id]
            assert sender.second is not None
            ack = await sender.second.chat(f"last words {client_id.rsplit('-', 1)[1]}",
                                           client_id=client_id)
            if before:
                assert ack["seq"] == before[0]["seq"], "a resend was stored twice"
            acked_words[client_id] = ack["seq"]
        # Let the steady writers run on after the reconnect too.
        await asyncio.gather(*(lis.resumed_live() for lis in listeners))
    finally:
        stop.set()
        await asyncio.gather(*running)
        for w in writers:
            await w.client.close()

    try:
        acked_by_session: dict[str, set[int]] = {s: set() for s in sessions}
        for session_id, writer in zip(sessions, writers, strict=True):
            acked_by_session[session_id] |= set(writer.acked.values())
        for client_id, seq in acked_words.items():
            acked_by_session[last_words[client_id][0]].add(seq)

        for listener in listeners:
            assert listener.second is not None
            wanted = {seq for seq in acked_by_session[listener.session_id]
                      if seq > listener.first.welcome["last_seq"]}
            await listener.has_all(wanted)
            seqs = listener.chat_seqs()
            # Exactly once and in order across the restart: no gap, no duplicate.
            assert seqs == sorted(set(seqs)), "duplicate or reordered chat messages"
            assert wanted <= set(seqs)

        for session_id in sessions:
            stored = await history(survivor, session_id, crew.owner.headers)
            ids = [m["client_id"] for m in stored]
            assert len(ids) == len(set(ids)), "a message was stored twice"
            assert {m["seq"] for m in stored} >= acked_by_session[session_id]
    finally:
        await asyncio.gather(*(lis.second.close() for lis in listeners if lis.second is not None))
