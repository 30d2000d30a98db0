"""The sessions service's domain-events stream as a contract: its key, its events, its records.

The sessions service relays its outbox to the Redis Stream
`<REDIS_PREFIX>sessions:domain-events`, entries `{event_id, type, data}` (data is JSON);
review and ai read it in consumer groups of their own (services/common/sessionevents.py).
Free of Redis and gRPC, so use cases and domain code can name the events.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from services.common.keyspace import KeySpace

log = logging.getLogger(__name__)

SESSION_DELETED = "session.deleted"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One entry of the stream: the outbox's event id (the entry's id when it has none)."""

    id: str
    type: str
    data: dict[str, Any]


def domain_events_stream(redis_prefix: str) -> str:
    """The key of the sessions service's domain-events stream under a global prefix."""
    return KeySpace(redis_prefix, "sessions").key("domain-events")


def deleted_session(event: DomainEvent) -> str | None:
    """The id of the session a `session.deleted` event names; None for any other event."""
    if event.type != SESSION_DELETED:
        return None
    try:
        return str(uuid.UUID(str(event.data["session_id"])))
    except (KeyError, ValueError):
        # Handing it over again would not make it valid: say so and let it go.
        log.error("dropping a session.deleted event without a session id")
        return None
