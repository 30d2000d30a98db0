"""The permission matrix: every session-scoped route of the OpenAPI document x {owner, editor,
viewer, non-member, no token} answers what docs/api.md gives (401, 404, 403, or success)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from bench.realtime_scenarios import ws_url
from gateway.app import build_routes
from tests.helpers.identity import SignedIn
from tests.helpers.realtime import Crew, refused
from tests.reliability.support import FaultyWorld, assert_error
from tests.security.conftest import REPO

pytestmark = pytest.mark.e2e

RANK = {"viewer": 1, "editor": 2, "owner": 3}
# The least role each session-scoped operation needs (docs/api.md: viewers read everything
# and chat; editors also edit, review and ask the AI; owners do everything). A route the
# document gains fails test_every_session_scoped_route_is_in_the_matrix until added here.
LEAST_ROLE = {
    "GET /api/v1/sessions/{id}": "viewer",
    "PATCH /api/v1/sessions/{id}": "owner",
    "DELETE /api/v1/sessions/{id}": "owner",
    "POST /api/v1/sessions/{id}/end": "owner",
    "POST /api/v1/sessions/{id}/transfer": "owner",
    "GET /api/v1/sessions/{id}/members": "viewer",
    "PATCH /api/v1/sessions/{id}/members/{user_id}": "owner",
    # Another member: the owner only (leaving yourself is allowed; see the test below).
    "DELETE /api/v1/sessions/{id}/members/{user_id}": "owner",
    "GET /api/v1/sessions/{id}/messages": "viewer",
    "POST /api/v1/sessions/{id}/messages": "viewer",
    "POST /api/v1/sessions/{id}/invitations": "owner",
    "DELETE /api/v1/invitations/{id}": "owner",
    "GET /api/v1/sessions/{id}/document": "viewer",
    "GET /api/v1/sessions/{id}/events": "viewer",
    "GET /api/v1/sessions/{id}/doc": "viewer",
    "POST /api/v1/sessions/{id}/reviews": "editor",
    "GET /api/v1/sessions/{id}/reviews": "viewer",
    "GET /api/v1/reviews/{id}": "viewer",
    "GET /api/v1/reviews/{id}/files/{path}": "viewer",
    "POST /api/v1/reviews/{id}/threads": "editor",
    "GET /api/v1/reviews/{id}/threads": "viewer",
    "POST /api/v1/reviews/{id}/threads/{thread_id}/comments": "editor",
    "POST /api/v1/reviews/{id}/threads/{thread_id}/resolve": "editor",
    "POST /api/v1/reviews/{id}/threads/{thread_id}/unresolve": "editor",
    "POST /api/v1/reviews/{id}/verdicts": "editor",
    "POST /api/v1/reviews/{id}/publish": "owner",
    "POST /api/v1/reviews/{id}/ai": "editor",
    "POST /api/v1/sessions/{id}/ai": "editor",
    "GET /api/v1/reviews/{id}/ai": "viewer",
    "GET /api/v1/sessions/{id}/ai": "viewer",
    "GET /api/v1/ai/jobs/{job_id}": "viewer",
    # The job's requester, or editor+ (the owner requested it here).
    "POST /api/v1/ai/jobs/{job_id}/cancel": "editor",
}
SOCKETS = {"GET /api/v1/sessions/{id}/events", "GET /api/v1/sessions/{id}/doc"}
# Allowed, and still refused for the state of the thing: cancelling a job that already ended.
ALSO_ALLOWED = {"POST /api/v1/ai/jobs/{job_id}/cancel": {409}}
ACTORS = ("no token", "non-member", "viewer", "editor", "owner")


def _document() -> dict[str, Any]:
    # The same route table serves /openapi.json (test_served_document_is_the_generated_one).
    return build_routes().document("Tandem API", "test", "http://127.0.0.1")


def _scoped(template: str, method: str) -> bool:
    return (template.startswith(("/api/v1/sessions/{id}", "/api/v1/reviews/{id}", "/api/v1/ai/jobs/"))
            or (method == "delete" and template == "/api/v1/invitations/{id}"))


OPERATIONS = [(f"{method.upper()} {template}", op)
              for template, ops in _document()["paths"].items()
              for method, op in ops.items() if _scoped(template, method)]


def _success(op: dict[str, Any]) -> int:
    return min(int(code) for code in op["responses"] if code.startswith(("1", "2")))


@dataclass
class Room:
    """A fresh session with everything a route may need, so each route starts clean."""

    crew: Crew
    session_id: str
    review_id: str = ""
    thread_id: str = ""
    job_id: str = ""
    path: str = ""
    invitation_id: str = ""

    @classmethod
    def build(cls, crew: Crew, template: str) -> Room:
        """A session with its members, and what `template` names in it (made by the owner)."""
        room = cls(crew, crew.session(title="Matrix"))

        def made(path: str, body: dict[str, Any]) -> dict[str, Any]:
            reply = crew.call("POST", path, json=body)
            assert reply.status_code < 300, reply.text
            answer: dict[str, Any] = reply.json()
            return answer

        if template.startswith("/api/v1/reviews/"):
            review = made(f"/api/v1/sessions/{room.session_id}/reviews",
                          {"repo": REPO, "pull_number": 1})
            room.review_id, room.path = review["id"], review["files"][0]["path"]
            room.thread_id = made(f"/api/v1/reviews/{room.review_id}/threads",
                                  {"path": room.path, "line": 1, "body": "A question"})["id"]
        elif template.startswith("/api/v1/ai/jobs/"):
            room.job_id = made(f"/api/v1/sessions/{room.session_id}/ai", {})["job_id"]
        elif template.startswith("/api/v1/invitations/"):
            room.invitation_id = made(f"/api/v1/sessions/{room.session_id}/invitations",
                                      {"role": "viewer"})["id"]
        return room

    def path_for(self, template: str, actor: str) -> str:
        # Member routes act on the other non-owner member: never on the actor themself.
        target = self.crew.editor if actor == "viewer" else self.crew.viewer
        values = {"user_id": target.user_id, "thread_id": self.thread_id, "path": self.path,
                  "job_id": self.job_id}
        if template.startswith("/api/v1/reviews/"):
            values["id"] = self.review_id
        elif template.startswith("/api/v1/invitations/"):
            values["id"] = self.invitation_id
        else:
            values["id"] = self.session_id
        return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], template)

    def body_for(self, key: str) -> dict[str, Any] | None:
        bodies: dict[str, dict[str, Any]] = {
            "PATCH /api/v1/sessions/{id}": {"description": "changed"},
            "POST /api/v1/sessions/{id}/transfer": {"user_id": self.crew.editor.user_id},
            "PATCH /api/v1/sessions/{id}/members/{user_id}": {"role": "viewer"},
            "POST /api/v1/sessions/{id}/messages": {"body": "hello"},
            "POST /api/v1/sessions/{id}/invitations": {"role": "viewer"},
            "POST /api/v1/sessions/{id}/reviews": {"repo": REPO, "pull_number": 1},
            "POST /api/v1/reviews/{id}/threads": {"path": self.path, "line": 1, "body": "Hm"},
            "POST /api/v1/reviews/{id}/threads/{thread_id}/comments": {"body": "Agreed"},
            "POST /api/v1/reviews/{id}/verdicts": {"state": "comment", "body": "Looks fine"},
            "POST /api/v1/reviews/{id}/ai": {},
            "POST /api/v1/sessions/{id}/ai": {},
        }
        return bodies.get(key)


@pytest.fixture(scope="module")
def crew(secure: FaultyWorld) -> Crew:
    # People of this module alone: per-user AI job limits are not shared with other tests.
    return Crew.sign_in(secure.url)


def _who(crew: Crew, actor: str) -> SignedIn | None:
    return {"no token": None, "non-member": crew.stranger, "viewer": crew.viewer,
            "editor": crew.editor, "owner": crew.owner}[actor]


async def _socket(url: str, path: str, user: SignedIn | None) -> tuple[int, dict[str, Any]]:
    """101 when the handshake succeeds, else the refused status and its error body."""
    token = user.access_token if user else None
    try:
        async with connect(ws_url(url, path, token), proxy=None, open_timeout=5):
            return 101, {}
    except Exception:
        return await refused(url, path, token)


def test_every_session_scoped_route_is_in_the_matrix() -> None:
    assert {key for key, _ in OPERATIONS} == set(LEAST_ROLE)
    for key, op in OPERATIONS:
        documented = set(op["responses"])
        assert {"401", "404"} <= documented, key
        if LEAST_ROLE[key] != "viewer":
            assert "403" in documented, key


def test_served_document_is_the_generated_one(secure: FaultyWorld) -> None:
    served = httpx.get(secure.url + "/openapi.json", timeout=10).json()
    assert served["paths"] == _document()["paths"]


@pytest.mark.parametrize(("key", "op"), OPERATIONS, ids=[key for key, _ in OPERATIONS])
async def test_permission_matrix(secure: FaultyWorld, crew: Crew, key: str, op: dict[str, Any]) -> None:
    method, template = key.split(" ", 1)
    room = await asyncio.to_thread(Room.build, crew, template)
    least = LEAST_ROLE[key]
    got: dict[str, int] = {}
    # Refusals first, then the allowed roles (the owner last: some routes end or delete).
    for actor in ACTORS:
        user = _who(crew, actor)
        path = room.path_for(template, actor)
        if key in SOCKETS:
            status, body = await _socket(secure.url, path, user)
        else:
            headers = user.headers if user else {}
            reply = await asyncio.to_thread(
                httpx.request, method, secure.url + path, headers=headers,
                json=room.body_for(key), timeout=30)
            status = reply.status_code
            body = reply.json() if reply.content else {}
            if status >= 400:
                assert_error(reply, status, body["error"]["code"])
        got[actor] = status
        if actor == "no token":
            assert (status, body["error"]["code"]) == (401, "unauthenticated"), (actor, body)
        elif actor == "non-member":
            assert (status, body["error"]["code"]) == (404, "not_found"), (actor, body)
        elif RANK[actor] < RANK[least]:
            assert (status, body["error"]["code"]) == (403, "permission_denied"), (actor, body)
        else:
            assert status in {_success(op), *ALSO_ALLOWED.get(key, set())}, (actor, status, body)
    assert len(got) == len(ACTORS)


async def test_a_member_may_remove_themself_but_no_one_else(secure: FaultyWorld, crew: Crew) -> None:
    room = await asyncio.to_thread(Room.build, crew, "/api/v1/sessions/{id}/members/{user_id}")
    base = f"{secure.url}/api/v1/sessions/{room.session_id}/members/"

    def delete(user: SignedIn, target: SignedIn) -> httpx.Response:
        return httpx.delete(base + target.user_id, headers=user.headers, timeout=10)

    other = await asyncio.to_thread(delete, crew.viewer, crew.editor)
    assert_error(other, 403, "permission_denied")
    leave = await asyncio.to_thread(delete, crew.viewer, crew.viewer)
    assert leave.status_code == 204, leave.text
    gone = await asyncio.to_thread(httpx.get, f"{secure.url}/api/v1/sessions/{room.session_id}",
                                   headers=crew.viewer.headers, timeout=10)
    assert_error(gone, 404, "not_found")
