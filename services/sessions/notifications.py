"""Notifications from domain events: the `notifications` consumer group, idempotent handling.

The group reads the sessions domain-events stream through the kit's consumer
(services/common/sessionevents.py): an entry is acknowledged only after its
notifications are committed, entries a stopped consumer left pending are claimed
once they have been idle for a while, and the (event id, recipient) unique key
makes a redelivered event create nothing new.
"""

from __future__ import annotations

import logging
from typing import Any

from services.common.domainevents import DomainEvent, domain_events_stream
from services.common.grpcserver import Resources
from services.common.sessionevents import ConsumerSettings, consume, migrated
from services.sessions.repository import SessionsRepository

log = logging.getLogger(__name__)

GROUP = "notifications"

__all__ = ["GROUP", "Notifier", "notifications_for", "run_notifications"]

# (recipient_id, recipient_login, kind, payload)
Recipient = tuple[str | None, str | None, str, dict[str, Any]]


def notifications_for(event_type: str, data: dict[str, Any]) -> list[Recipient]:
    """Who hears about a domain event, and what they are told. Pure: easy to test."""
    session = {"session_id": data.get("session_id"), "session_title": data.get("session_title")}
    actor = data.get("actor_id")
    if event_type == "invitation.created":
        payload = {**session, "invitation_id": data["invitation_id"], "role": data["role"],
                   "invited_by": data["invited_by"]}
        return [(data.get("invitee_id"), data.get("invitee_login"), "invitation.received", payload)]
    if event_type in ("invitation.accepted", "invitation.declined"):
        if data.get("user_id") == data["invited_by"]:
            return []
        payload = {**session, "invitation_id": data["invitation_id"], "role": data["role"],
                   "user_id": data.get("user_id")}
        return [(data["invited_by"], None, event_type, payload)]
    if event_type == "member.role_changed" and data["user_id"] != actor:
        payload = {**session, "role": data["role"], "changed_by": actor}
        return [(data["user_id"], None, "member.role_changed", payload)]
    if event_type == "member.removed" and data["user_id"] != actor:
        return [(data["user_id"], None, "member.removed", {**session, "removed_by": actor})]
    return []


class Notifier:
    """The handler: the notifications of one domain event, committed once per recipient."""

    def __init__(self, repo: SessionsRepository) -> None:
        self._repo = repo
        self.created = 0

    async def handle(self, event: DomainEvent) -> None:
        try:
            recipients = [r for r in notifications_for(event.type, event.data) if r[0] or r[1]]
        except (KeyError, TypeError, ValueError):
            # Handing it over again would not give it the fields it lacks: log and move on.
            log.error("dropping a domain event without the fields its notifications need",
                      extra={"event_id": event.id, "event_type": event.type})
            return
        if recipients:
            self.created += await self._repo.add_notifications(
                event.id, event.data.get("session_id"), recipients)


async def run_notifications(res: Resources, settings: ConsumerSettings) -> None:
    """Background job: consume domain events for as long as the service runs."""
    notifier = Notifier(SessionsRepository(res.pool))
    await consume(res.config.redis_url, domain_events_stream(res.config.redis_prefix), GROUP,
                  notifier.handle, settings, lambda: migrated(res))
