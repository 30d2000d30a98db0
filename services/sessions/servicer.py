"""gRPC servicer of the sessions service: proto <-> domain, nothing else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc
import orjson
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.timestamp_pb2 import Timestamp
from tandem.sessions.v1 import sessions_pb2, sessions_pb2_grpc

from services.common.identity import Authenticator
from services.common.timeconv import set_timestamp, to_timestamp
from services.sessions.documents import DocumentService
from services.sessions.domain import InvitationState, Role, Status, invitation_state
from services.sessions.repository import Event
from services.sessions.usecases import SessionsApp

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


def _ts(value: datetime) -> Timestamp:
    return to_timestamp(value)


def _role(value: str | Role | None) -> pb.Role.ValueType:
    # Role is a StrEnum: the stored string finds its member's entry without an Enum call.
    return _ROLE_PB[value] if value else pb.ROLE_UNSPECIFIED  # type: ignore[index]


def session_pb(row: dict[str, Any], role: str | Role | None, last_seq: int = 0) -> pb.Session:
    return pb.Session(
        id=str(row["id"]), title=row["title"], description=row["description"],
        language=row["language"], status=_STATUS_PB[row["status"]],
        owner_id=str(row["owner_id"]), role=_role(role), version=int(row["version"]),
        created_at=_ts(row["created_at"]), updated_at=_ts(row["updated_at"]), last_seq=last_seq)


def member_pb(row: dict[str, Any]) -> pb.Member:
    return pb.Member(user_id=str(row["user_id"]), role=_role(row["role"]),
                     joined_at=_ts(row["joined_at"]))


def invitation_pb(row: dict[str, Any], token: str = "") -> pb.Invitation:
    now = row.get("now") or datetime.now(row["expires_at"].tzinfo)
    state = invitation_state(row["status"], row["expires_at"], now)
    return pb.Invitation(
        id=str(row["id"]), session_id=str(row["session_id"]), role=_role(row["role"]),
        status=_INVITATION_PB[state], expires_at=_ts(row["expires_at"]), token=token,
        github_login=row["invitee_login"] or "", invited_by=str(row["invited_by"]),
        created_at=_ts(row["created_at"]), session_title=row.get("session_title") or "",
        max_uses=int(row["max_uses"]), uses=int(row["uses"]))


def add_session(sessions: RepeatedCompositeFieldContainer[pb.Session], row: dict[str, Any],
                role: str | Role | None) -> None:
    """Append a session to a repeated field, built in place: lists add up to 100 of them."""
    item = sessions.add(
        id=str(row["id"]), title=row["title"], description=row["description"],
        language=row["language"], status=_STATUS_PB[row["status"]],
        owner_id=str(row["owner_id"]), role=_role(role), version=int(row["version"]))
    set_timestamp(item.created_at, row["created_at"])
    set_timestamp(item.updated_at, row["updated_at"])


def add_message(messages: RepeatedCompositeFieldContainer[pb.Message], row: dict[str, Any]) -> None:
    """Append a message to a repeated field, built in place (a page holds up to 100)."""
    item = messages.add(id=str(row["id"]), session_id=str(row["session_id"]), seq=int(row["seq"]),
                        author_id=str(row["author_id"]), body=row["body"],
                        client_id=row["client_id"] or "")
    set_timestamp(item.created_at, row["created_at"])


def message_pb(row: dict[str, Any]) -> pb.Message:
    return pb.Message(id=str(row["id"]), session_id=str(row["session_id"]), seq=int(row["seq"]),
                      author_id=str(row["author_id"]), body=row["body"],
                      created_at=_ts(row["created_at"]), client_id=row["client_id"] or "")


def event_pb(event: Event) -> pb.Event:
    return pb.Event(session_id=event.session_id, seq=event.seq, type=event.type,
                    payload_json=orjson.dumps(event.payload).decode(), at=_ts(event.at))


def notification_pb(row: dict[str, Any]) -> pb.Notification:
    return pb.Notification(id=str(row["id"]), kind=row["kind"],
                           payload_json=orjson.dumps(row["payload"]).decode(),
                           read=row["read_at"] is not None, created_at=_ts(row["created_at"]))


class SessionsServiceServicer(sessions_pb2_grpc.SessionsServiceServicer):
    """Every RPC authenticates the caller; the use cases authorize against members."""

    def __init__(self, app: SessionsApp, documents: DocumentService, authn: Authenticator) -> None:
        self._app = app
        self._documents = documents
        self._authn = authn

    # --- sessions ----------------------------------------------------------------------

    async def CreateSession(self, request: pb.CreateSessionRequest, context: Ctx) -> pb.CreateSessionResponse:
        caller = await self._authn.caller(context)
        row = await self._app.create_session(caller, request.title, request.description,
                                             request.language)
        return pb.CreateSessionResponse(session=session_pb(row, Role.OWNER))

    async def ListSessions(self, request: pb.ListSessionsRequest, context: Ctx) -> pb.ListSessionsResponse:
        caller = await self._authn.caller(context)
        page = await self._app.list_sessions(caller, request.limit, request.cursor)
        reply = pb.ListSessionsResponse(next_cursor=page.next_cursor)
        for row in page.items:
            add_session(reply.sessions, row, row["role"])
        return reply

    async def GetSession(self, request: pb.GetSessionRequest, context: Ctx) -> pb.GetSessionResponse:
        caller = await self._authn.caller(context)
        row, role, last_seq = await self._app.get_session(caller, request.session_id,
                                                          request.include_last_seq)
        return pb.GetSessionResponse(session=session_pb(row, role, last_seq))

    async def UpdateSession(self, request: pb.UpdateSessionRequest, context: Ctx) -> pb.UpdateSessionResponse:
        caller = await self._authn.caller(context)
        row = await self._app.update_session(
            caller, request.session_id,
            title=request.title if request.HasField("title") else None,
            description=request.description if request.HasField("description") else None,
            language=request.language if request.HasField("language") else None,
            expected_version=(request.expected_version if request.HasField("expected_version")
                              else None))
        return pb.UpdateSessionResponse(session=session_pb(row, Role.OWNER))

    async def EndSession(self, request: pb.EndSessionRequest, context: Ctx) -> pb.EndSessionResponse:
        caller = await self._authn.caller(context)
        row = await self._app.end_session(caller, request.session_id)
        return pb.EndSessionResponse(session=session_pb(row, Role.OWNER))

    async def DeleteSession(self, request: pb.DeleteSessionRequest, context: Ctx) -> pb.DeleteSessionResponse:
        caller = await self._authn.caller(context)
        await self._app.delete_session(caller, request.session_id)
        return pb.DeleteSessionResponse()

    # --- members -----------------------------------------------------------------------

    async def ListMembers(self, request: pb.ListMembersRequest, context: Ctx) -> pb.ListMembersResponse:
        caller = await self._authn.caller(context)
        rows = await self._app.list_members(caller, request.session_id)
        return pb.ListMembersResponse(members=[member_pb(r) for r in rows])

    async def UpdateMember(self, request: pb.UpdateMemberRequest, context: Ctx) -> pb.UpdateMemberResponse:
        caller = await self._authn.caller(context)
        row = await self._app.update_member(caller, request.session_id, request.user_id,
                                            _PB_ROLE.get(request.role))
        return pb.UpdateMemberResponse(member=member_pb(row))

    async def RemoveMember(self, request: pb.RemoveMemberRequest, context: Ctx) -> pb.RemoveMemberResponse:
        caller = await self._authn.caller(context)
        await self._app.remove_member(caller, request.session_id, request.user_id)
        return pb.RemoveMemberResponse()

    async def TransferOwnership(
            self, request: pb.TransferOwnershipRequest, context: Ctx,
    ) -> pb.TransferOwnershipResponse:
        caller = await self._authn.caller(context)
        row, role = await self._app.transfer_ownership(caller, request.session_id,
                                                       request.new_owner_id)
        return pb.TransferOwnershipResponse(session=session_pb(row, role))

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
        return pb.CreateInvitationResponse(invitation=invitation_pb(created.row, created.token))

    async def ListInvitations(self, request: pb.ListInvitationsRequest, context: Ctx) -> pb.ListInvitationsResponse:
        caller = await self._authn.caller(context)
        page = await self._app.list_invitations(caller, request.limit, request.cursor)
        return pb.ListInvitationsResponse(invitations=[invitation_pb(r) for r in page.items],
                                          next_cursor=page.next_cursor)

    async def AcceptInvitation(self, request: pb.AcceptInvitationRequest, context: Ctx) -> pb.AcceptInvitationResponse:
        caller = await self._authn.caller(context)
        row, role = await self._app.accept_invitation(caller, request.invitation_id, request.token)
        return pb.AcceptInvitationResponse(session=session_pb(row, role), role=_role(role))

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
        row = await self._app.post_message(caller, request.session_id, request.body,
                                           request.client_id)
        return pb.PostMessageResponse(message=message_pb(row))

    async def ListMessages(self, request: pb.ListMessagesRequest, context: Ctx) -> pb.ListMessagesResponse:
        caller = await self._authn.caller(context)
        rows, next_after = await self._app.list_messages(caller, request.session_id,
                                                         request.after_seq, request.limit)
        reply = pb.ListMessagesResponse(next_after_seq=next_after)
        for row in rows:
            add_message(reply.messages, row)
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

    # --- the shared document (built by the realtime work in documents.py) -------------

    async def GetDocument(self, request: pb.GetDocumentRequest, context: Ctx) -> pb.GetDocumentResponse:
        return await self._documents.get_document(request, await self._authn.caller(context))

    async def SyncDocument(self, request: pb.SyncDocumentRequest, context: Ctx) -> pb.SyncDocumentResponse:
        return await self._documents.sync_document(request, await self._authn.caller(context))

    async def ApplyDocumentUpdate(
            self, request: pb.ApplyDocumentUpdateRequest, context: Ctx,
    ) -> pb.ApplyDocumentUpdateResponse:
        return await self._documents.apply_update(request, await self._authn.caller(context))

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
