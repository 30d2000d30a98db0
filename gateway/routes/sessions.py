"""Session routes: sessions, members, ownership transfer and chat messages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from aiohttp import web
from pydantic import ConfigDict, Field, field_validator
from tandem.auth.v1 import auth_pb2
from tandem.sessions.v1 import sessions_pb2 as pb

from gateway import keys
from gateway.auth import Auth, authenticate
from gateway.errors import ApiError
from gateway.http import Schema, json_response, no_content, parse_json, path_uuid, query_int
from gateway.idempotency import HEADER_DOC, idempotent
from gateway.openapi import Operation, RouteTable
from services.common.context import session_id_var
from services.common.timeconv import rfc3339

RoleName = Literal["owner", "editor", "viewer"]
ROLE_NAMES: dict[pb.Role.ValueType, RoleName] = {pb.ROLE_OWNER: "owner", pb.ROLE_EDITOR: "editor",
                                   pb.ROLE_VIEWER: "viewer"}
ROLE_PB = {name: value for value, name in ROLE_NAMES.items()}
_STATUS_NAMES = {pb.SESSION_STATUS_ACTIVE: "active", pb.SESSION_STATUS_ENDED: "ended"}
_CURSOR_MAX = 512
LIMIT_QUERY = ("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
          "Page size")
CURSOR_QUERY = ("cursor", {"type": "string"}, "The next_cursor of the previous page")


# --- response bodies -----------------------------------------------------------------


class UserRef(Schema):
    id: str = Field(description="Tandem user id (UUID)")
    github_login: str
    name: str
    avatar_url: str
    created_at: str | None = Field(description="RFC 3339 UTC; null for a user auth no longer knows")


class SessionOut(Schema):
    id: str
    title: str = Field(description="1..200 characters")
    description: str = Field(description="At most 2000 characters")
    language: str = Field(description="Language identifier such as python; plaintext by default")
    status: Literal["active", "ended"]
    owner_id: str
    role: RoleName | None = Field(description="The caller's role in this session")
    version: int = Field(description="Incremented by every change; send it back in If-Match")
    created_at: str
    updated_at: str


class SessionList(Schema):
    items: list[SessionOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last")


class MemberOut(Schema):
    user: UserRef
    role: RoleName
    joined_at: str


class MemberList(Schema):
    items: list[MemberOut]
    next_cursor: str | None = Field(description="Always null: members come in one page")


class MessageOut(Schema):
    id: str
    seq: int = Field(description="The session's sequence number of this message")
    author: UserRef
    body: str
    created_at: str
    client_id: str | None = Field(description="The sender's client_id, if one was given")


class MessageList(Schema):
    items: list[MessageOut]
    next_cursor: str | None = Field(
        description="The after_seq for the next page (also accepted as cursor); null on the last")


# --- request bodies ------------------------------------------------------------------


class SessionCreateIn(Schema):
    title: str = Field(min_length=1, max_length=200,
                       description="1..200 characters; surrounding and repeated spaces collapse")
    description: str = Field(default="", max_length=2000)
    language: str = Field(default="", max_length=32, description=(
        "A language identifier: lower-case letters, digits and + # . _ - (python, c++, "
        "objective-c); empty means plaintext"))


def refuse_null(value: Any) -> Any:
    """Optional fields may be left out, but an explicit null is a mistake worth a 400."""
    if value is None:
        raise ValueError("must not be null; leave the field out instead")
    return value


def _patch_schema(schema: dict[str, Any]) -> None:
    """Say in /openapi.json what the handler enforces: at least one field, and no nulls."""
    schema["minProperties"] = 1
    for prop in schema.get("properties", {}).values():
        choices = prop.pop("anyOf", None)
        if choices is not None:
            prop.update(next(c for c in choices if c.get("type") != "null"))
        prop.pop("default", None)


class SessionPatchIn(Schema):
    model_config = ConfigDict(defer_build=True, json_schema_extra=_patch_schema)

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    language: str | None = Field(default=None, max_length=32)

    _no_nulls = field_validator("title", "description", "language", mode="before")(refuse_null)


class MemberPatchIn(Schema):
    role: Literal["editor", "viewer"] = Field(
        description="The owner's role moves only with POST /api/v1/sessions/{id}/transfer")


class TransferIn(Schema):
    user_id: str = Field(min_length=1, max_length=64,
                         description="A member of the session who becomes its owner")


class MessageIn(Schema):
    body: str = Field(min_length=1, max_length=4000, description=(
        "1..4000 characters after control characters (except newline and tab) are removed"))
    client_id: str | None = Field(default=None, min_length=1, max_length=64, description=(
        "The sender's id for this message: a repeat with the same client_id returns the "
        "stored message"))


# --- shapes --------------------------------------------------------------------------


def session_out(session: pb.Session) -> dict[str, Any]:
    return {"id": session.id, "title": session.title, "description": session.description,
            "language": session.language, "status": _STATUS_NAMES[session.status],
            "owner_id": session.owner_id, "role": ROLE_NAMES.get(session.role),
            "version": session.version, "created_at": rfc3339(session.created_at),
            "updated_at": rfc3339(session.updated_at)}


def _session_response(session: pb.Session, status: int = 200) -> web.Response:
    headers = {"ETag": f'"{session.version}"'}
    if status == 201:
        headers["Location"] = f"/api/v1/sessions/{session.id}"
    return json_response(session_out(session), status, headers)


def _ghost(user_id: str) -> dict[str, Any]:
    # GitHub's name for an account that no longer exists.
    return {"id": user_id, "github_login": "ghost", "name": "", "avatar_url": "",
            "created_at": None}


async def users_by_id(request: web.Request, auth: Auth, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """User objects for the ids: from the gateway's short-lived cache, else one BatchGetUsers call."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    cache = request.app[keys.USER_CACHE]
    found, missing = cache.get_many(wanted)
    if missing:
        backends = request.app[keys.BACKENDS]
        reply = await backends.call("auth", "BatchGetUsers", backends.auth.BatchGetUsers,
                                    auth_pb2.BatchGetUsersRequest(user_ids=missing), token=auth.token)
        for u in reply.users:
            profile = {"id": u.id, "github_login": u.github_login, "name": u.name,
                       "avatar_url": u.avatar_url, "created_at": rfc3339(u.created_at)}
            cache.put(u.id, profile)
            found[u.id] = profile
    return {i: found.get(i) or _ghost(i) for i in wanted}


