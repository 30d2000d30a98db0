"""Use cases of the sessions service: authorize, validate, write in one transaction, then publish.

`SessionsUseCases` holds sessions, members, invitations, chat, the event log and
notifications; `DocumentUseCases` the shared document (its machinery: documents.py).
Both talk only through the ports (ports.py); server.py wires the real ones.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Generic, TypeVar

from services.common.context import session_id_var
from services.common.domainevents import SESSION_DELETED
from services.common.errors import (
    Conflict,
    FailedPrecondition,
    FieldViolation,
    Gone,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    StaleVersion,
    Unauthenticated,
)
from services.common.identity import Caller
from services.common.timeconv import datetime_rfc3339
from services.sessions import domain
from services.sessions.documents import (
    COMPACT_AFTER,
    EMPTY_UPDATE,
    DocumentTooLarge,
    GrewPastLimit,
    LoadedDocument,
    LoadedDocuments,
    OverLimit,
)
from services.sessions.domain import (
    Event,
    Invitation,
    InvitationState,
    Member,
    Message,
    Notification,
    OutboxEvent,
    Role,
    Session,
    Status,
)
from services.sessions.ports import (
    DocumentPublisher,
    DocumentStore,
    DocumentTx,
    EventPublisher,
    Memberships,
    SessionStore,
    UserDirectory,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str = ""


@dataclass(frozen=True, slots=True)
class CreatedInvitation:
    invitation: Invitation
    token: str = ""


@dataclass
class AfterCommit:
    """What a write does once its transaction has committed."""

    events: list[Event] = field(default_factory=list)
    domain: list[OutboxEvent] = field(default_factory=list)


def _authorize(locked: tuple[Session, Role | None] | None,
               minimum: Role) -> tuple[Session, Role]:
    """The locked session and the caller's role, or the error a caller without it gets."""
    session, role = locked if locked is not None else (None, None)
    if session is None or role is None:
        raise NotFound("session not found")
    if not role.at_least(minimum):
        raise PermissionDenied("only the session owner can do this" if minimum is Role.OWNER
                               else f"this needs the {minimum} role or higher")
    return session, role


def _active(session: Session) -> None:
    if session.status is Status.ENDED:
        raise Conflict("the session has ended")


def _user(caller: Caller) -> str:
    return caller.require_user()


