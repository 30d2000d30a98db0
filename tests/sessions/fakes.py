"""In-memory implementations of the sessions ports (services/sessions/ports.py), for unit tests
of the use cases: no database, no Redis, no auth service.

`Store` is the whole database; a transaction works on it under one lock and puts the old
state back when its block raises, as PostgreSQL's rollback would. Faults are injected by
arming `Store.fail_on` with the name of a statement (or "commit"): it raises instead.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.errors import NotFound
from services.sessions.domain import (
    DocumentHead,
    DuplicateClientId,
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
    member_of,
)
from services.sessions.ports import After


class InjectedFault(Exception):
    """What an armed statement raises: a database failure in the middle of a write."""


@dataclass
class Tables:
    sessions: dict[str, Session] = field(default_factory=dict)
    last_seq: dict[str, int] = field(default_factory=dict)
    members: dict[tuple[str, str], Member] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    invitations: dict[str, Invitation] = field(default_factory=dict)
    token_hashes: dict[bytes, str] = field(default_factory=dict)
    uses: set[tuple[str, str]] = field(default_factory=set)
    removals: dict[tuple[str, str], datetime] = field(default_factory=dict)
    notifications: list[tuple[str | None, Notification]] = field(default_factory=list)
    outbox: list[OutboxEvent] = field(default_factory=list)
    doc_heads: dict[str, tuple[DocumentHead, bytes]] = field(default_factory=dict)
    doc_updates: list[tuple[str, int, bytes]] = field(default_factory=list)
    next_id: int = 0


class Store:
    """The in-memory database: tables, a clock, one writer at a time, armed faults."""

    def __init__(self) -> None:
        self.t = Tables()
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.fail_on: set[str] = set()
        self._lock = asyncio.Lock()

    def tick(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def new_id(self) -> int:
        self.t.next_id += 1
        return self.t.next_id

    def check(self, statement: str) -> None:
        if statement in self.fail_on:
            self.fail_on.discard(statement)
            raise InjectedFault(statement)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._lock:
            saved = copy.deepcopy(self.t)
            try:
                yield
                self.check("commit")  # the connection drops as the transaction commits
            except BaseException:
                self.t = saved
                raise


class FakeTx:
    """The statements of one transaction (ports.SessionsTx) on the Store."""

    def __init__(self, store: Store) -> None:
        self.s = store

    async def lock_session(self, session_id: str,
                           user_id: str) -> tuple[Session, Role | None] | None:
        self.s.check("lock_session")
        session = self.s.t.sessions.get(session_id)
        if session is None:
            return None
        member = self.s.t.members.get((session_id, user_id))
        return session, member.role if member else None

    async def update_session(self, session_id: str, changes: dict[str, str], *,
                             end: bool = False) -> Session:
        self.s.check("update_session")
        session = replace(self.s.t.sessions[session_id], **changes)
        if end:
            session = replace(session, status=Status.ENDED)
        session = replace(session, version=session.version + 1, updated_at=self.s.tick())
        self.s.t.sessions[session_id] = session
        return session

    async def set_owner(self, session_id: str, old_owner: str, new_owner: str) -> Session:
        for who, role in ((old_owner, Role.EDITOR), (new_owner, Role.OWNER)):
            self.s.t.members[(session_id, who)] = replace(self.s.t.members[(session_id, who)],
                                                          role=role)
        session = self.s.t.sessions[session_id]
        session = replace(session, owner_id=new_owner, version=session.version + 1,
                          updated_at=self.s.tick())
        self.s.t.sessions[session_id] = session
        return session

    async def delete_session(self, session_id: str) -> list[str]:
        t = self.s.t
        former = [uid for (sid, uid) in t.members if sid == session_id]
        del t.sessions[session_id]
        t.members = {k: v for k, v in t.members.items() if k[0] != session_id}
        t.events = [e for e in t.events if e.session_id != session_id]
        t.messages = [m for m in t.messages if m.session_id != session_id]
        t.doc_heads.pop(session_id, None)
        t.doc_updates = [u for u in t.doc_updates if u[0] != session_id]
        return former

    async def member(self, session_id: str, user_id: str) -> Member | None:
        return self.s.t.members.get((session_id, user_id))

    async def add_member(self, session_id: str, user_id: str, role: Role,
                         session_created_at: datetime) -> Member:
        self.s.check("add_member")
        member = Member(user_id, role, self.s.tick())
        self.s.t.members[(session_id, user_id)] = member
        return member

    async def set_role(self, session_id: str, user_id: str, role: Role) -> Member:
        member = replace(self.s.t.members[(session_id, user_id)], role=role)
        self.s.t.members[(session_id, user_id)] = member
        return member

    async def remove_member(self, session_id: str, user_id: str) -> None:
        self.s.t.members.pop((session_id, user_id), None)

    async def append_events(self, session_id: str,
                            events: Sequence[tuple[str, dict[str, Any]]]) -> list[Event]:
        self.s.check("append_events")
        if session_id not in self.s.t.sessions:
            return []
        at = self.s.tick()
        out = []
        for kind, payload in events:
            self.s.t.last_seq[session_id] += 1
            out.append(Event(session_id, self.s.t.last_seq[session_id], kind, payload, at))
        self.s.t.events.extend(out)
        return out

    async def add_outbox(self, event_type: str, data: dict[str, Any]) -> OutboxEvent:
        event = OutboxEvent(self.s.new_id(), str(uuid.uuid4()), event_type, data)
        self.s.t.outbox.append(event)
        return event

    async def pending_invitation_exists(self, session_id: str, invitee_id: str | None,
                                        login: str) -> bool:
        return any(i.session_id == session_id and i.status is InvitationState.PENDING
                   and i.expires_at > self.s.now
                   and (i.invitee_id == invitee_id
                        or (i.invitee_login or "").lower() == login.lower())
                   for i in self.s.t.invitations.values())

    async def is_member(self, session_id: str, user_id: str) -> bool:
        return (session_id, user_id) in self.s.t.members

    async def create_invitation(self, session_id: str, role: Role, invitee_id: str | None,
                                invitee_login: str | None, digest: bytes | None, max_uses: int,
                                invited_by: str, expires_in: int) -> Invitation:
        now = self.s.tick()
        invitation = Invitation(str(uuid.uuid4()), session_id, role, InvitationState.PENDING,
                                invitee_id, invitee_login, max_uses, 0, invited_by,
                                now + timedelta(seconds=expires_in), now, digest is not None)
        self.s.t.invitations[invitation.id] = invitation
        if digest is not None:
            self.s.t.token_hashes[digest] = invitation.id
        return invitation

    async def lock_invitation(self, invitation_id: str) -> tuple[Invitation, datetime] | None:
        found = self.s.t.invitations.get(invitation_id)
        return None if found is None else (found, self.s.now)

    async def use_invitation(self, invitation_id: str, user_id: str, *, addressed: bool) -> None:
        self.s.check("use_invitation")
        self.s.t.uses.add((invitation_id, user_id))
        inv = self.s.t.invitations[invitation_id]
        uses = inv.uses + 1
        self.s.t.invitations[invitation_id] = replace(
            inv, uses=uses,
            status=InvitationState.ACCEPTED if uses >= inv.max_uses else inv.status,
            invitee_id=user_id if addressed else inv.invitee_id)

    async def used_invitation(self, invitation_id: str, user_id: str) -> bool:
        return (invitation_id, user_id) in self.s.t.uses

    async def set_invitation_status(self, invitation_id: str, status: InvitationState) -> None:
        self.s.t.invitations[invitation_id] = replace(self.s.t.invitations[invitation_id],
                                                      status=status)

    async def record_removal(self, session_id: str, user_id: str, removed_by: str) -> None:
        self.s.t.removals[(session_id, user_id)] = self.s.tick()
        for inv in list(self.s.t.invitations.values()):
            if (inv.session_id == session_id and inv.invitee_id == user_id
                    and inv.status is InvitationState.PENDING):
                self.s.t.invitations[inv.id] = replace(inv, status=InvitationState.REVOKED)

    async def removed_at(self, session_id: str, user_id: str) -> datetime | None:
        return self.s.t.removals.get((session_id, user_id))


class FakeRepository:
    """ports.SessionStore on the Store."""

    def __init__(self, store: Store) -> None:
        self.s = store
        # A client_id that "another connection" takes just before this one's insert.
        self.race_client_id: str | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeTx]:
        async with self.s.transaction():
            yield FakeTx(self.s)

    async def create_session(self, title: str, description: str, language: str,
                             owner_id: str) -> Session:
        now = self.s.tick()
        session = Session(str(uuid.uuid4()), title, description, language, Status.ACTIVE,
                          owner_id, 1, now, now)
        async with self.s.transaction():
            self.s.t.sessions[session.id] = session
            self.s.t.last_seq[session.id] = 0
            self.s.t.members[(session.id, owner_id)] = Member(owner_id, Role.OWNER, now)
        return session

    async def session_and_role(self, session_id: str,
                               user_id: str | None) -> tuple[Session | None, Role | None]:
        session = self.s.t.sessions.get(session_id)
        if session is None:
            return None, None
        member = self.s.t.members.get((session_id, user_id)) if user_id else None
        return session, member.role if member else None

    async def last_seq(self, session_id: str) -> int:
        return self.s.t.last_seq.get(session_id, 0)

    async def list_sessions(self, user_id: str, limit: int,
                            after: After | None) -> list[tuple[Session, Role]]:
        mine = sorted(((self.s.t.sessions[sid], m.role) for (sid, uid), m in
                       self.s.t.members.items() if uid == user_id),
                      key=lambda item: (item[0].created_at, item[0].id), reverse=True)
        if after is not None:
            mine = [i for i in mine if (i[0].created_at, i[0].id) < (after[0], after[1])]
        return mine[:limit]

    async def members(self, session_id: str) -> list[Member]:
        return sorted((m for (sid, _), m in self.s.t.members.items() if sid == session_id),
                      key=lambda m: (m.joined_at, m.user_id))

    async def post_message(self, session_id: str, author_id: str, message_id: str, body: str,
                           client_id: str | None, created_at: datetime,
                           payload: dict[str, Any]) -> int | None:
        if client_id is not None and client_id == self.race_client_id:
            self.race_client_id = None
            await self.post_message(session_id, author_id, str(uuid.uuid4()), body, client_id,
                                    created_at, payload)
        async with self.s.transaction():
            session = self.s.t.sessions.get(session_id)
            if (session is None or session.status is not Status.ACTIVE
                    or (session_id, author_id) not in self.s.t.members):
                return None
            if client_id is not None and await self.message_by_client_id(
                    session_id, author_id, client_id):
                raise DuplicateClientId
            self.s.t.last_seq[session_id] += 1
            seq = self.s.t.last_seq[session_id]
            self.s.check("post_message")
            self.s.t.messages.append(Message(message_id, session_id, seq, author_id, body,
                                             client_id, created_at))
            self.s.t.events.append(Event(session_id, seq, "chat.message", payload, created_at))
            return seq

    async def message_by_client_id(self, session_id: str, author_id: str,
                                   client_id: str) -> Message | None:
        return next((m for m in self.s.t.messages if (m.session_id, m.author_id, m.client_id)
                     == (session_id, author_id, client_id)), None)

    async def messages(self, session_id: str, after_seq: int, limit: int) -> list[Message]:
        return [m for m in self.s.t.messages
                if m.session_id == session_id and m.seq > after_seq][:limit]

    async def events(self, session_id: str, after_seq: int, limit: int) -> list[Event]:
        return [e for e in self.s.t.events
                if e.session_id == session_id and e.seq > after_seq][:limit]

    def _with_title(self, invitation: Invitation | None) -> Invitation | None:
        if invitation is None or invitation.session_id not in self.s.t.sessions:
            return None
        return replace(invitation, session_title=self.s.t.sessions[invitation.session_id].title)

    async def invitation(self, invitation_id: str) -> Invitation | None:
        return self._with_title(self.s.t.invitations.get(invitation_id))

    async def invitation_by_token(self, digest: bytes) -> Invitation | None:
        iid = self.s.t.token_hashes.get(digest)
        return None if iid is None else self._with_title(self.s.t.invitations[iid])

    async def used_invitation(self, invitation_id: str, user_id: str) -> bool:
        return (invitation_id, user_id) in self.s.t.uses

    async def invitations_for(self, user_id: str, login: str, limit: int,
                              after: After | None) -> list[tuple[int, Invitation]]:
        raise NotImplementedError("not needed by these tests")

    async def notifications(self, user_id: str, login: str, unread_only: bool, limit: int,
                            after: After | None) -> list[Notification]:
        raise NotImplementedError("not needed by these tests")

    async def mark_notification_read(self, notification_id: str, user_id: str,
                                     login: str) -> bool:
        raise NotImplementedError("not needed by these tests")


class FakeMemberships:
    """ports.Memberships straight from the store (no cache), recording invalidations."""

    def __init__(self, repo: FakeRepository) -> None:
        self._repo = repo
        self.invalidated: list[tuple[str, tuple[str, ...]]] = []

    async def session_and_role(self, session_id: str,
                               user_id: str | None) -> tuple[Session | None, Role | None]:
        return await self._repo.session_and_role(session_id, user_id)

    async def status(self, session_id: str) -> Status | None:
        session, _ = await self._repo.session_and_role(session_id, None)
        return session.status if session else None

    async def membership(self, session_id: str, user_id: str) -> Membership | None:
        session, role = await self._repo.session_and_role(session_id, user_id)
        return None if session is None or role is None else Membership(role, session.status)

    async def require(self, session_id: str, user_id: str,
                      minimum: Role = Role.VIEWER) -> tuple[Session, Role]:
        return member_of(*await self._repo.session_and_role(session_id, user_id), minimum)

    async def members(self, session_id: str) -> list[Member]:
        return await self._repo.members(session_id)

    async def invalidate(self, session_id: str, user_ids: Sequence[str] = (), *,
                         session: bool = False, members: bool = False) -> None:
        self.invalidated.append((session_id, tuple(user_ids)))


@dataclass
class FakePublisher:
    """ports.EventPublisher and ports.DocumentPublisher: what went out, in order."""

    events: list[Event] = field(default_factory=list)
    emitted: list[OutboxEvent] = field(default_factory=list)
    frames: list[tuple[str, int, bytes]] = field(default_factory=list)

    async def publish(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    async def publish_ephemeral(self, session_id: str, event_type: str,
                                payload: dict[str, Any]) -> Event:
        event = Event(session_id, 0, event_type, payload, datetime.now(UTC))
        self.events.append(event)
        return event

    async def emit(self, events: Sequence[OutboxEvent]) -> None:
        self.emitted.extend(events)

    async def publish_update(self, session_id: str, version: int, update: bytes) -> None:
        self.frames.append((session_id, version, update))


@dataclass
class FakeUsers:
    """ports.UserDirectory: the users auth knows, by login."""

    known: dict[str, FoundUser] = field(default_factory=dict)

    async def by_login(self, login: str, on_behalf_of: str) -> FoundUser | None:
        return self.known.get(login.lower())


class FakeDocumentTx:
    """ports.DocumentTx on the Store."""

    def __init__(self, store: Store) -> None:
        self.s = store

    async def head(self, session_id: str, *, lock: bool = False) -> DocumentHead | None:
        found = self.s.t.doc_heads.get(session_id)
        return None if found is None else found[0]

    async def bump(self, session_id: str) -> DocumentHead:
        self.s.check("bump")
        if session_id not in self.s.t.sessions:
            raise NotFound("session not found")
        head, state = self.s.t.doc_heads.get(session_id,
                                             (DocumentHead(0, 0, self.s.now), b"\x00\x00"))
        head = DocumentHead(head.upto, head.version + 1, self.s.tick())
        self.s.t.doc_heads[session_id] = (head, state)
        return head

    async def snapshot(self, session_id: str) -> bytes:
        found = self.s.t.doc_heads.get(session_id)
        return b"" if found is None else found[1]

    async def updates_after(self, session_id: str, after_id: int) -> list[tuple[int, bytes]]:
        return [(i, u) for sid, i, u in self.s.t.doc_updates if sid == session_id and i > after_id]

    async def append(self, session_id: str, update: bytes) -> int:
        self.s.check("append")
        update_id = self.s.new_id()
        self.s.t.doc_updates.append((session_id, update_id, update))
        return update_id

    async def compact(self, session_id: str, state: bytes, upto: int) -> None:
        self.s.check("compact")
        head, _ = self.s.t.doc_heads[session_id]
        self.s.t.doc_heads[session_id] = (DocumentHead(upto, head.version, head.updated_at),
                                          state)
        self.s.t.doc_updates = [u for u in self.s.t.doc_updates
                                if u[0] != session_id or u[1] > upto]


class FakeDocumentStore:
    """ports.DocumentStore on the Store: reads and writes are both transactions."""

    def __init__(self, store: Store) -> None:
        self.s = store

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[FakeDocumentTx]:
        async with self.s.transaction():
            yield FakeDocumentTx(self.s)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[FakeDocumentTx]:
        async with self.s.transaction():
            yield FakeDocumentTx(self.s)
