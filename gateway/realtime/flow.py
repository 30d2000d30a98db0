"""Flow control of one realtime connection, free of I/O: rate limit, event order, token expiry."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class TokenBucket:
    """`rate` messages per second on average, bursts up to `burst`."""

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def allow(self) -> bool:
        if self.rate <= 0:
            return True
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def retry_after(self) -> float:
        """Seconds until the next message would be allowed."""
        return max(0.0, (1.0 - self._tokens) / self.rate) if self.rate > 0 else 0.0


class SeqGate(Generic[T]):
    """Delivers one session's sequenced events to one client in order, none twice.

    Live events are offered as they arrive from pub/sub; while a replay from the
    event log runs (or before the client has said where it stands) the gate is
    held and live events wait in a buffer. An event beyond the next expected
    number means some were missed: the caller refills from the log.
    """

    def __init__(self, max_buffer: int = 10_000) -> None:
        self.delivered = 0
        self._holds = 1
        self._buffer: dict[int, T] = {}
        self._max_buffer = max_buffer

    @property
    def held(self) -> bool:
        return self._holds > 0

    @property
    def waiting(self) -> bool:
        """Events wait behind a hole in the numbers."""
        return bool(self._buffer) and not self._holds

    def hold(self) -> None:
        self._holds += 1

    def release(self) -> tuple[list[T], bool]:
        """Lift one hold; answer what may now be sent and whether a gap remains."""
        self._holds = max(0, self._holds - 1)
        if self._holds:
            return [], False
        return self._drain()

    def offer(self, seq: int, item: T) -> tuple[list[T], bool]:
        """A live event: what may be sent now (in order), and whether a gap shows."""
        if seq == self.delivered + 1 and not self._holds and not self._buffer:
            # The steady state of fan-out: the next number, nothing waiting.
            self.delivered = seq
            return [item], False
        if seq <= self.delivered or seq in self._buffer:
            return [], False
        if len(self._buffer) >= self._max_buffer:
            # Everything buffered is in the event log: forget it and let a refill fetch it.
            self._buffer.clear()
            return [], True
        self._buffer[seq] = item
        if self._holds:
            return [], False
        return self._drain()

    def advance(self, seq: int) -> bool:
        """A replayed event was sent: True if it was new to this client."""
        if seq <= self.delivered:
            return False
        self.delivered = seq
        return True

    def skip_hole(self) -> tuple[list[T], bool]:
        """Give up on the missing numbers before the first buffered event and go on from it."""
        if self._buffer:
            self.delivered = max(self.delivered, min(self._buffer) - 1)
        return self._drain()

    def _drain(self) -> tuple[list[T], bool]:
        ready: list[T] = []
        for seq in sorted(self._buffer):
            if seq <= self.delivered:
                del self._buffer[seq]
            elif seq == self.delivered + 1:
                ready.append(self._buffer.pop(seq))
                self.delivered = seq
            else:
                break
        return ready, bool(self._buffer)


@dataclass(frozen=True, slots=True)
class ExpiryStep:
    """What the expiry watchdog does next: wait, warn the client, or close with 4401."""

    action: str  # "wait" | "warn" | "close"
    seconds: float = 0.0


def expiry_step(now: float, expires_at: float, grace: float, warned: bool) -> ExpiryStep:
    """The token's lifetime plus `grace` seconds to send a fresh one over the socket."""
    if now < expires_at:
        return ExpiryStep("wait", expires_at - now)
    deadline = expires_at + grace
    if now >= deadline:
        return ExpiryStep("close")
    if not warned:
        return ExpiryStep("warn", deadline - now)
    return ExpiryStep("wait", deadline - now)
