"""Use cases of the sessions service: authorize, validate, write in one transaction, then publish."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg.errors

from services.common.context import session_id_var
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
from services.common.sessionevents import SESSION_DELETED
from services.sessions import domain
from services.sessions.cache import MembershipChecker
from services.sessions.domain import InvitationState, Role, Status
from services.sessions.events import Publisher
from services.sessions.repository import DomainEvent, Event, Repository
from services.sessions.users import UserDirectory

log = logging.getLogger(__name__)


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str = ""


@dataclass
class CreatedInvitation:
    row: dict[str, Any]
    token: str = ""


@dataclass
class AfterCommit:
    """What a write does once its transaction has committed."""

    events: list[Event] = field(default_factory=list)
    domain: list[DomainEvent] = field(default_factory=list)


def _authorize(row: dict[str, Any] | None, minimum: Role) -> tuple[dict[str, Any], Role]:
    """The locked session row and the caller's role, or the error a caller without it gets."""
    if row is None or row["caller_role"] is None:
        raise NotFound("session not found")
    role = Role(row["caller_role"])
    if not role.at_least(minimum):
        raise PermissionDenied("only the session owner can do this" if minimum is Role.OWNER
                               else f"this needs the {minimum} role or higher")
    return row, role


def _active(row: dict[str, Any]) -> None:
    if row["status"] == Status.ENDED:
        raise Conflict("the session has ended")


def _user(caller: Caller) -> str:
    return caller.require_user()


