"""The interfaces the sessions use cases talk through: storage, the membership cache, publishing, peers.

The real implementations are `repository.SessionsRepository` / `repository.Tx` (PostgreSQL),
`cache.MembershipChecker` (Redis cache-aside), `events.Publisher` (Redis pub/sub and
stream) and `clients.UserDirectory` (the auth service); tests/sessions/fakes.py holds
in-memory ones for unit tests of the use cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from services.sessions.domain import (
    DocumentHead,
    Event,
    FoundUser,
    Invitation,
    InvitationState,
    Member,
    Membership,
    Message,
    Notification,
    OutboxEvent,
    Role,
    Session,
    Status,
)

# The keyset position after an item of a newest-first list: (created_at, id), or for
# invitations (rank, created_at, id).
After = tuple[Any, ...]


class SessionsTx(Protocol):
    """Statements of one transaction; row locks taken here hold until it commits."""

    async def lock_session(self, session_id: str,
                           user_id: str) -> tuple[Session, Role | None] | None:
        """The session, locked, and the user's role in it (None: not a member)."""

    async def update_session(self, session_id: str, changes: dict[str, str], *,
                             end: bool = False) -> Session: ...

    async def set_owner(self, session_id: str, old_owner: str, new_owner: str) -> Session: ...

    async def delete_session(self, session_id: str) -> list[str]:
        """Delete the session and everything under it; returns the former members' ids."""

    async def member(self, session_id: str, user_id: str) -> Member | None: ...

    async def add_member(self, session_id: str, user_id: str, role: Role,
                         session_created_at: datetime) -> Member: ...

    async def set_role(self, session_id: str, user_id: str, role: Role) -> Member: ...

    async def remove_member(self, session_id: str, user_id: str) -> None: ...

    async def append_events(self, session_id: str,
                            events: Sequence[tuple[str, dict[str, Any]]]) -> list[Event]:
        """The events under the session's next sequence numbers; [] when there is no session."""

    async def add_outbox(self, event_type: str, data: dict[str, Any]) -> OutboxEvent: ...

    async def pending_invitation_exists(self, session_id: str, invitee_id: str | None,
                                        login: str) -> bool: ...

    async def is_member(self, session_id: str, user_id: str) -> bool: ...

    async def create_invitation(self, session_id: str, role: Role, invitee_id: str | None,
                                invitee_login: str | None, digest: bytes | None, max_uses: int,
                                invited_by: str, expires_in: int) -> Invitation: ...

    async def lock_invitation(self, invitation_id: str) -> tuple[Invitation, datetime] | None:
        """The invitation, locked, and the database's clock (expiry is judged by it)."""

    async def use_invitation(self, invitation_id: str, user_id: str, *,
                             addressed: bool) -> None: ...

    async def used_invitation(self, invitation_id: str, user_id: str) -> bool: ...

    async def set_invitation_status(self, invitation_id: str,
                                    status: InvitationState) -> None: ...

    async def record_removal(self, session_id: str, user_id: str, removed_by: str) -> None: ...

    async def removed_at(self, session_id: str, user_id: str) -> datetime | None: ...


