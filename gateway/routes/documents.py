"""The shared document's text over REST (the live y-websocket route is in gateway/realtime)."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field
from tandem.sessions.v1 import sessions_pb2 as pb

from gateway import keys
from gateway.auth import authenticate
from gateway.http import Schema, json_response
from gateway.openapi import Operation, RouteTable
from gateway.routes.sessions import session_path_id
from services.common.timeconv import rfc3339


class DocumentOut(Schema):
    text: str = Field(description='The current text of the shared Y.Text "code"')
    version: int = Field(description="Incremented by every stored update")
    updated_at: str | None = Field(description="RFC 3339 UTC; null before the first edit")


async def get_document(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("sessions", "GetDocument", backends.sessions.GetDocument,
                                pb.GetDocumentRequest(session_id=session_path_id(request)),
                                token=auth.token)
    return json_response({"text": reply.text, "version": reply.version,
                          "updated_at": rfc3339(reply.updated_at)})


def add_routes(table: RouteTable) -> None:
    table.add(Operation("GET", "/api/v1/sessions/{id}/document", get_document,
                        "The shared document's current text (any member)", "sessions",
                        response=DocumentOut, errors=(404, 429)))
