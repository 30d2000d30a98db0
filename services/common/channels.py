"""The realtime contract on Redis: the per-session channel names and the event envelope.

Every side that speaks it imports it from here: the sessions service and the ai
service publish, every gateway replica subscribes and publishes its own events.

Channels, under the global `REDIS_PREFIX`:

- `<prefix>sessions:rt:session:<session_id>` (JSON text, `events`): envelopes
  `{"type", "seq"?, "session_id", "at", ...payload}`. Sequenced ones (`seq`, from the
  session's log) come from the sessions service; `ai.finding` from the ai service; the
  gateways' own are not sequenced (`presence.*`, and `error` events meant for one user,
  which carry `TO_USER` and never reach a client).
- `<prefix>sessions:rt:doc:<session_id>` (binary, `doc`): document frames, see
  services/common/docframes.py.

The namespace word is "sessions" because the sessions service opened these channels
first; it is part of the wire (a rolling deploy runs old and new code side by side), so
it stays, under a name that says whose it is: the realtime contract's, not one service's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REALTIME_NAMESPACE = "sessions"
# A field of events published for one user only: gateways route by it and drop it.
TO_USER = "_to_user"


class RealtimeChannels:
    """The channel names of every session under one global Redis prefix."""

    __slots__ = ("_doc", "_events")

    def __init__(self, redis_prefix: str) -> None:
        base = f"{redis_prefix}{REALTIME_NAMESPACE}:rt:"
        self._events = base + "session:"
        self._doc = base + "doc:"

    def events(self, session_id: str) -> str:
        """The JSON channel of the session's events."""
        return self._events + session_id

    def doc(self, session_id: str) -> str:
        """The binary channel of the session's document frames."""
        return self._doc + session_id


def envelope(kind: str, session_id: str, at: str | None, payload: Mapping[str, Any],
             seq: int = 0) -> dict[str, Any]:
    """The JSON object a realtime client receives, live or replayed: `seq` only when sequenced.

    `at` is RFC 3339 (services/common/timeconv.py); the payload's fields follow the head.
    """
    if seq:
        return {"type": kind, "seq": seq, "session_id": session_id, "at": at, **payload}
    return {"type": kind, "session_id": session_id, "at": at, **payload}