def _member_out(member: pb.Member, users: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"user": users.get(member.user_id) or _ghost(member.user_id),
            "role": ROLE_NAMES[member.role], "joined_at": rfc3339(member.joined_at)}


def _message_out(message: pb.Message, users: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"id": message.id, "seq": message.seq,
            "author": users.get(message.author_id) or _ghost(message.author_id),
            "body": message.body, "created_at": rfc3339(message.created_at),
            "client_id": message.client_id or None}


def query_cursor(request: web.Request) -> str:
    cursor = request.query.get("cursor", "")
    if len(cursor) > _CURSOR_MAX:
        raise ApiError(400, "invalid_argument", "cursor is not a cursor returned by this list",
                       [{"field": "cursor", "message": "is not a cursor returned by this list"}])
    return cursor


def session_path_id(request: web.Request) -> str:
    session_id = path_uuid(request, "id", "session")
    session_id_var.set(session_id)
    return session_id


def _if_match(request: web.Request) -> int | None:
    """If-Match: "<version>" (quotes and W/ optional); anything else is a 400."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 18:
        raise ApiError(400, "invalid_argument", 'If-Match must be a session version, e.g. "3"',
                       [{"field": "If-Match", "message": 'must be a session version, e.g. "3"'}])
    return int(value)


# --- sessions ------------------------------------------------------------------------


async def create_session(request: web.Request) -> web.Response:
    auth = await authenticate(request)

    async def run() -> web.Response:
        body = await parse_json(request, SessionCreateIn)
        backends = request.app[keys.BACKENDS]
        reply = await backends.call("sessions", "CreateSession", backends.sessions.CreateSession,
                                    pb.CreateSessionRequest(title=body.title,
                                                            description=body.description,
                                                            language=body.language),
                                    token=auth.token)
        return _session_response(reply.session, 201)

    return await idempotent(request, auth.user_id, run)


async def list_sessions(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    limit = query_int(request, "limit", 20, 1, 100)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "ListSessions", backends.sessions.ListSessions,
                                pb.ListSessionsRequest(limit=limit, cursor=query_cursor(request)),
                                token=auth.token)
    return json_response({"items": [session_out(s) for s in reply.sessions],
                          "next_cursor": reply.next_cursor or None})


async def get_session(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "GetSession", backends.sessions.GetSession,
                                pb.GetSessionRequest(session_id=session_path_id(request)),
                                token=auth.token)
    return _session_response(reply.session)


async def update_session(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    session_id = session_path_id(request)
    expected = _if_match(request)
    body = await parse_json(request, SessionPatchIn)
    given = body.model_fields_set
    if not given:
        raise ApiError(400, "invalid_argument", "nothing to update: give title, description or "
                       "language", [{"field": "body", "message": "at least one field is required"}])
    req = pb.UpdateSessionRequest(session_id=session_id)
    for name in ("title", "description", "language"):
        if name in given:
            setattr(req, name, getattr(body, name))
    if expected is not None:
        req.expected_version = expected
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "UpdateSession", backends.sessions.UpdateSession, req,
                                token=auth.token)
    return _session_response(reply.session)


async def end_session(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "EndSession", backends.sessions.EndSession,
                                pb.EndSessionRequest(session_id=session_path_id(request)),
                                token=auth.token)
    return _session_response(reply.session)


async def delete_session(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    backends = request.app[keys.BACKENDS]
    await backends.call("sessions", "DeleteSession", backends.sessions.DeleteSession,
                        pb.DeleteSessionRequest(session_id=session_path_id(request)), token=auth.token)
    return no_content()


async def transfer(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    session_id = session_path_id(request)
    body = await parse_json(request, TransferIn)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "TransferOwnership", backends.sessions.TransferOwnership,
                                pb.TransferOwnershipRequest(session_id=session_id,
                                                            new_owner_id=body.user_id),
                                token=auth.token)
    return _session_response(reply.session)


# --- members -------------------------------------------------------------------------


async def list_members(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "ListMembers", backends.sessions.ListMembers,
                                pb.ListMembersRequest(session_id=session_path_id(request)),
                                token=auth.token)
    users = await users_by_id(request, auth, (m.user_id for m in reply.members))
    return json_response({"items": [_member_out(m, users) for m in reply.members],
                          "next_cursor": None})


async def update_member(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    session_id = session_path_id(request)
    user_id = path_uuid(request, "user_id", "member")
    body = await parse_json(request, MemberPatchIn)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "UpdateMember", backends.sessions.UpdateMember,
                                pb.UpdateMemberRequest(session_id=session_id, user_id=user_id,
                                                       role=ROLE_PB[body.role]),
                                token=auth.token)
    users = await users_by_id(request, auth, [reply.member.user_id])
    return json_response(_member_out(reply.member, users))


async def remove_member(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    session_id = session_path_id(request)
    user_id = path_uuid(request, "user_id", "member")
    backends = request.app[keys.BACKENDS]
    await backends.call("sessions", "RemoveMember", backends.sessions.RemoveMember,
                        pb.RemoveMemberRequest(session_id=session_id, user_id=user_id),
                        token=auth.token)
    return no_content()


# --- messages ------------------------------------------------------------------------


async def list_messages(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    session_id = session_path_id(request)
    after = query_int(request, "after_seq", 0, 0, 2**62)
    if "after_seq" not in request.query and request.query.get("cursor"):
        after = query_int(request, "cursor", 0, 0, 2**62)
    limit = query_int(request, "limit", 50, 1, 100)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "ListMessages", backends.sessions.ListMessages,
                                pb.ListMessagesRequest(session_id=session_id, after_seq=after,
                                                       limit=limit), token=auth.token)
    users = await users_by_id(request, auth, (m.author_id for m in reply.messages))
    return json_response({"items": [_message_out(m, users) for m in reply.messages],
                          "next_cursor": str(reply.next_after_seq) if reply.next_after_seq else None})


async def post_message(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    session_id = session_path_id(request)

    async def run() -> web.Response:
        body = await parse_json(request, MessageIn)
        backends = request.app[keys.BACKENDS]
        reply = await backends.call("sessions", "PostMessage", backends.sessions.PostMessage,
                                    pb.PostMessageRequest(session_id=session_id, body=body.body,
                                                          client_id=body.client_id or ""),
                                    token=auth.token)
        # The author is the caller: their profile comes from auth like every other user's,
        # but the message is already stored, so an auth outage must not turn the answer
        # into an error: fall back to what the caller's token says about them.
        try:
            users = await users_by_id(request, auth, [reply.message.author_id])
        except ApiError as exc:
            if exc.status != 503:
                raise
            users = {auth.user_id: {"id": auth.user_id, "github_login": auth.claims.login,
                                    "name": "", "avatar_url": "", "created_at": None}}
        return json_response(_message_out(reply.message, users), 201)

    return await idempotent(request, auth.user_id, run)


def add_routes(table: RouteTable) -> None:
    sessions = "/api/v1/sessions"
    one = sessions + "/{id}"
    member = one + "/members/{user_id}"
    page = (LIMIT_QUERY, CURSOR_QUERY)
    if_match = (("If-Match", 'Optional: the version you last saw, e.g. "3"; 412 when the '
                             "session has changed since"),)
    table.add(Operation("POST", sessions, create_session, "Create a session (you are its owner)",
                        "sessions", status=201, request=SessionCreateIn, response=SessionOut,
                        errors=(409, 422, 429), headers=(HEADER_DOC,)))
    table.add(Operation("GET", sessions, list_sessions,
                        "Sessions you are a member of, newest first", "sessions",
                        response=SessionList, errors=(400, 429), query=page))
    table.add(Operation("GET", one, get_session, "One session, with your role", "sessions",
                        response=SessionOut, errors=(404, 429)))
    table.add(Operation("PATCH", one, update_session, "Change title, description or language "
                        "(owner)", "sessions", request=SessionPatchIn, response=SessionOut,
                        errors=(403, 404, 409, 412, 429), headers=if_match))
    table.add(Operation("POST", one + "/end", end_session, "End the session (owner); the "
                        "document becomes read-only and live clients are told", "sessions",
                        response=SessionOut, errors=(403, 404, 429)))
    table.add(Operation("DELETE", one, delete_session, "Delete the session and everything in it "
                        "(owner): its reviews, threads, verdicts, AI jobs and findings follow "
                        "within seconds, running AI jobs are cut", "sessions", status=204,
                        errors=(403, 404, 429)))
    table.add(Operation("POST", one + "/transfer", transfer, "Make another member the owner "
                        "(owner); you become an editor", "sessions", request=TransferIn,
                        response=SessionOut, errors=(403, 404, 409, 429)))
    table.add(Operation("GET", one + "/members", list_members, "The session's members", "members",
                        response=MemberList, errors=(404, 429)))
    table.add(Operation("PATCH", member, update_member, "Change a member's role (owner)",
                        "members", request=MemberPatchIn, response=MemberOut,
                        errors=(403, 404, 409, 429)))
    table.add(Operation("DELETE", member, remove_member, "Remove a member (owner), or leave "
                        "(yourself)", "members", status=204, errors=(403, 404, 409, 429)))
    table.add(Operation("GET", one + "/messages", list_messages,
                        "Chat history, ascending by seq", "messages", response=MessageList,
                        errors=(400, 404, 429), query=(
                            ("after_seq", {"type": "integer", "minimum": 0, "default": 0},
                             "Only messages with a larger seq"),
                            ("limit", {"type": "integer", "minimum": 1, "maximum": 100,
                                       "default": 50}, "Page size"),
                            ("cursor", {"type": "string"},
                             "The next_cursor of the previous page (same as after_seq)"))))
    table.add(Operation("POST", one + "/messages", post_message,
                        "Send a chat message (any member); also delivered live", "messages",
                        status=201, request=MessageIn, response=MessageOut,
                        errors=(404, 409, 422, 429), headers=(HEADER_DOC,)))