class SessionsUseCases:
    """Every operation of the service but the document's; the servicer only translates protos."""

    def __init__(self, repo: SessionStore, checker: Memberships, publisher: EventPublisher,
                 users: UserDirectory) -> None:
        self.repo = repo
        self.checker = checker
        self.publisher = publisher
        self.users = users

    async def _after(self, session_id: str, done: AfterCommit, *, users: tuple[str, ...] = (),
                     session: bool = False, members: bool = False) -> None:
        await self.checker.invalidate(session_id, users, session=session, members=members)
        await self.publisher.publish(done.events)
        await self.publisher.emit(done.domain)

    async def _reader(self, caller: Caller, session_id: str) -> tuple[Session, Role | None]:
        """Read access: a member (any role), or an internal caller acting for nobody."""
        sid = domain.parse_uuid(session_id, "session")
        session_id_var.set(sid)
        if caller.user_id is not None:
            return await self.checker.require(sid, caller.user_id)
        if not caller.internal:
            raise Unauthenticated("a user access token is required")
        session, _ = await self.checker.session_and_role(sid, None)
        if session is None:
            raise NotFound("session not found")
        return session, None

    # --- sessions ----------------------------------------------------------------------

    async def create_session(self, caller: Caller, title: str, description: str,
                             language: str) -> Session:
        uid = _user(caller)
        session = await self.repo.create_session(domain.clean_title(title),
                                                 domain.clean_description(description),
                                                 domain.clean_language(language), uid)
        session_id_var.set(session.id)
        log.info("session created")
        return session

    async def list_sessions(self, caller: Caller, limit: int,
                            cursor: str) -> Page[tuple[Session, Role]]:
        uid = _user(caller)
        size = domain.limit(limit)
        after = domain.decode_cursor(cursor, (datetime, uuid.UUID)) if cursor else None
        rows = await self.repo.list_sessions(uid, size + 1, after)
        page = Page(rows[:size])
        if len(rows) > size:
            last, _ = rows[size - 1]
            page.next_cursor = domain.encode_cursor(last.created_at, last.id)
        return page

    async def get_session(self, caller: Caller, session_id: str,
                          include_last_seq: bool = False) -> tuple[Session, Role | None, int]:
        session, role = await self._reader(caller, session_id)
        last_seq = await self.repo.last_seq(session.id) if include_last_seq else 0
        return session, role, last_seq

    async def update_session(self, caller: Caller, session_id: str, *, title: str | None,
                             description: str | None, language: str | None,
                             expected_version: int | None) -> Session:
        uid = _user(caller)
        sid = domain.parse_uuid(session_id, "session")
        session_id_var.set(sid)
        changes: dict[str, str] = {}
        if title is not None:
            changes["title"] = domain.clean_title(title)
        if description is not None:
            changes["description"] = domain.clean_description(description)
        if language is not None:
            changes["language"] = domain.clean_language(language)
        if not changes:
            raise InvalidArgument("nothing to update: give title, description or language",
                                  [FieldViolation("body", "at least one field is required")])
        done = AfterCommit()
        async with self.repo.transaction() as tx:
            row, _ = _authorize(await tx.lock_session(sid, uid), Role.OWNER)
            _active(row)
            if expected_version is not None and row.version != expected_version:
                raise StaleVersion(f"the session is at version {row.version}, "
                                   f"not {expected_version}; reload and retry")
            changed = {k: v for k, v in changes.items() if getattr(row, k) != v}
            if not changed:
                return row
            updated = await tx.update_session(sid, changed)
            done.events = await tx.append_events(
                sid, [("session.updated", {"session": domain.session_json(updated)})])
        await self._after(sid, done, session=True)
        return updated

    async def end_session(self, caller: Caller, session_id: str) -> Session:
        uid = _user(caller)
        sid = domain.parse_uuid(session_id, "session")
        session_id_var.set(sid)
        done = AfterCommit()
        async with self.repo.transaction() as tx:
            row, _ = _authorize(await tx.lock_session(sid, uid), Role.OWNER)
            if row.status is Status.ENDED:
                # Ending twice is harmless: the same answer, no new event.
                return row
            ended = await tx.update_session(sid, {}, end=True)
            done.events = await tx.append_events(
                sid, [("session.ended", {"session": domain.session_json(ended)})])
        await self._after(sid, done, session=True)
        log.info("session ended")
        return ended

    async def delete_session(self, caller: Caller, session_id: str) -> None:
        uid = _user(caller)
        sid = domain.parse_uuid(session_id, "session")
        session_id_var.set(sid)
        done = AfterCommit()
        async with self.repo.transaction() as tx:
            _authorize(await tx.lock_session(sid, uid), Role.OWNER)
            former = await tx.delete_session(sid)
            # Review and ai hold data of the session too: they purge it when they consume
            # this event, however long they were down (services/common/sessionevents.py).
            done.domain.append(await tx.add_outbox(SESSION_DELETED, {
                "session_id": sid, "deleted_by": uid}))
        await self.checker.invalidate(sid, former, session=True, members=True)
        await self.publisher.emit(done.domain)
        # The log is gone with the session: tell live clients without a sequence number.
        await self.publisher.publish_ephemeral(sid, "session.deleted", {})
        log.info("session deleted")

    # --- members -----------------------------------------------------------------------

    async def list_members(self, caller: Caller, session_id: str) -> list[Member]:
        session, _ = await self._reader(caller, session_id)
        return await self.checker.members(session.id)

    async def get_membership(self, caller: Caller, session_id: str,
                             user_id: str) -> domain.Membership:
        sid = domain.parse_uuid(session_id, "session")
        session_id_var.set(sid)
        # Internal callers may ask about any user; users only about themselves.
        who = domain.parse_uuid(user_id, "session") if caller.internal and user_id else _user(caller)
        membership = await self.checker.membership(sid, who)
        if membership is None:
            raise NotFound("session not found")
        return membership

    async def update_member(self, caller: Caller, session_id: str, user_id: str,
                            role: Role | None) -> Member:
        uid = _user(caller)
        new_role = domain.assignable_role(role)
        sid = domain.parse_uuid(session_id, "session")
        session_id_var.set(sid)
        target = domain.parse_uuid(user_id, "member")
        done = AfterCommit()
        async with self.repo.transaction() as tx:
            row, _ = _authorize(await tx.lock_session(sid, uid), Role.OWNER)
            _active(row)
            member = await tx.member(sid, target)
            if member is None:
                raise NotFound("member not found")
            if member.role is Role.OWNER:
                raise FailedPrecondition("the owner cannot be demoted; transfer ownership first")
            if member.role is new_role:
                return member
            member = await tx.set_role(sid, target, new_role)
            done.events = await tx.append_events(
                sid, [("member.role_changed", {"user_id": target, "role": str(new_role)})])
            done.domain.append(await tx.add_outbox("member.role_changed", {
                "session_id": sid, "session_title": row.title, "user_id": target,
                "role": str(new_role), "actor_id": uid}))
        await self._after(sid, done, users=(target,), members=True)
        return member

    async def remove_member(self, caller: Caller, session_id: str, user_id: str) -> None:
        uid = _user(caller)
        sid = domain.parse_uuid(session_id, "session")
        session_id_var.set(sid)
        target = domain.parse_uuid(user_id, "member")
        done = AfterCommit()
        async with self.repo.transaction() as tx:
            row, role = _authorize(await tx.lock_session(sid, uid), Role.VIEWER)
            if target == uid:
                if role is Role.OWNER:
                    raise FailedPrecondition("the owner cannot leave; transfer ownership first")
            else:
                if role is not Role.OWNER:
                    raise PermissionDenied("only the session owner can remove other members")
                if await tx.member(sid, target) is None:
                    raise NotFound("member not found")
                # Invitations made before this moment no longer admit them (see accept).
                await tx.record_removal(sid, target, uid)
            await tx.remove_member(sid, target)
            done.events = await tx.append_events(sid, [("member.removed", {"user_id": target})])
            done.domain.append(await tx.add_outbox("member.removed", {
                "session_id": sid, "session_title": row.title, "user_id": target,
                "actor_id": uid}))
        await self._after(sid, done, users=(target,), members=True)

    async def transfer_ownership(self, caller: Caller, session_id: str,
                                 new_owner_id: str) -> tuple[Session, Role]:
        uid = _user(caller)
        sid = domain.parse_uuid(session_id, "session")
        session_id_var.set(sid)
        target = domain.parse_uuid(new_owner_id, "member")
        done = AfterCommit()
        async with self.repo.transaction() as tx:
            row, _ = _authorize(await tx.lock_session(sid, uid), Role.OWNER)
            _active(row)
            if target == uid:
                return row, Role.OWNER
            if await tx.member(sid, target) is None:
                raise NotFound("member not found")
            updated = await tx.set_owner(sid, uid, target)
            done.events = await tx.append_events(sid, [
                ("member.role_changed", {"user_id": uid, "role": str(Role.EDITOR)}),
                ("member.role_changed", {"user_id": target, "role": str(Role.OWNER)}),
                ("session.updated", {"session": domain.session_json(updated)}),
            ])
            for who, role in ((uid, Role.EDITOR), (target, Role.OWNER)):
                done.domain.append(await tx.add_outbox("member.role_changed", {
                    "session_id": sid, "session_title": row.title, "user_id": who,
                    "role": str(role), "actor_id": uid}))
        await self._after(sid, done, users=(uid, target), session=True, members=True)
        log.info("ownership transferred")
        return updated, Role.EDITOR

    # --- invitations -------------------------------------------------------------------

    async def create_invitation(self, caller: Caller, session_id: str, github_login: str,
                                role: Role | None, expires_in: int,
                                max_uses: int) -> CreatedInvitation:
        uid = _user(caller)
        sid = domain.parse_uuid(session_id, "session")
        session_id_var.set(sid)
        invited_role = domain.invitable_role(role)
        seconds = domain.expires_in(expires_in)
        login = domain.clean_login(github_login) if github_login else ""
        uses = domain.max_uses(max_uses, addressed=bool(login))
        # Authorize before asking auth about a login: non-owners learn nothing.
        await self.checker.require(sid, uid, Role.OWNER)
        found = await self.users.by_login(login, uid) if login else None
        done = AfterCommit()
        token = ""
        async with self.repo.transaction() as tx:
            row, _ = _authorize(await tx.lock_session(sid, uid), Role.OWNER)
            _active(row)
            if login:
                invitee_id = found.id if found else None
                stored_login = found.login if found else login
                if (invitee_id is not None and await tx.is_member(sid, invitee_id)) or (
                        caller.login and caller.login.lower() == login.lower()):
                    raise Conflict(f"{stored_login} is already a member of this session")
                if await tx.pending_invitation_exists(sid, invitee_id, stored_login):
                    raise Conflict(f"{stored_login} already has a pending invitation")
                inv = await tx.create_invitation(sid, invited_role, invitee_id, stored_login,
                                                 None, 1, uid, seconds)
                done.domain.append(await tx.add_outbox("invitation.created", {
                    "invitation_id": inv.id, "session_id": sid,
                    "session_title": row.title, "role": str(invited_role),
                    "invitee_id": invitee_id, "invitee_login": stored_login, "invited_by": uid}))
            else:
                token = domain.new_invitation_token()
                inv = await tx.create_invitation(sid, invited_role, None, None,
                                                 domain.token_hash(token), uses, uid, seconds)
        await self.publisher.emit(done.domain)
        return CreatedInvitation(replace(inv, session_title=row.title), token)

    async def list_invitations(self, caller: Caller, limit: int,
                               cursor: str) -> Page[Invitation]:
        uid = _user(caller)
        size = domain.limit(limit)
        after = domain.decode_cursor(cursor, (int, datetime, uuid.UUID)) if cursor else None
        rows = await self.repo.invitations_for(uid, caller.login, size + 1, after)
        page = Page([inv for _, inv in rows[:size]])
        if len(rows) > size:
            rank, last = rows[size - 1]
            page.next_cursor = domain.encode_cursor(rank, last.created_at, last.id)
        return page

    async def _addressed_invitation(self, caller: Caller, invitation_id: str) -> Invitation:
        uid = _user(caller)
        iid = domain.parse_uuid(invitation_id, "invitation")
        row = await self.repo.invitation(iid)
        if row is None or not (domain.addressed_to(row, uid, caller.login)
                               or await self.repo.used_invitation(iid, uid)):
            raise NotFound("invitation not found")
        return row

    async def accept_invitation(self, caller: Caller, invitation_id: str,
                                token: str) -> tuple[Session, Role]:
        uid = _user(caller)
        if token:
            found = await self.repo.invitation_by_token(domain.token_hash(token))
            if found is None:
                raise NotFound("invitation not found")
        elif invitation_id:
            found = await self._addressed_invitation(caller, invitation_id)
        else:
            raise InvalidArgument("invitation_id or token is required",
                                  [FieldViolation("token", "is required")])
        iid, sid = found.id, found.session_id
        session_id_var.set(sid)
        done = AfterCommit()
        # Lock order session -> invitation, as every other writer of both.
        async with self.repo.transaction() as tx:
            locked = await tx.lock_session(sid, uid)
            locked_inv = await tx.lock_invitation(iid)
            if locked is None or locked_inv is None:
                raise NotFound("invitation not found")
            session, current = locked
            inv, now = locked_inv
            if current is None:
                removed = await tx.removed_at(sid, uid)
                if removed is not None and inv.created_at <= removed:
                    # The owner's removal outranks what was handed out before it.
                    raise PermissionDenied("you were removed from this session after this "
                                           "invitation was made; ask the owner for a new one")
            if await tx.used_invitation(iid, uid):
                if current is None:
                    raise Gone("this invitation has already been used")
                return session, current
            state = inv.state(now)
            if state is not InvitationState.PENDING:
                word = "used" if state is InvitationState.ACCEPTED else str(state)
                raise Gone(f"this invitation has been {word}" if state is not InvitationState.EXPIRED
                           else "this invitation has expired")
            _active(session)
            addressed = not inv.is_link
            if current is not None:
                # Already a member: an addressed invitation is settled; a link keeps its uses.
                if addressed:
                    await tx.use_invitation(iid, uid, addressed=True)
                return session, current
            await tx.add_member(sid, uid, inv.role, session.created_at)
            await tx.use_invitation(iid, uid, addressed=addressed)
            done.events = await tx.append_events(
                sid, [("member.joined", {"user_id": uid, "role": str(inv.role)})])
            done.domain.append(await tx.add_outbox("invitation.accepted", {
                "invitation_id": iid, "session_id": sid, "session_title": session.title,
                "user_id": uid, "role": str(inv.role), "invited_by": inv.invited_by}))
        await self._after(sid, done, users=(uid,), members=True)
        log.info("invitation accepted")
        return session, inv.role

    async def preview_invitation(self, caller: Caller,
                                 token: str) -> tuple[Invitation, Session, Role | None]:
        """A link invitation as the holder of its token sees it before accepting: the
        invitation, its session and the caller's role there (None for a non-member).

        Holding the token is what entitles one to see the session's title, as accepting it
        would; without the token nothing is disclosed (404, like an unknown one).
        """
        uid = _user(caller)
        if not token:
            raise InvalidArgument("token is required", [FieldViolation("token", "is required")])
        found = await self.repo.invitation_by_token(domain.token_hash(token))
        if found is None:
            raise NotFound("invitation not found")
        sid = found.session_id
        session_id_var.set(sid)
        session, role = await self.checker.session_and_role(sid, uid)
        if session is None:
            raise NotFound("invitation not found")
        return found, session, role

    async def decline_invitation(self, caller: Caller, invitation_id: str) -> None:
        """Only the addressee declines: a link is nobody's to close for everyone who has it."""
        uid = _user(caller)
        iid = domain.parse_uuid(invitation_id, "invitation")
        found = await self.repo.invitation(iid)
        if found is None:
            raise NotFound("invitation not found")
        if found.is_link or not domain.addressed_to(found, uid, caller.login):
            await self._refuse_decline(found, uid)
        done = AfterCommit()
        async with self.repo.transaction() as tx:
            locked = await tx.lock_invitation(iid)
            if locked is None:
                raise NotFound("invitation not found")
            inv, now = locked
            state = inv.state(now)
            if state is InvitationState.DECLINED:
                return
            if state is InvitationState.ACCEPTED:
                raise Conflict("this invitation has already been accepted")
            if state is not InvitationState.PENDING:
                raise Gone(f"this invitation has been {state}" if state is not
                           InvitationState.EXPIRED else "this invitation has expired")
            await tx.set_invitation_status(iid, InvitationState.DECLINED)
            done.domain.append(await tx.add_outbox("invitation.declined", {
                "invitation_id": iid, "session_id": found.session_id,
                "session_title": found.session_title, "user_id": uid, "role": str(inv.role),
                "invited_by": inv.invited_by}))
        await self.publisher.emit(done.domain)

    async def _refuse_decline(self, found: Invitation, uid: str) -> None:
        """The error for a decline that is not the caller's: 403 for who knows of it, else 404."""
        iid, sid = found.id, found.session_id
        _, role = await self.repo.session_and_role(sid, uid)
        if role is Role.OWNER:
            raise PermissionDenied("the session owner revokes invitations; declining is for "
                                   "the person invited")
        if found.is_link and (role is not None or await self.repo.used_invitation(iid, uid)):
            raise PermissionDenied("a link invitation cannot be declined: it is not addressed "
                                   "to anyone; the session owner can revoke it")
        if role is not None:
            raise PermissionDenied("only the person invited can decline this invitation")
        raise NotFound("invitation not found")

    async def revoke_invitation(self, caller: Caller, invitation_id: str) -> None:
        uid = _user(caller)
        iid = domain.parse_uuid(invitation_id, "invitation")
        found = await self.repo.invitation(iid)
        if found is None:
            raise NotFound("invitation not found")
        sid = found.session_id
        session_id_var.set(sid)
        async with self.repo.transaction() as tx:
            session = await tx.lock_session(sid, uid)
            if session is None or session[1] is None:
                if domain.addressed_to(found, uid, caller.login):
                    raise PermissionDenied("only the session owner can revoke an invitation; "
                                           "decline it instead")
                raise NotFound("invitation not found")
            _authorize(session, Role.OWNER)
            locked = await tx.lock_invitation(iid)
            if locked is None:
                raise NotFound("invitation not found")
            inv, now = locked
            state = inv.state(now)
            if state is InvitationState.ACCEPTED:
                raise Conflict("this invitation has already been accepted; remove the member "
                               "instead")
            if state in (InvitationState.PENDING, InvitationState.EXPIRED):
                await tx.set_invitation_status(iid, InvitationState.REVOKED)

    # --- chat and the event log --------------------------------------------------------

    async def post_message(self, caller: Caller, session_id: str, body: str,
                           client_id: str) -> Message:
        uid = _user(caller)
        sid = domain.parse_uuid(session_id, "session")
        session_id_var.set(sid)
        text = domain.clean_body(body)
        cid = domain.clean_client_id(client_id)
        if cid is not None:
            existing = await self.repo.message_by_client_id(sid, uid, cid)
            if existing is not None:
                return existing
        message_id = str(uuid.uuid4())
        at = datetime.now(UTC)
        author: dict[str, str] = {"id": uid}
        if caller.login:
            author["github_login"] = caller.login
        payload = {"id": message_id, "author": author, "body": text,
                   "created_at": datetime_rfc3339(at), "client_id": cid}
        try:
            seq = await self.repo.post_message(sid, uid, message_id, text, cid, at, payload)
        except domain.DuplicateClientId:
            # The same client_id raced in on another connection: answer with that message.
            assert cid is not None  # noqa: S101 - only a client_id can be taken twice
            existing = await self.repo.message_by_client_id(sid, uid, cid)
            if existing is None:
                raise
            return existing
        if seq is None:
            session, role = await self.repo.session_and_role(sid, uid)
            if session is None or role is None:
                raise NotFound("session not found")
            raise Conflict("the session has ended; its chat is read-only")
        await self.publisher.publish([Event(sid, seq, "chat.message", payload, at)])
        return Message(message_id, sid, seq, uid, text, cid, at)

    async def list_messages(self, caller: Caller, session_id: str, after_seq: int,
                            limit: int) -> tuple[list[Message], int]:
        size = domain.limit(limit, domain.MESSAGES_DEFAULT)
        after = domain.after_seq(after_seq)
        session, _ = await self._reader(caller, session_id)
        rows = await self.repo.messages(session.id, after, size + 1)
        next_after = rows[size - 1].seq if len(rows) > size else 0
        return rows[:size], next_after

    async def list_events(self, caller: Caller, session_id: str, after_seq: int,
                          limit: int) -> tuple[list[Event], bool]:
        size = domain.limit(limit, domain.EVENTS_DEFAULT, domain.EVENTS_MAX)
        after = domain.after_seq(after_seq)
        session, _ = await self._reader(caller, session_id)
        events = await self.repo.events(session.id, after, size + 1)
        return events[:size], len(events) > size

    async def append_event(self, caller: Caller, session_id: str, event_type: str,
                           payload_json: str, ephemeral: bool) -> Event:
        if not caller.internal:
            raise PermissionDenied("this operation is for internal callers only")
        kind = domain.event_type(event_type)
        payload = domain.event_payload(payload_json)
        sid = domain.parse_uuid(session_id, "session")
        session_id_var.set(sid)
        if ephemeral:
            if await self.checker.status(sid) is None:
                raise NotFound("session not found")
            return await self.publisher.publish_ephemeral(sid, kind, payload)
        async with self.repo.transaction() as tx:
            events = await tx.append_events(sid, [(kind, payload)])
            if not events:
                raise NotFound("session not found")
        await self.publisher.publish(events)
        return events[0]

    # --- notifications -----------------------------------------------------------------

    async def list_notifications(self, caller: Caller, unread_only: bool, limit: int,
                                 cursor: str) -> Page[Notification]:
        uid = _user(caller)
        size = domain.limit(limit)
        after = domain.decode_cursor(cursor, (datetime, uuid.UUID)) if cursor else None
        rows = await self.repo.notifications(uid, caller.login, unread_only, size + 1,
                                             after)
        page = Page(rows[:size])
        if len(rows) > size:
            last = rows[size - 1]
            page.next_cursor = domain.encode_cursor(last.created_at, last.id)
        return page

    async def mark_notification_read(self, caller: Caller, notification_id: str) -> None:
        uid = _user(caller)
        nid = domain.parse_uuid(notification_id, "notification")
        if not await self.repo.mark_notification_read(nid, uid, caller.login):
            raise NotFound("notification not found")


