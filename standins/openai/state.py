"""Per-app mutable state of the stand-in (fault board, request log) and its typed AppKey."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aiohttp import web

from standins.openai.config import OpenAIStandinConfig
from standins.openai.faults import FaultBoard

# pending: still being answered; completed: full answer sent; rejected: an error status
# (including injected rate_limit/server_error); client_disconnected: the client went away
# before the end; dropped: the stand-in cut the connection (the disconnect fault).
Outcome = Literal["pending", "completed", "rejected", "client_disconnected", "dropped"]


@dataclass(slots=True)
class RequestRecord:
    """One chat-completions request as seen by the stand-in (no message text, no key)."""

    seq: int
    received_at: float
    model: str | None = None
    stream: bool | None = None
    message_count: int = 0
    message_chars: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    max_tokens: int | None = None
    faults: list[str] = field(default_factory=list)
    status: int | None = None
    outcome: Outcome = "pending"
    error_code: str | None = None
    finish_reason: str | None = None
    chunks_sent: int = 0

    def as_json(self) -> dict[str, Any]:
        """JSON view for ``GET /_standin/requests``."""
        return asdict(self)


@dataclass(slots=True)
class RequestLog:
    """Bounded, ordered log; records are appended on arrival so in-flight ones are visible."""

    size: int
    _records: deque[RequestRecord] = field(init=False)
    _next_seq: int = 1

    def __post_init__(self) -> None:
        self._records = deque(maxlen=self.size)

    def start(self) -> RequestRecord:
        """A new pending record; seq keeps counting across clears so it stays unique."""
        record = RequestRecord(seq=self._next_seq, received_at=time.time())
        self._next_seq += 1
        self._records.append(record)
        return record

    def clear(self) -> None:
        """Forget every record."""
        self._records.clear()

    def as_json(self) -> list[dict[str, Any]]:
        """Oldest first."""
        return [record.as_json() for record in self._records]


@dataclass(slots=True)
class StandinState:
    """Everything a running stand-in app remembers."""

    config: OpenAIStandinConfig
    board: FaultBoard
    requests: RequestLog


STATE = web.AppKey("openai_standin_state", StandinState)
