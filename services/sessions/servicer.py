"""gRPC servicer of the sessions service: proto <-> domain, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
import orjson
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.timestamp_pb2 import Timestamp
from tandem.sessions.v1 import sessions_pb2, sessions_pb2_grpc

from services.common.identity import Authenticator
from services.common.timeconv import set_timestamp, to_timestamp
from services.sessions.domain import (
    Event,
    Invitation,
    InvitationState,
    Member,
    Message,
    Notification,
    Role,
    Session,
    Status,
)
from services.sessions.usecases import DocumentUseCases, SessionsUseCases

Ctx = grpc.aio.ServicerContext[Any, Any]
pb = sessions_pb2

_ROLE_PB = {Role.OWNER: pb.ROLE_OWNER, Role.EDITOR: pb.ROLE_EDITOR, Role.VIEWER: pb.ROLE_VIEWER}
_PB_ROLE = {v: k for k, v in _ROLE_PB.items()}
_STATUS_PB = {Status.ACTIVE: pb.SESSION_STATUS_ACTIVE, Status.ENDED: pb.SESSION_STATUS_ENDED}
_INVITATION_PB = {
    InvitationState.PENDING: pb.INVITATION_STATUS_PENDING,
    InvitationState.ACCEPTED: pb.INVITATION_STATUS_ACCEPTED,
    InvitationState.DECLINED: pb.INVITATION_STATUS_DECLINED,
    InvitationState.REVOKED: pb.INVITATION_STATUS_REVOKED,
    InvitationState.EXPIRED: pb.INVITATION_STATUS_EXPIRED,
}


def _role(value: Role | None) -> pb.Role.ValueType:
    return _ROLE_PB[value] if value else pb.ROLE_UNSPECIFIED


def _optional_ts(value: datetime | None) -> Timestamp | None:
    return None if value is None else to_timestamp(value)


def session_pb(session: Session, role: Role | None, last_seq: int = 0) -> pb.Session:
    return pb.Session(
        id=session.id, title=session.title, description=session.description,
        language=session.language, status=_STATUS_PB[session.status], owner_id=session.owner_id,
        role=_role(role), version=session.version, created_at=to_timestamp(session.created_at),
        updated_at=to_timestamp(session.updated_at), last_seq=last_seq)


def member_pb(member: Member) -> pb.Member:
    return pb.Member(user_id=member.user_id, role=_role(member.role),
                     joined_at=to_timestamp(member.joined_at))


def invitation_pb(invitation: Invitation, token: str = "") -> pb.Invitation:
    state = invitation.state(datetime.now(UTC))
    return pb.Invitation(
        id=invitation.id, session_id=invitation.session_id, role=_role(invitation.role),
        status=_INVITATION_PB[state], expires_at=to_timestamp(invitation.expires_at), token=token,
        github_login=invitation.invitee_login or "", invited_by=invitation.invited_by,
        created_at=to_timestamp(invitation.created_at), session_title=invitation.session_title,
        max_uses=invitation.max_uses, uses=invitation.uses)


def add_session(sessions: RepeatedCompositeFieldContainer[pb.Session], session: Session,
                role: Role | None) -> None:
    """Append a session to a repeated field, built in place: lists add up to 100 of them."""
    item = sessions.add(
        id=session.id, title=session.title, description=session.description,
        language=session.language, status=_STATUS_PB[session.status], owner_id=session.owner_id,
        role=_role(role), version=session.version)
    set_timestamp(item.created_at, session.created_at)
    set_timestamp(item.updated_at, session.updated_at)


def add_message(messages: RepeatedCompositeFieldContainer[pb.Message], message: Message) -> None:
    """Append a message to a repeated field, built in place (a page holds up to 100)."""
    item = messages.add(id=message.id, session_id=message.session_id, seq=message.seq,
                        author_id=message.author_id, body=message.body,
                        client_id=message.client_id or "")
    set_timestamp(item.created_at, message.created_at)


def message_pb(message: Message) -> pb.Message:
    return pb.Message(id=message.id, session_id=message.session_id, seq=message.seq,
                      author_id=message.author_id, body=message.body,
                      created_at=to_timestamp(message.created_at),
                      client_id=message.client_id or "")


def event_pb(event: Event) -> pb.Event:
    return pb.Event(session_id=event.session_id, seq=event.seq, type=event.type,
                    payload_json=orjson.dumps(event.payload).decode(), at=to_timestamp(event.at))


def notification_pb(notification: Notification) -> pb.Notification:
    return pb.Notification(id=notification.id, kind=notification.kind,
                           payload_json=orjson.dumps(notification.payload).decode(),
                           read=notification.read_at is not None,
                           created_at=to_timestamp(notification.created_at))


class SessionsServicer(sessions_pb2_grpc.SessionsServiceServicer):
    """Every RPC authenticates the caller; the use cases authorize against members."""

    def __init__(self, app: SessionsUseCases, documents: DocumentUseCases,
                 authn: Authenticator) -> None:
        self._app = app
        self._documents = documents
        self._authn = authn

    # --- sessions ----------------------------------------------------------------------

    async def CreateSession(self, request: pb.CreateSessionRequest, context: Ctx) -> pb.CreateSessionResponse:
        caller = await self._authn.caller(context)
        session = await self._app.create_session(caller, request.title, request.description,
                                             request.language)
        return pb.CreateSessionResponse(session=session_pb(session, Role.OWNER))

    async def ListSessions(self, request: pb.ListSessionsRequest, context: Ctx) -> pb.ListSessionsResponse:
        caller = await self._authn.caller(context)
        page = await self._app.list_sessions(caller, request.limit, request.cursor)
        reply = pb.ListSessionsResponse(next_cursor=page.next_cursor)
        for session, role in page.items:
            add_session(reply.sessions, session, role)
        return reply

    async def GetSession(self, request: pb.GetSessionRequest, context: Ctx) -> pb.GetSessionResponse:
        caller = await self._authn.caller(context)
        session, role, last_seq = await self._app.get_session(caller, request.session_id,
                                                          request.include_last_seq)
        return pb.GetSessionResponse(session=session_pb(session, role, last_seq))

    async def UpdateSession(self, request: pb.UpdateSessionRequest, context: Ctx) -> pb.UpdateSessionResponse:
        caller = await self._authn.caller(context)
        session = await self._app.update_session(
            caller, request.session_id,
            title=request.title if request.HasField("title") else None,
            description=request.description if request.HasField("description") else None,
            language=request.language if request.HasField("language") else None,
            expected_version=(request.expected_version if request.HasField("expected_version")
                              else None))
        return pb.UpdateSessionResponse(session=session_pb(session, Role.OWNER))

    async def EndSession(self, request: pb.EndSessionRequest, context: Ctx) -> pb.EndSessionResponse:
        caller = await self._authn.caller(context)
        session = await self._app.end_session(caller, request.session_id)
        return pb.EndSessionResponse(session=session_pb(session, Role.OWNER))

    async def DeleteSession(self, request: pb.DeleteSessionRequest, context: Ctx) -> pb.DeleteSessionResponse:
        caller = await self._authn.caller(context)
        await self._app.delete_session(caller, request.session_id)
        return pb.DeleteSessionResponse()

    # --- members -----------------------------------------------------------------------

    async def ListMembers(self, request: pb.ListMembersRequest, context: Ctx) -> pb.ListMembersResponse:
        caller = await self._authn.caller(context)
        members = await self._app.list_members(caller, request.session_id)
        return pb.ListMembersResponse(members=[member_pb(m) for m in members])

    async def UpdateMember(self, request: pb.UpdateMemberRequest, context: Ctx) -> pb.UpdateMemberResponse:
        caller = await self._authn.caller(context)
        member = await self._app.update_member(caller, request.session_id, request.user_id,
                                            _PB_ROLE.get(request.role))
        return pb.UpdateMemberResponse(member=member_pb(member))

    async def RemoveMember(self, request: pb.RemoveMemberRequest, context: Ctx) -> pb.RemoveMemberResponse:
        caller = await self._authn.caller(context)
        await self._app.remove_member(caller, request.session_id, request.user_id)
        return pb.RemoveMemberResponse()

    async def TransferOwnership(
            self, request: pb.TransferOwnershipRequest, context: Ctx,
    ) -> pb.TransferOwnershipResponse:
        caller = await self._authn.caller(context)
        session, role = await self._app.transfer_ownership(caller, request.session_id,
                                                       request.new_owner_id)
        return pb.TransferOwnershipResponse(session=session_pb(session, role))

    async def GetMembership(self, request: pb.GetMembershipRequest, context: Ctx) -> pb.GetMembershipResponse:
        caller = await self._authn.caller(context)
        found = await self._app.get_membership(caller, request.session_id, request.user_id)
        return pb.GetMembershipResponse(role=_role(found.role), status=_STATUS_PB[found.status])

    # --- invitations -------------------------------------------------------------------

    async def CreateInvitation(self, request: pb.CreateInvitationRequest, context: Ctx) -> pb.CreateInvitationResponse:
        caller = await self._authn.caller(context)
        created = await self._app.create_invitation(
            caller, request.session_id, request.github_login, _PB_ROLE.get(request.role),
            int(request.expires_in_seconds), request.max_uses)
        return pb.CreateInvitationResponse(invitation=invitation_pb(created.invitation,
                                                                    created.token))

    async def ListInvitations(self, request: pb.ListInvitationsRequest, context: Ctx) -> pb.ListInvitationsResponse:
        caller = await self._authn.caller(context)
        page = await self._app.list_invitations(caller, request.limit, request.cursor)
        return pb.ListInvitationsResponse(invitations=[invitation_pb(r) for r in page.items],
                                          next_cursor=page.next_cursor)

    async def AcceptInvitation(self, request: pb.AcceptInvitationRequest, context: Ctx) -> pb.AcceptInvitationResponse:
        caller = await self._authn.caller(context)
        session, role = await self._app.accept_invitation(caller, request.invitation_id, request.token)
        return pb.AcceptInvitationResponse(session=session_pb(session, role), role=_role(role))

    async def PreviewInvitation(
            self, request: pb.PreviewInvitationRequest, context: Ctx,
    ) -> pb.PreviewInvitationResponse:
        caller = await self._authn.caller(context)
        inv, session, role = await self._app.preview_invitation(caller, request.token)
        return pb.PreviewInvitationResponse(invitation=invitation_pb(inv),
                                            session=session_pb(session, role))

    async def DeclineInvitation(
            self, request: pb.DeclineInvitationRequest, context: Ctx,
    ) -> pb.DeclineInvitationResponse:
        caller = await self._authn.caller(context)
        await self._app.decline_invitation(caller, request.invitation_id)
        return pb.DeclineInvitationResponse()

    async def RevokeInvitation(self, request: pb.RevokeInvitationRequest, context: Ctx) -> pb.RevokeInvitationResponse:
        caller = await self._authn.caller(context)
        await self._app.revoke_invitation(caller, request.invitation_id)
        return pb.RevokeInvitationResponse()

    # --- chat and events ---------------------------------------------------------------

    async def PostMessage(self, request: pb.PostMessageRequest, context: Ctx) -> pb.PostMessageResponse:
        caller = await self._authn.caller(context)
        message = await self._app.post_message(caller, request.session_id, request.body,
                                           request.client_id)
        return pb.PostMessageResponse(message=message_pb(message))

    async def ListMessages(self, request: pb.ListMessagesRequest, context: Ctx) -> pb.ListMessagesResponse:
        caller = await self._authn.caller(context)
        messages, next_after = await self._app.list_messages(caller, request.session_id,
                                                             request.after_seq, request.limit)
        reply = pb.ListMessagesResponse(next_after_seq=next_after)
        for message in messages:
            add_message(reply.messages, message)
        return reply

    async def ListEvents(self, request: pb.ListEventsRequest, context: Ctx) -> pb.ListEventsResponse:
        caller = await self._authn.caller(context)
        events, more = await self._app.list_events(caller, request.session_id, request.after_seq,
                                                   request.limit)
        return pb.ListEventsResponse(events=[event_pb(e) for e in events], has_more=more)

    async def AppendEvent(self, request: pb.AppendEventRequest, context: Ctx) -> pb.AppendEventResponse:
        caller = await self._authn.internal(context)
        event = await self._app.append_event(caller, request.session_id, request.type,
                                             request.payload_json, request.ephemeral)
        return pb.AppendEventResponse(event=event_pb(event))

    # --- the shared document ------------------------------------------------------------

    async def GetDocument(self, request: pb.GetDocumentRequest, context: Ctx) -> pb.GetDocumentResponse:
        caller = await self._authn.caller(context)
        doc = await self._documents.get_document(caller, request.session_id)
        return pb.GetDocumentResponse(text=doc.text, version=doc.version,
                                      updated_at=_optional_ts(doc.updated_at))

    async def SyncDocument(self, request: pb.SyncDocumentRequest, context: Ctx) -> pb.SyncDocumentResponse:
        caller = await self._authn.caller(context)
        answer = await self._documents.sync(caller, request.session_id,
                                            bytes(request.state_vector))
        return pb.SyncDocumentResponse(update=answer.update, state_vector=answer.state_vector,
                                       version=answer.version)

    async def ApplyDocumentUpdate(
            self, request: pb.ApplyDocumentUpdateRequest, context: Ctx,
    ) -> pb.ApplyDocumentUpdateResponse:
        caller = await self._authn.caller(context)
        version = await self._documents.apply_update(caller, request.session_id,
                                                     bytes(request.update))
        return pb.ApplyDocumentUpdateResponse(version=version)

    # --- notifications -----------------------------------------------------------------

    async def ListNotifications(
            self, request: pb.ListNotificationsRequest, context: Ctx,
    ) -> pb.ListNotificationsResponse:
        caller = await self._authn.caller(context)
        page = await self._app.list_notifications(caller, request.unread_only, request.limit,
                                                  request.cursor)
        return pb.ListNotificationsResponse(
            notifications=[notification_pb(r) for r in page.items], next_cursor=page.next_cursor)

    async def MarkNotificationRead(
            self, request: pb.MarkNotificationReadRequest, context: Ctx,
    ) -> pb.MarkNotificationReadResponse:
        caller = await self._authn.caller(context)
        await self._app.mark_notification_read(caller, request.notification_id)
        return pb.MarkNotificationReadResponse()
