"""Invitation routes: invite by GitHub login or link, list yours, accept, decline, revoke."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import Field
from tandem.sessions.v1 import sessions_pb2 as pb

from gateway import keys
from gateway.auth import authenticate
from gateway.http import Schema, json_response, no_content, parse_json, path_uuid, query_int
from gateway.openapi import Operation, RouteTable
from gateway.routes.sessions import (
    CURSOR_QUERY,
    LIMIT_QUERY,
    ROLE_NAMES,
    ROLE_PB,
    RoleName,
    SessionOut,
    UserRef,
    query_cursor,
    session_out,
    session_path_id,
    users_by_id,
)
from services.common.timeconv import rfc3339

_STATES = {pb.INVITATION_STATUS_PENDING: "pending", pb.INVITATION_STATUS_ACCEPTED: "accepted",
           pb.INVITATION_STATUS_DECLINED: "declined", pb.INVITATION_STATUS_REVOKED: "revoked",
           pb.INVITATION_STATUS_EXPIRED: "expired"}


class InvitationIn(Schema):
    github_login: str | None = Field(default=None, min_length=1, max_length=39, description=(
        "Invite this GitHub user (they need not have signed in to Tandem yet); without it "
        "the answer carries a link token"))
    role: Literal["editor", "viewer"]
    expires_in: int | None = Field(default=None, ge=60, le=30 * 24 * 3600,
                            description="Seconds until it expires: 60..2592000, default 604800 (7 days)")
    max_uses: int | None = Field(default=None, ge=1, le=1000, description=(
        "Link invitations only: how many people may accept it (default 1)"))


class TokenIn(Schema):
    token: str = Field(min_length=1, max_length=256, description="The token of a link invitation")


class InvitationOut(Schema):
    id: str
    session_id: str
    session_title: str
    role: RoleName
    status: Literal["pending", "accepted", "declined", "revoked", "expired"]
    expires_at: str
    token: str | None = Field(description=(
        "Link invitations, in the create answer only: send it to POST /api/v1/invitations/accept. "
        "It is stored hashed and cannot be shown again"))
    github_login: str | None = Field(description="The invitee, for invitations to a login")
    invited_by: UserRef
    max_uses: int
    uses: int
    created_at: str


class InvitationList(Schema):
    items: list[InvitationOut]
    next_cursor: str | None


class AcceptOut(Schema):
    session: SessionOut
    role: RoleName = Field(description="Your role in the session now")


class SessionGlimpse(Schema):
    id: str
    title: str
    language: str
    status: Literal["active", "ended"]


class PreviewOut(Schema):
    session: SessionGlimpse
    role: RoleName = Field(description="The role accepting this invitation gives")
    expires_at: str
    status: Literal["pending", "expired", "revoked", "used"] = Field(description=(
        "pending: it can be accepted; used: every use of it is taken"))
    invited_by: UserRef
    member_role: RoleName | None = Field(description=(
        "Your role in the session already, or null when you are not a member"))


# A link invitation's state as its holder sees it: it can be used, or why not.
_PREVIEW_STATES = {pb.INVITATION_STATUS_PENDING: "pending", pb.INVITATION_STATUS_ACCEPTED: "used",
                   pb.INVITATION_STATUS_EXPIRED: "expired", pb.INVITATION_STATUS_REVOKED: "revoked",
                   pb.INVITATION_STATUS_DECLINED: "revoked"}


def _invitation_out(inv: pb.Invitation, users: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"id": inv.id, "session_id": inv.session_id, "session_title": inv.session_title,
            "role": ROLE_NAMES[inv.role], "status": _STATES[inv.status],
            "expires_at": rfc3339(inv.expires_at), "token": inv.token or None,
            "github_login": inv.github_login or None, "invited_by": users[inv.invited_by],
            "max_uses": inv.max_uses, "uses": inv.uses, "created_at": rfc3339(inv.created_at)}


async def create_invitation(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    session_id = session_path_id(request)
    body = await parse_json(request, InvitationIn)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "CreateInvitation", backends.sessions.CreateInvitation,
                                pb.CreateInvitationRequest(
                                    session_id=session_id, github_login=body.github_login or "",
                                    role=ROLE_PB[body.role], expires_in_seconds=body.expires_in or 0,
                                    max_uses=body.max_uses or 0), token=auth.token)
    users = await users_by_id(request, auth, [reply.invitation.invited_by])
    return json_response(_invitation_out(reply.invitation, users), 201,
                         headers={"Cache-Control": "no-store"})


async def list_invitations(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    limit = query_int(request, "limit", 20, 1, 100)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "ListInvitations", backends.sessions.ListInvitations,
                                pb.ListInvitationsRequest(limit=limit, cursor=query_cursor(request)),
                                token=auth.token)
    users = await users_by_id(request, auth, (i.invited_by for i in reply.invitations))
    return json_response({"items": [_invitation_out(i, users) for i in reply.invitations],
                          "next_cursor": reply.next_cursor or None})


async def _accept(request: web.Request, req: pb.AcceptInvitationRequest, token: str) -> web.Response:
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "AcceptInvitation", backends.sessions.AcceptInvitation,
                                req, token=token)
    return json_response({"session": session_out(reply.session), "role": ROLE_NAMES[reply.role]})


async def accept_by_id(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    invitation_id = path_uuid(request, "id", "invitation")
    return await _accept(request, pb.AcceptInvitationRequest(invitation_id=invitation_id),
                         auth.token)


async def _limit_token_guesses(request: web.Request, user_id: str) -> None:
    """Each lookup by token counts against a per-user limit as tight as sign-in's: tokens
    are 256 bits, but guessing must not be cheap to even try."""
    limit = request.app[keys.CONFIG].rate_auth_per_minute
    await request.app[keys.LIMITER].hit("invitation-token", user_id, limit, exact=True)


async def accept_by_token(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    body = await parse_json(request, TokenIn)
    await _limit_token_guesses(request, auth.user_id)
    return await _accept(request, pb.AcceptInvitationRequest(token=body.token), auth.token)


async def preview(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    body = await parse_json(request, TokenIn)
    await _limit_token_guesses(request, auth.user_id)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "PreviewInvitation", backends.sessions.PreviewInvitation,
                                pb.PreviewInvitationRequest(token=body.token), token=auth.token)
    inv, session = reply.invitation, reply.session
    users = await users_by_id(request, auth, [inv.invited_by])
    glimpse = session_out(session)
    return json_response({
        "session": {k: glimpse[k] for k in ("id", "title", "language", "status")},
        "role": ROLE_NAMES[inv.role], "expires_at": rfc3339(inv.expires_at),
        "status": _PREVIEW_STATES[inv.status], "invited_by": users[inv.invited_by],
        "member_role": glimpse["role"]}, headers={"Cache-Control": "no-store"})


async def decline(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    backends = request.app[keys.BACKENDS]
    await backends.call("sessions", "DeclineInvitation", backends.sessions.DeclineInvitation,
                        pb.DeclineInvitationRequest(
                            invitation_id=path_uuid(request, "id", "invitation")),
                        token=auth.token)
    return no_content()


async def revoke(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    backends = request.app[keys.BACKENDS]
    await backends.call("sessions", "RevokeInvitation", backends.sessions.RevokeInvitation,
                        pb.RevokeInvitationRequest(
                            invitation_id=path_uuid(request, "id", "invitation")),
                        token=auth.token)
    return no_content()


def add_routes(table: RouteTable) -> None:
    one = "/api/v1/invitations/{id}"
    table.add(Operation("POST", "/api/v1/sessions/{id}/invitations", create_invitation,
                        "Invite a GitHub user, or create a link invitation (owner)", "invitations",
                        status=201, request=InvitationIn, response=InvitationOut,
                        errors=(403, 404, 409, 429)))
    table.add(Operation("GET", "/api/v1/invitations", list_invitations,
                        "Invitations addressed to you, pending first", "invitations",
                        response=InvitationList, errors=(400, 429), query=(LIMIT_QUERY, CURSOR_QUERY)))
    # The token routes first: "accept" and "preview" must not be taken for an invitation id.
    table.add(Operation("POST", "/api/v1/invitations/preview", preview,
                        "See a link invitation before accepting it: the session, the role, "
                        "whether it can still be used", "invitations", request=TokenIn,
                        response=PreviewOut, errors=(404, 429),
                        extra={"description": (
                            "POST, so the token stays out of URLs and logs. Changes nothing. "
                            "An unknown token is 404; one that can no longer be accepted is "
                            "200 with its `status`.")}))
    table.add(Operation("POST", "/api/v1/invitations/accept", accept_by_token,
                        "Accept a link invitation by its token (403: the owner removed you "
                        "after it was made)", "invitations", request=TokenIn,
                        response=AcceptOut, errors=(403, 404, 409, 410, 429)))
    table.add(Operation("POST", one + "/accept", accept_by_id,
                        "Accept an invitation addressed to you (accepting twice is harmless)",
                        "invitations", response=AcceptOut, errors=(403, 404, 409, 410, 429)))
    table.add(Operation("POST", one + "/decline", decline,
                        "Decline an invitation addressed to you (a link cannot be declined: 403)",
                        "invitations", status=204, errors=(403, 404, 409, 410, 429)))
    table.add(Operation("DELETE", one, revoke, "Revoke an invitation (session owner)",
                        "invitations", status=204, errors=(403, 404, 409, 429)))
