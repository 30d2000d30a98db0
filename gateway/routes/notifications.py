"""Notification routes: your notifications (optionally unread only) and marking one read."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import Field
from tandem.sessions.v1 import sessions_pb2 as pb

from gateway import keys
from gateway.auth import authenticate
from gateway.errors import ApiError
from gateway.http import Schema, json_response, no_content, path_uuid, query_int
from gateway.openapi import Operation, RouteTable
from gateway.routes.sessions import CURSOR_QUERY, LIMIT_QUERY, query_cursor
from services.common.timeconv import rfc3339

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no", "")


class NotificationOut(Schema):
    id: str
    kind: str = Field(description=(
        "invitation.received, invitation.accepted, invitation.declined, member.role_changed, "
        "member.removed"))
    payload: dict[str, Any] = Field(description=(
        "Depends on kind; always session_id and session_title, plus invitation_id, role, "
        "invited_by, user_id, changed_by or removed_by"))
    read: bool
    created_at: str


class NotificationList(Schema):
    items: list[NotificationOut]
    next_cursor: str | None


def _unread(request: web.Request) -> bool:
    value = request.query.get("unread", "").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(400, "invalid_argument", "unread must be true or false",
                   [{"field": "unread", "message": "must be true or false"}])


async def list_notifications(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    limit = query_int(request, "limit", 20, 1, 100)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "ListNotifications", backends.sessions.ListNotifications,
                                pb.ListNotificationsRequest(unread_only=_unread(request), limit=limit,
                                                            cursor=query_cursor(request)),
                                token=auth.token)
    items = [{"id": n.id, "kind": n.kind, "payload": orjson.loads(n.payload_json), "read": n.read,
              "created_at": rfc3339(n.created_at)} for n in reply.notifications]
    return json_response({"items": items, "next_cursor": reply.next_cursor or None})


async def mark_read(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    backends = request.app[keys.BACKENDS]
    await backends.call("sessions", "MarkNotificationRead", backends.sessions.MarkNotificationRead,
                        pb.MarkNotificationReadRequest(
                            notification_id=path_uuid(request, "id", "notification")),
                        token=auth.token)
    return no_content()


def add_routes(table: RouteTable) -> None:
    table.add(Operation("GET", "/api/v1/notifications", list_notifications,
                        "Your notifications, newest first", "notifications",
                        response=NotificationList, errors=(400, 429), query=(
                            ("unread", {"type": "boolean", "default": False},
                             "Only notifications not yet read"), LIMIT_QUERY, CURSOR_QUERY)))
    table.add(Operation("POST", "/api/v1/notifications/{id}/read", mark_read,
                        "Mark a notification read", "notifications", status=204,
                        errors=(404, 429)))