# --- the shared document ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentView:
    """The document's text as of `version` (GetDocument)."""

    text: str
    version: int
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class SyncAnswer:
    """What a client with some state vector lacks, and the server's own state vector."""

    update: bytes
    state_vector: bytes
    version: int


class DocumentUseCases:
    """GetDocument, SyncDocument and ApplyDocumentUpdate over stored updates and snapshots.

    The loaded documents (documents.LoadedDocuments) are shared state of this replica: every
    operation on one document holds its lock, and a write publishes under it, so this
    replica's frames leave in version order.
    """

    def __init__(self, store: DocumentStore, members: Memberships, publisher: DocumentPublisher,
                 *, max_bytes: int, compact_after: int = COMPACT_AFTER,
                 loaded: LoadedDocuments | None = None) -> None:
        self._db = store
        self._members = members
        self._publisher = publisher
        self._max_bytes = max_bytes
        self._compact_after = compact_after
        self.loaded = loaded if loaded is not None else LoadedDocuments()

    async def get_document(self, caller: Caller, session_id: str) -> DocumentView:
        sid = await self._authorize_read(caller, session_id)
        async with self.loaded.lock(sid):
            loaded = await self._read(sid)
            return DocumentView(loaded.text, loaded.version, loaded.updated_at)

    async def sync(self, caller: Caller, session_id: str, state_vector: bytes) -> SyncAnswer:
        """Answer a state vector with the update it lacks; an empty one asks only for ours.

        The empty request lets the gateway open the y-websocket handshake (its
        sync step 1 needs the server's state vector) without moving the whole
        document over the wire.
        """
        sid = await self._authorize_read(caller, session_id)
        async with self.loaded.lock(sid):
            loaded = await self._read(sid)
            state = loaded.doc.get_state()
            update = b""
            if state_vector:
                try:
                    update = loaded.doc.get_update(state_vector)
                except ValueError:
                    raise InvalidArgument("state_vector is not a Yjs state vector") from None
        return SyncAnswer(update, state, loaded.version)

    async def apply_update(self, caller: Caller, session_id: str, update: bytes) -> int:
        """Store one update and answer its version: only after the commit, then published."""
        sid = await self._authorize_write(caller, session_id)
        if len(update) > self._max_bytes:
            raise DocumentTooLarge(self._max_bytes)  # can never fit
        async with self.loaded.lock(sid):
            if update == EMPTY_UPDATE:
                return (await self._read(sid)).version
            try:
                loaded = await self._store_within_limit(sid, update)
            except (DocumentTooLarge, InvalidArgument):
                raise  # refused before anything was applied to the loaded Doc
            except BaseException:
                # The loaded Doc may hold an update whose transaction did not commit
                # (or the session is gone): forget it, the next reader loads from the database.
                self.loaded.forget(sid)
                raise
            await self._publisher.publish_update(sid, loaded.version, update)
            return loaded.version

    # --- authorization ----------------------------------------------------------------------

    async def _authorize_read(self, caller: Caller, raw_id: str) -> str:
        sid = domain.parse_uuid(raw_id, "session")
        session_id_var.set(sid)
        if caller.user_id is None:
            # A service acting for nobody in particular (e.g. the AI reviewer).
            if not caller.internal or await self._members.status(sid) is None:
                raise NotFound("session not found")
            return sid
        if await self._members.membership(sid, caller.user_id) is None:
            raise NotFound("session not found")
        return sid

    async def _authorize_write(self, caller: Caller, raw_id: str) -> str:
        sid = domain.parse_uuid(raw_id, "session")
        session_id_var.set(sid)
        user_id = caller.require_user()
        membership = await self._members.membership(sid, user_id)
        if membership is None:
            raise NotFound("session not found")
        if membership.status is Status.ENDED:
            raise FailedPrecondition("the session has ended; its document is read-only",
                                     reason="session_ended")
        if not membership.role.at_least(Role.EDITOR):
            raise PermissionDenied("viewers cannot edit the document")
        return sid

    # --- storage ----------------------------------------------------------------------------

    async def _read(self, sid: str) -> LoadedDocument:
        """The committed document, bringing the loaded copy up to date with the database."""
        async with self._db.reading() as tx:
            head = await tx.head(sid)
            if head is None:
                loaded = self.loaded.get(sid) or LoadedDocument.empty()
                self.loaded.remember(sid, loaded)
                return loaded
            loaded = await self._catch_up(tx, sid, head.upto)
            loaded.version = head.version
            loaded.updated_at = head.updated_at
        self.loaded.remember(sid, loaded)
        if loaded.tail >= self._compact_after:
            # Compaction otherwise happens only on writes: a document written long ago
            # and then only read would replay its whole tail on every cold load.
            await self._compact_after_read(sid, loaded)
        return loaded

    async def _compact_after_read(self, sid: str, loaded: LoadedDocument) -> None:
        try:
            async with self._db.writing() as tx:
                # The writers' row lock: no update can commit while we fold the tail.
                head = await tx.head(sid, lock=True)
                if head is None or head.upto != loaded.upto:
                    return  # deleted, or another replica compacted meanwhile
                loaded = await self._catch_up(tx, sid, loaded.upto)
                await self._compact(tx, sid, loaded)
        except Exception:
            # Only an optimisation: the document stays correct without it.
            self.loaded.forget(sid)
            log.warning("could not compact a document after a read", exc_info=True)
            return
        self.loaded.remember(sid, loaded)

    async def _catch_up(self, tx: DocumentTx, sid: str, upto: int) -> LoadedDocument:
        """The loaded document plus the updates stored since, or a fresh load."""
        loaded = self.loaded.get(sid)
        if loaded is None or loaded.upto != upto:
            # Never loaded, or another replica compacted since: start from the snapshot.
            loaded = LoadedDocument.from_snapshot(await tx.snapshot(sid), upto)
        loaded.catch_up(await tx.updates_after(sid, loaded.last_id))
        return loaded

    async def _store_within_limit(self, sid: str, update: bytes) -> LoadedDocument:
        """Store the update if the document stays within DOCUMENT_MAX_BYTES, else refuse it."""
        for attempt in range(2):
            try:
                return await self._write(sid, update)
            except GrewPastLimit:
                # Rolled back; the loaded Doc holds the refused update: the next reader reloads.
                self.loaded.forget(sid)
                raise DocumentTooLarge(self._max_bytes) from None
            except OverLimit as over:
                self.loaded.remember(sid, over.loaded)
                if attempt or over.loaded.tail == 0:
                    raise DocumentTooLarge(self._max_bytes) from None
                # The count includes every logged update, also text deleted since: fold the
                # log to learn the real size (only near the limit), then decide on that.
                await self._compact_after_read(sid, over.loaded)
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def _write(self, sid: str, update: bytes) -> LoadedDocument:
        async with self._db.writing() as tx:
            head = await tx.bump(sid)
            loaded = await self._catch_up(tx, sid, head.upto)
            # OverLimit here rolls back the version bump; the loaded Doc holds only
            # committed updates.
            loaded.admit(update, self._max_bytes)
            update_id = await tx.append(sid, update)
            loaded.apply_new(update_id, update, self._max_bytes)  # GrewPastLimit: rolls back
            loaded.version = head.version
            loaded.updated_at = head.updated_at
            if loaded.tail >= self._compact_after:
                await self._compact(tx, sid, loaded)
        self.loaded.remember(sid, loaded)
        return loaded

    async def _compact(self, tx: DocumentTx, sid: str, loaded: LoadedDocument) -> None:
        """Fold the tail into the snapshot, in the writer's transaction."""
        updates = loaded.tail
        state = loaded.compacted()
        await tx.compact(sid, state, loaded.upto)
        log.info("document compacted", extra={"updates": updates, "bytes": len(state)})