class SessionsApp:
    """Every operation of the service; the servicer only translates protos."""

    def __init__(self, repo: Repository, checker: MembershipChecker, publisher: Publisher,
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

    async def _reader(self, caller: Caller, session_id: str) -> tuple[dict[str, Any], Role | None]:
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
                             language: str) -> dict[str, Any]:
        uid = _user(caller)
        row = await self.repo.create_session(domain.clean_title(title),
                                             domain.clean_description(description),
                                             domain.clean_language(language), uid)
        session_id_var.set(str(row["id"]))
        log.info("session created")
        return row

    async def list_sessions(self, caller: Caller, limit: int, cursor: str) -> Page:
        uid = _user(caller)
        size = domain.limit(limit)
        after = domain.decode_cursor(cursor, (datetime, uuid.UUID)) if cursor else None
        rows = await self.repo.list_sessions(uid, size + 1, after)
        page = Page(rows[:size])
        if len(rows) > size:
            last = rows[size - 1]
            page.next_cursor = domain.encode_cursor(last["created_at"], str(last["id"]))
        return page

    async def get_session(self, caller: Caller, session_id: str,
                          include_last_seq: bool = False) -> tuple[dict[str, Any], Role | None, int]:
        session, role = await self._reader(caller, session_id)
        last_seq = await self.repo.last_seq(str(session["id"])) if include_last_seq else 0
        return session, role, last_seq

    async def update_session(self, caller: Caller, session_id: str, *, title: str | None,
                             description: str | None, language: str | None,
                             expected_version: int | None) -> dict[str, Any]:
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
            if expected_version is not None and row["version"] != expected_version:
                raise StaleVersion(f"the session is at version {row['version']}, "
                                   f"not {expected_version}; reload and retry")
            changed = {k: v for k, v in changes.items() if row[k] != v}
            if not changed:
                row.pop("caller_role")
                return row
            updated = await tx.update_session(sid, changed)
            done.events = await tx.append_events(
                sid, [("session.updated", {"session": domain.session_json(updated)})])
        await self._after(sid, done, session=True)
        return updated

    async def end_session(self, caller: Caller, session_id: str) -> dict[str, Any]:
        uid = _user(caller)
        sid = domain.parse_uuid(session_id, "session")
        session_id_var.set(sid)
        done = AfterCommit()
        async with self.repo.transaction() as tx:
            row, _ = _authorize(await tx.lock_session(sid, uid), Role.OWNER)
            if row["status"] == Status.ENDED:
                # Ending twice is harmless: the same answer, no new event.
                row.pop("caller_role")
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

    async def list_members(self, caller: Caller, session_id: str) -> list[dict[str, Any]]:
        session, _ = await self._reader(caller, session_id)
        return await self.checker.members(str(session["id"]))

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
                            role: Role | None) -> dict[str, Any]:
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
            if member["role"] == Role.OWNER:
                raise FailedPrecondition("the owner cannot be demoted; transfer ownership first")
            if member["role"] == new_role:
                return member
            member = await tx.set_role(sid, target, new_role)
            done.events = await tx.append_events(
                sid, [("member.role_changed", {"user_id": target, "role": str(new_role)})])
            done.domain.append(await tx.add_outbox("member.role_changed", {
                "session_id": sid, "session_title": row["title"], "user_id": target,
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
                "session_id": sid, "session_title": row["title"], "user_id": target,
                "actor_id": uid}))
        await self._after(sid, done, users=(target,), members=True)

    async def transfer_ownership(self, caller: Caller, session_id: str,
                                 new_owner_id: str) -> tuple[dict[str, Any], Role]:
        uid = _user(caller)
        sid = domain.parse_uuid(session_id, "session")
        session_id_var.set(sid)
        target = domain.parse_uuid(new_owner_id, "member")
        done = AfterCommit()
        async with self.repo.transaction() as tx:
            row, _ = _authorize(await tx.lock_session(sid, uid), Role.OWNER)
            _active(row)
            if target == uid:
                row.pop("caller_role")
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
                    "session_id": sid, "session_title": row["title"], "user_id": who,
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
                    "invitation_id": str(inv["id"]), "session_id": sid,
                    "session_title": row["title"], "role": str(invited_role),
                    "invitee_id": invitee_id, "invitee_login": stored_login, "invited_by": uid}))
            else:
                token = domain.new_invitation_token()
                inv = await tx.create_invitation(sid, invited_role, None, None,
                                                 domain.token_hash(token), uses, uid, seconds)
        await self.publisher.emit(done.domain)
        inv["session_title"] = row["title"]
        inv["is_link"] = not login
        return CreatedInvitation(inv, token)

    async def list_invitations(self, caller: Caller, limit: int, cursor: str) -> Page:
        uid = _user(caller)
        size = domain.limit(limit)
        after = domain.decode_cursor(cursor, (int, datetime, uuid.UUID)) if cursor else None
        rows = await self.repo.invitations_for(uid, caller.login, size + 1, after)
        page = Page(rows[:size])
        if len(rows) > size:
            last = rows[size - 1]
            page.next_cursor = domain.encode_cursor(int(last["rank"]), last["created_at"],
                                                    str(last["id"]))
        return page

    async def _addressed_invitation(self, caller: Caller, invitation_id: str) -> dict[str, Any]:
        uid = _user(caller)
        iid = domain.parse_uuid(invitation_id, "invitation")
        row = await self.repo.invitation(iid)
        if row is None or not (domain.addressed_to(row, uid, caller.login)
                               or await self.repo.used_invitation(iid, uid)):
            raise NotFound("invitation not found")
        return row

    async def accept_invitation(self, caller: Caller, invitation_id: str,
                                token: str) -> tuple[dict[str, Any], Role]:
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
        iid, sid = str(found["id"]), str(found["session_id"])
        session_id_var.set(sid)
        done = AfterCommit()
        # Lock order session -> invitation, as every other writer of both.
        async with self.repo.transaction() as tx:
            session = await tx.lock_session(sid, uid)
            inv = await tx.lock_invitation(iid)
            if session is None or inv is None:
                raise NotFound("invitation not found")
            current = session.pop("caller_role")
            if current is None:
                removed = await tx.removed_at(sid, uid)
                if removed is not None and inv["created_at"] <= removed:
                    # The owner's removal outranks what was handed out before it.
                    raise PermissionDenied("you were removed from this session after this "
                                           "invitation was made; ask the owner for a new one")
            if await tx.used_invitation(iid, uid):
                if current is None:
                    raise Gone("this invitation has already been used")
                return session, Role(current)
            state = domain.invitation_state(inv["status"], inv["expires_at"], inv["now"])
            if state is not InvitationState.PENDING:
                word = "used" if state is InvitationState.ACCEPTED else str(state)
                raise Gone(f"this invitation has been {word}" if state is not InvitationState.EXPIRED
                           else "this invitation has expired")
            _active(session)
            addressed = not inv["is_link"]
            if current is not None:
                # Already a member: an addressed invitation is settled; a link keeps its uses.
                if addressed:
                    await tx.use_invitation(iid, uid, addressed=True)
                return session, Role(current)
            await tx.add_member(sid, uid, inv["role"], session["created_at"])
            await tx.use_invitation(iid, uid, addressed=addressed)
            done.events = await tx.append_events(
                sid, [("member.joined", {"user_id": uid, "role": inv["role"]})])
            done.domain.append(await tx.add_outbox("invitation.accepted", {
                "invitation_id": iid, "session_id": sid, "session_title": session["title"],
                "user_id": uid, "role": inv["role"], "invited_by": str(inv["invited_by"])}))
        await self._after(sid, done, users=(uid,), members=True)
        log.info("invitation accepted")
        return session, Role(inv["role"])

    async def preview_invitation(self, caller: Caller,
                                 token: str) -> tuple[dict[str, Any], dict[str, Any], Role | None]:
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
        sid = str(found["session_id"])
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
        if found["is_link"] or not domain.addressed_to(found, uid, caller.login):
            await self._refuse_decline(found, uid)
        done = AfterCommit()
        async with self.repo.transaction() as tx:
            inv = await tx.lock_invitation(iid)
            if inv is None:
                raise NotFound("invitation not found")
            state = domain.invitation_state(inv["status"], inv["expires_at"], inv["now"])
            if state is InvitationState.DECLINED:
                return
            if state is InvitationState.ACCEPTED:
                raise Conflict("this invitation has already been accepted")
            if state is not InvitationState.PENDING:
                raise Gone(f"this invitation has been {state}" if state is not
                           InvitationState.EXPIRED else "this invitation has expired")
            await tx.set_invitation_status(iid, InvitationState.DECLINED)
            done.domain.append(await tx.add_outbox("invitation.declined", {
                "invitation_id": iid, "session_id": str(found["session_id"]),
                "session_title": found["session_title"], "user_id": uid, "role": inv["role"],
                "invited_by": str(inv["invited_by"])}))
        await self.publisher.emit(done.domain)

    async def _refuse_decline(self, found: dict[str, Any], uid: str) -> None:
        """The error for a decline that is not the caller's: 403 for who knows of it, else 404."""
        iid, sid = str(found["id"]), str(found["session_id"])
        _, role = await self.repo.session_and_role(sid, uid)
        if role == Role.OWNER:
            raise PermissionDenied("the session owner revokes invitations; declining is for "
                                   "the person invited")
        if found["is_link"] and (role is not None or await self.repo.used_invitation(iid, uid)):
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
        sid = str(found["session_id"])
        session_id_var.set(sid)
        async with self.repo.transaction() as tx:
            session = await tx.lock_session(sid, uid)
            if session is None or session["caller_role"] is None:
                if domain.addressed_to(found, uid, caller.login):
                    raise PermissionDenied("only the session owner can revoke an invitation; "
                                           "decline it instead")
                raise NotFound("invitation not found")
            _authorize(session, Role.OWNER)
            inv = await tx.lock_invitation(iid)
            if inv is None:
                raise NotFound("invitation not found")
            state = domain.invitation_state(inv["status"], inv["expires_at"], inv["now"])
            if state is InvitationState.ACCEPTED:
                raise Conflict("this invitation has already been accepted; remove the member "
                               "instead")
            if state in (InvitationState.PENDING, InvitationState.EXPIRED):
                await tx.set_invitation_status(iid, InvitationState.REVOKED)

    # --- chat and the event log --------------------------------------------------------

    async def post_message(self, caller: Caller, session_id: str, body: str,
                           client_id: str) -> dict[str, Any]:
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
                   "created_at": domain.rfc3339(at), "client_id": cid}
        try:
            seq = await self.repo.post_message(sid, uid, message_id, text, cid, at, payload)
        except psycopg.errors.UniqueViolation:
            # The same client_id raced in on another connection: answer with that message.
            assert cid is not None  # noqa: S101 - only the client_id index can conflict
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
        return {"id": message_id, "session_id": sid, "seq": seq, "author_id": uid, "body": text,
                "client_id": cid, "created_at": at}

    async def list_messages(self, caller: Caller, session_id: str, after_seq: int,
                            limit: int) -> tuple[list[dict[str, Any]], int]:
        size = domain.limit(limit, domain.MESSAGES_DEFAULT)
        after = domain.after_seq(after_seq)
        session, _ = await self._reader(caller, session_id)
        rows = await self.repo.messages(str(session["id"]), after, size + 1)
        next_after = int(rows[size - 1]["seq"]) if len(rows) > size else 0
        return rows[:size], next_after

    async def list_events(self, caller: Caller, session_id: str, after_seq: int,
                          limit: int) -> tuple[list[Event], bool]:
        size = domain.limit(limit, domain.EVENTS_DEFAULT, domain.EVENTS_MAX)
        after = domain.after_seq(after_seq)
        session, _ = await self._reader(caller, session_id)
        events = await self.repo.events(str(session["id"]), after, size + 1)
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
                                 cursor: str) -> Page:
        uid = _user(caller)
        size = domain.limit(limit)
        after = domain.decode_cursor(cursor, (datetime, uuid.UUID)) if cursor else None
        rows = await self.repo.notifications(uid, caller.login, unread_only, size + 1,
                                             after)
        page = Page(rows[:size])
        if len(rows) > size:
            last = rows[size - 1]
            page.next_cursor = domain.encode_cursor(last["created_at"], str(last["id"]))
        return page

    async def mark_notification_read(self, caller: Caller, notification_id: str) -> None:
        uid = _user(caller)
        nid = domain.parse_uuid(notification_id, "notification")
        if not await self.repo.mark_notification_read(nid, uid, caller.login):
            raise NotFound("notification not found")