class SessionStore(Protocol):
    """Reads outside transactions; `transaction()` for multi-statement writes."""

    def transaction(self) -> AbstractAsyncContextManager[SessionsTx]: ...

    async def create_session(self, title: str, description: str, language: str,
                             owner_id: str) -> Session: ...

    async def session_and_role(self, session_id: str,
                               user_id: str | None) -> tuple[Session | None, Role | None]: ...

    async def last_seq(self, session_id: str) -> int: ...

    async def list_sessions(self, user_id: str, limit: int,
                            after: After | None) -> list[tuple[Session, Role]]: ...

    async def members(self, session_id: str) -> list[Member]: ...

    async def post_message(self, session_id: str, author_id: str, message_id: str, body: str,
                           client_id: str | None, created_at: datetime,
                           payload: dict[str, Any]) -> int | None:
        """The new message's seq; None when the author may not post (nothing written).

        Raises DuplicateClientId when the author's client_id is taken meanwhile.
        """

    async def message_by_client_id(self, session_id: str, author_id: str,
                                   client_id: str) -> Message | None: ...

    async def messages(self, session_id: str, after_seq: int, limit: int) -> list[Message]: ...

    async def events(self, session_id: str, after_seq: int, limit: int) -> list[Event]: ...

    async def invitation(self, invitation_id: str) -> Invitation | None: ...

    async def invitation_by_token(self, digest: bytes) -> Invitation | None: ...

    async def used_invitation(self, invitation_id: str, user_id: str) -> bool: ...

    async def invitations_for(self, user_id: str, login: str, limit: int,
                              after: After | None) -> list[tuple[int, Invitation]]:
        """(rank, invitation) addressed to the user: rank 0 (usable) first, then newest."""

    async def notifications(self, user_id: str, login: str, unread_only: bool, limit: int,
                            after: After | None) -> list[Notification]: ...

    async def mark_notification_read(self, notification_id: str, user_id: str,
                                     login: str) -> bool: ...


class Memberships(Protocol):
    """Cached answers to "what is this user's role here" and "what state is this session in"."""

    async def session_and_role(self, session_id: str,
                               user_id: str | None) -> tuple[Session | None, Role | None]: ...

    async def status(self, session_id: str) -> Status | None: ...

    async def membership(self, session_id: str, user_id: str) -> Membership | None: ...

    async def require(self, session_id: str, user_id: str,
                      minimum: Role = Role.VIEWER) -> tuple[Session, Role]:
        """NOT_FOUND for non-members, PERMISSION_DENIED below `minimum`."""

    async def members(self, session_id: str) -> list[Member]: ...

    async def invalidate(self, session_id: str, user_ids: Sequence[str] = (), *,
                         session: bool = False, members: bool = False) -> None:
        """Drop cached answers a committed write changed."""


class EventPublisher(Protocol):
    """Publishing after commit; a failed publish never fails the write it describes."""

    async def publish(self, events: Sequence[Event]) -> None:
        """Realtime envelopes on the sessions' channels (clients refill gaps from the log)."""

    async def publish_ephemeral(self, session_id: str, event_type: str,
                                payload: dict[str, Any]) -> Event:
        """A live-only event (seq 0, not in the log)."""

    async def emit(self, events: Sequence[OutboxEvent]) -> None:
        """Committed domain events onto the stream, then out of the outbox."""


class DocumentPublisher(Protocol):
    async def publish_update(self, session_id: str, version: int, update: bytes) -> None:
        """A stored document update to the gateways; failures are logged, never raised."""


class UserDirectory(Protocol):
    async def by_login(self, login: str, on_behalf_of: str) -> FoundUser | None:
        """The user with this login; None when there is none yet or the directory cannot say."""


class DocumentTx(Protocol):
    """Statements on one document inside one transaction."""

    async def head(self, session_id: str, *, lock: bool = False) -> DocumentHead | None:
        """The head row (locked with `lock`: writers of the document then wait for us)."""

    async def bump(self, session_id: str) -> DocumentHead:
        """Create or lock the head row and count one more version (the writers' row lock)."""

    async def snapshot(self, session_id: str) -> bytes:
        """The compacted state (an update from the empty document); b"" without a head row."""

    async def updates_after(self, session_id: str, after_id: int) -> list[tuple[int, bytes]]:
        """(id, update) of the stored updates after `after_id`, in id order."""

    async def append(self, session_id: str, update: bytes) -> int:
        """Store an update; its id. NotFound when the session is gone."""

    async def compact(self, session_id: str, state: bytes, upto: int) -> None:
        """Make `state` the snapshot covering updates up to `upto`, and drop those."""


class DocumentStore(Protocol):
    def reading(self) -> AbstractAsyncContextManager[DocumentTx]:
        """A read-only transaction that sees one snapshot of the database throughout."""

    def writing(self) -> AbstractAsyncContextManager[DocumentTx]:
        """A read-write transaction (rolled back if the block raises)."""
