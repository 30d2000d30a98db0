"""Sessions, members, invitations, messages and notifications through the gateway, per docs/api.md."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from scripts.platform import LocalPlatform
from tests.helpers.identity import SignedIn, sign_in_http

pytestmark = pytest.mark.e2e

SESSION_KEYS = {"id", "title", "description", "language", "status", "owner_id", "role", "version",
                "created_at", "updated_at"}
USER_KEYS = {"id", "github_login", "name", "avatar_url", "created_at"}
MISSING = "0f8fad5b-d9cb-469f-a165-70867728950e"


class People:
    """Users signed in once for this module: sign-ins count against the per-IP auth limit."""

    def __init__(self, url: str) -> None:
        tag = secrets.token_hex(3)
        self.owner, self.editor, self.viewer, self.stranger, self.lister = (
            sign_in_http(url, f"{role}-{tag}")
            for role in ("owner", "editor", "viewer", "stranger", "lister"))


@pytest.fixture(scope="module")
def people(platform: LocalPlatform) -> People:
    return People(platform.url)


@pytest.fixture
def api(platform: LocalPlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform.url, timeout=10) as client:
        yield client


def _error(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    error: dict[str, Any] = reply.json()["error"]
    assert error["code"] == code, error
    assert error["request_id"] == reply.headers["X-Request-Id"]
    return error


def _create(api: httpx.Client, user: SignedIn, title: str = "Pairing", **extra: Any) -> dict[str, Any]:
    reply = api.post("/api/v1/sessions", json={"title": title, **extra}, headers=user.headers)
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _join(api: httpx.Client, people: People, session_id: str, user: SignedIn, role: str) -> None:
    invited = api.post(f"/api/v1/sessions/{session_id}/invitations",
                       json={"github_login": user.login, "role": role}, headers=people.owner.headers)
    assert invited.status_code == 201, invited.text
    accepted = api.post(f"/api/v1/invitations/{invited.json()['id']}/accept", headers=user.headers)
    assert accepted.status_code == 200, accepted.text


def _with_members(api: httpx.Client, people: People) -> dict[str, Any]:
    session = _create(api, people.owner)
    _join(api, people, session["id"], people.editor, "editor")
    _join(api, people, session["id"], people.viewer, "viewer")
    return session


def _sql(platform: LocalPlatform, query: str, *params: Any) -> None:
    with psycopg.connect(platform.env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(query.encode(), params)


# --- sessions ------------------------------------------------------------------------


def test_session_lifecycle_status_codes_and_shapes(api: httpx.Client, people: People) -> None:
    owner = people.owner.headers
    reply = api.post("/api/v1/sessions", json={"title": "Pairing", "description": "d",
                                               "language": "python", "unknown": 1}, headers=owner)
    assert reply.status_code == 201, reply.text
    session = reply.json()
    assert set(session) == SESSION_KEYS
    assert session["status"] == "active"
    assert session["role"] == "owner"
    assert session["owner_id"] == people.owner.user_id
    assert session["version"] == 1
    assert session["created_at"].endswith("Z")
    assert reply.headers["Location"] == f"/api/v1/sessions/{session['id']}"
    assert reply.headers["ETag"] == '"1"'
    url = f"/api/v1/sessions/{session['id']}"
    got = api.get(url, headers=owner)
    assert got.status_code == 200
    assert got.json() == session
    patched = api.patch(url, json={"title": "Renamed"}, headers={**owner, "If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2
    assert patched.json()["title"] == "Renamed"
    _error(api.patch(url, json={"title": "Late"}, headers={**owner, "If-Match": "1"}), 412,
           "precondition_failed")
    _error(api.patch(url, json={"title": "x"}, headers={**owner, "If-Match": "yesterday"}), 400,
           "invalid_argument")
    ended = api.post(url + "/end", headers=owner)
    assert ended.status_code == 200
    assert ended.json()["status"] == "ended"
    _error(api.patch(url, json={"title": "After"}, headers=owner), 409, "conflict")
    assert api.delete(url, headers=owner).status_code == 204
    _error(api.get(url, headers=owner), 404, "not_found")


def test_bad_session_input_names_the_field(api: httpx.Client, people: People) -> None:
    owner = people.owner.headers
    for body, field in (({"title": ""}, "title"), ({}, "title"), ({"title": "x" * 201}, "title"),
                        ({"title": "ok", "description": "d" * 2001}, "description"),
                        ({"title": "ok", "language": "no spaces"}, "language")):
        error = _error(api.post("/api/v1/sessions", json=body, headers=owner), 400,
                       "invalid_argument")
        assert error["details"][0]["field"] == field, error
    _error(api.post("/api/v1/sessions", content=b"{nope", headers=owner), 400, "invalid_argument")
    url = f"/api/v1/sessions/{_create(api, people.owner)['id']}"
    for body in ({}, {"unknown": "field"}, {"title": None}):
        _error(api.patch(url, json=body, headers=owner), 400, "invalid_argument")


def test_list_pages_newest_first(api: httpx.Client, people: People) -> None:
    created = [_create(api, people.lister, f"s{i}")["id"] for i in range(5)]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        reply = api.get("/api/v1/sessions", params=params, headers=people.lister.headers)
        assert reply.status_code == 200
        body = reply.json()
        assert set(body) == {"items", "next_cursor"}
        seen += [s["id"] for s in body["items"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen[:5] == list(reversed(created))
    _error(api.get("/api/v1/sessions", params={"limit": 0}, headers=people.lister.headers), 400,
           "invalid_argument")
    _error(api.get("/api/v1/sessions", params={"cursor": "bogus"}, headers=people.lister.headers),
           400, "invalid_argument")


def test_routes_need_a_token(api: httpx.Client) -> None:
    for method, path in (("GET", "/api/v1/sessions"), ("POST", "/api/v1/sessions"),
                         ("GET", "/api/v1/invitations"), ("GET", "/api/v1/notifications"),
                         ("GET", f"/api/v1/sessions/{MISSING}/messages")):
        _error(api.request(method, path), 401, "unauthenticated")


def test_ids_that_are_not_uuids_are_not_found(api: httpx.Client, people: People) -> None:
    session_id = _create(api, people.owner)["id"]
    owner = people.owner.headers
    for method, path in (("GET", "/api/v1/sessions/abc"), ("PATCH", "/api/v1/sessions/abc"),
                         ("DELETE", "/api/v1/sessions/abc"), ("POST", "/api/v1/sessions/abc/end"),
                         ("GET", "/api/v1/sessions/abc/members"),
                         ("PATCH", f"/api/v1/sessions/{session_id}/members/abc"),
                         ("DELETE", f"/api/v1/sessions/{session_id}/members/abc"),
                         ("GET", "/api/v1/sessions/1/messages"),
                         ("POST", "/api/v1/sessions/x/invitations"),
                         ("POST", "/api/v1/invitations/abc/accept"),
                         ("POST", "/api/v1/invitations/abc/decline"),
                         ("DELETE", "/api/v1/invitations/abc"),
                         ("POST", "/api/v1/notifications/abc/read")):
        _error(api.request(method, path, json={"title": "x", "role": "viewer"}, headers=owner), 404,
               "not_found")


def test_permissions_per_role_over_http(api: httpx.Client, people: People) -> None:
    session = _with_members(api, people)
    url = f"/api/v1/sessions/{session['id']}"
    for user, role in ((people.editor, "editor"), (people.viewer, "viewer")):
        got = api.get(url, headers=user.headers)
        assert got.json()["role"] == role
        _error(api.patch(url, json={"title": "mine"}, headers=user.headers), 403,
               "permission_denied")
        _error(api.post(url + "/end", headers=user.headers), 403, "permission_denied")
        _error(api.delete(url, headers=user.headers), 403, "permission_denied")
        _error(api.post(url + "/invitations", json={"role": "viewer"}, headers=user.headers), 403,
               "permission_denied")
    for method, path in (("GET", url), ("GET", url + "/members"), ("GET", url + "/messages"),
                         ("POST", url + "/messages"), ("PATCH", url), ("DELETE", url)):
        _error(api.request(method, path, json={"body": "hi", "title": "x"},
                           headers=people.stranger.headers), 404, "not_found")
    owner_member = f"{url}/members/{people.owner.user_id}"
    _error(api.patch(owner_member, json={"role": "editor"}, headers=people.owner.headers), 409,
           "failed_precondition")
    _error(api.delete(owner_member, headers=people.owner.headers), 409, "failed_precondition")
    _error(api.patch(f"{url}/members/{people.editor.user_id}", json={"role": "owner"},
                     headers=people.owner.headers), 400, "invalid_argument")


def test_members_list_change_role_remove_and_transfer(api: httpx.Client, people: People) -> None:
    session = _with_members(api, people)
    url = f"/api/v1/sessions/{session['id']}"
    members = api.get(url + "/members", headers=people.viewer.headers)
    assert members.status_code == 200
    body = members.json()
    assert body["next_cursor"] is None
    by_login = {m["user"]["github_login"]: m for m in body["items"]}
    assert set(by_login) == {people.owner.login, people.editor.login, people.viewer.login}
    for member in body["items"]:
        assert set(member) == {"user", "role", "joined_at"}
        assert set(member["user"]) == USER_KEYS
    assert by_login[people.viewer.login]["role"] == "viewer"
    changed = api.patch(f"{url}/members/{people.viewer.user_id}", json={"role": "editor"},
                        headers=people.owner.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "editor"
    assert changed.json()["user"]["id"] == people.viewer.user_id
    transferred = api.post(url + "/transfer", json={"user_id": people.editor.user_id},
                           headers=people.owner.headers)
    assert transferred.status_code == 200, transferred.text
    assert transferred.json()["owner_id"] == people.editor.user_id
    assert transferred.json()["role"] == "editor"
    _error(api.post(url + "/transfer", json={"user_id": people.owner.user_id},
                    headers=people.owner.headers), 403, "permission_denied")
    # The new owner removes someone; the former owner leaves on their own.
    assert api.delete(f"{url}/members/{people.viewer.user_id}",
                      headers=people.editor.headers).status_code == 204
    assert api.delete(f"{url}/members/{people.owner.user_id}",
                      headers=people.owner.headers).status_code == 204
    _error(api.get(url, headers=people.viewer.headers), 404, "not_found")


# --- invitations ---------------------------------------------------------------------


def test_invitation_by_login_is_listed_accepted_and_notified(
        api: httpx.Client, people: People) -> None:
    invitee = people.stranger
    session = _create(api, people.owner, "Invite me")
    created = api.post(f"/api/v1/sessions/{session['id']}/invitations",
                       json={"github_login": invitee.login, "role": "editor"},
                       headers=people.owner.headers)
    assert created.status_code == 201, created.text
    invitation = created.json()
    assert {"id", "role", "status", "expires_at", "token"} <= set(invitation)
    assert invitation["status"] == "pending"
    assert invitation["role"] == "editor"
    assert invitation["token"] is None
    assert invitation["invited_by"]["id"] == people.owner.user_id
    listed = api.get("/api/v1/invitations", headers=invitee.headers).json()
    mine = [i for i in listed["items"] if i["id"] == invitation["id"]]
    assert mine
    assert mine[0]["session_title"] == "Invite me"
    assert listed["items"][0]["status"] == "pending"
    for _ in range(2):
        accepted = api.post(f"/api/v1/invitations/{invitation['id']}/accept", headers=invitee.headers)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["role"] == "editor"
        assert accepted.json()["session"]["id"] == session["id"]
        assert set(accepted.json()["session"]) == SESSION_KEYS
    deadline = time.monotonic() + 10
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        notes = api.get("/api/v1/notifications", params={"unread": "true"}, headers=invitee.headers)
        assert notes.status_code == 200
        found = [n for n in notes.json()["items"]
                 if n["payload"].get("invitation_id") == invitation["id"]]
        time.sleep(0.1)
    assert found, "no notification for the invitation"
    note = found[0]
    assert set(note) == {"id", "kind", "payload", "read", "created_at"}
    assert note["kind"] == "invitation.received"
    assert note["read"] is False
    assert api.post(f"/api/v1/notifications/{note['id']}/read",
                    headers=invitee.headers).status_code == 204
    unread = api.get("/api/v1/notifications", params={"unread": "true"}, headers=invitee.headers)
    assert note["id"] not in [n["id"] for n in unread.json()["items"]]
    _error(api.post(f"/api/v1/notifications/{note['id']}/read", headers=people.owner.headers), 404,
           "not_found")
    _error(api.get("/api/v1/notifications", params={"unread": "maybe"}, headers=invitee.headers),
           400, "invalid_argument")


def test_link_invitation_single_use_expiry_decline_and_revoke(
        api: httpx.Client, people: People, platform: LocalPlatform) -> None:
    session = _create(api, people.owner)
    invitations = f"/api/v1/sessions/{session['id']}/invitations"
    link = api.post(invitations, json={"role": "viewer"}, headers=people.owner.headers).json()
    assert link["token"].startswith("tdi_")
    accepted = api.post("/api/v1/invitations/accept", json={"token": link["token"]},
                        headers=people.viewer.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["role"] == "viewer"
    _error(api.post("/api/v1/invitations/accept", json={"token": link["token"]},
                    headers=people.lister.headers), 410, "gone")
    _error(api.post("/api/v1/invitations/accept", json={"token": "tdi_unknown"},
                    headers=people.lister.headers), 404, "not_found")
    _error(api.post("/api/v1/invitations/accept", json={}, headers=people.lister.headers), 400,
           "invalid_argument")
    _error(api.post(invitations, json={"role": "owner"}, headers=people.owner.headers), 400,
           "invalid_argument")
    _error(api.post(invitations, json={"role": "viewer", "expires_in": 31 * 24 * 3600},
                    headers=people.owner.headers), 400, "invalid_argument")

    expiring = api.post(invitations, json={"role": "viewer", "expires_in": 60},
                        headers=people.owner.headers).json()
    _sql(platform, "UPDATE sessions.invitations SET expires_at = now() - interval '1 second' "
                   "WHERE id = %s", expiring["id"])
    _error(api.post("/api/v1/invitations/accept", json={"token": expiring["token"]},
                    headers=people.lister.headers), 410, "gone")

    declined = api.post(invitations, json={"github_login": people.lister.login, "role": "viewer"},
                        headers=people.owner.headers).json()
    assert api.post(f"/api/v1/invitations/{declined['id']}/decline",
                    headers=people.lister.headers).status_code == 204
    _error(api.post(f"/api/v1/invitations/{declined['id']}/accept", headers=people.lister.headers),
           410, "gone")

    revoked = api.post(invitations, json={"github_login": people.editor.login, "role": "editor"},
                       headers=people.owner.headers).json()
    _error(api.delete(f"/api/v1/invitations/{revoked['id']}", headers=people.editor.headers), 403,
           "permission_denied")
    assert api.delete(f"/api/v1/invitations/{revoked['id']}",
                      headers=people.owner.headers).status_code == 204
    _error(api.post(f"/api/v1/invitations/{revoked['id']}/accept", headers=people.editor.headers),
           410, "gone")


def test_links_are_not_declined_and_do_not_readmit_a_removed_member(
        api: httpx.Client, people: People) -> None:
    session = _create(api, people.owner)
    invitations = f"/api/v1/sessions/{session['id']}/invitations"
    used, other = (api.post(invitations, json={"role": "editor", "max_uses": 5},
                            headers=people.owner.headers).json() for _ in range(2))
    assert api.post("/api/v1/invitations/accept", json={"token": used["token"]},
                    headers=people.editor.headers).status_code == 200
    # Someone who used a multi-use link cannot close it for everyone else.
    _error(api.post(f"/api/v1/invitations/{used['id']}/decline", headers=people.editor.headers),
           403, "permission_denied")
    _error(api.post(f"/api/v1/invitations/{used['id']}/decline",
                    headers=people.stranger.headers), 404, "not_found")
    assert api.post("/api/v1/invitations/accept", json={"token": used["token"]},
                    headers=people.viewer.headers).status_code == 200
    # Removed by the owner: links made before the removal no longer admit them.
    assert api.delete(f"/api/v1/sessions/{session['id']}/members/{people.editor.user_id}",
                      headers=people.owner.headers).status_code == 204
    _error(api.post("/api/v1/invitations/accept", json={"token": other["token"]},
                    headers=people.editor.headers), 403, "permission_denied")
    fresh = api.post(invitations, json={"role": "viewer"}, headers=people.owner.headers).json()
    back = api.post("/api/v1/invitations/accept", json={"token": fresh["token"]},
                    headers=people.editor.headers)
    assert back.status_code == 200, back.text
    assert back.json()["role"] == "viewer"


# --- messages ------------------------------------------------------------------------


def test_messages_post_and_history(api: httpx.Client, people: People) -> None:
    session = _with_members(api, people)
    url = f"/api/v1/sessions/{session['id']}/messages"
    posted = []
    for user in (people.owner, people.editor, people.viewer):
        reply = api.post(url, json={"body": f"hi from {user.login}\x07"}, headers=user.headers)
        assert reply.status_code == 201, reply.text
        posted.append(reply.json())
    first = posted[0]
    assert {"id", "seq", "author", "body", "created_at"} <= set(first)
    assert first["body"] == f"hi from {people.owner.login}"
    assert set(first["author"]) == USER_KEYS
    assert first["author"]["github_login"] == people.owner.login
    history = api.get(url, headers=people.viewer.headers)
    assert history.status_code == 200
    body = history.json()
    assert [m["id"] for m in body["items"]][-3:] == [m["id"] for m in posted]
    assert body["next_cursor"] is None
    after = api.get(url, params={"after_seq": posted[0]["seq"], "limit": 1},
                    headers=people.viewer.headers).json()
    assert [m["id"] for m in after["items"]] == [posted[1]["id"]]
    assert after["next_cursor"] == str(posted[1]["seq"])
    rest = api.get(url, params={"cursor": after["next_cursor"]}, headers=people.viewer.headers).json()
    assert [m["id"] for m in rest["items"]] == [posted[2]["id"]]
    for bad in ({"body": ""}, {"body": "x" * 4001}, {"body": "\x00\x01"}, {}):
        error = _error(api.post(url, json=bad, headers=people.owner.headers), 400,
                       "invalid_argument")
        assert error["details"][0]["field"] == "body"
    _error(api.get(url, params={"after_seq": -1}, headers=people.owner.headers), 400,
           "invalid_argument")


def test_document_text_is_readable_by_members(api: httpx.Client, people: People) -> None:
    session = _create(api, people.owner)
    reply = api.get(f"/api/v1/sessions/{session['id']}/document", headers=people.owner.headers)
    assert reply.status_code == 200, reply.text
    assert set(reply.json()) == {"text", "version", "updated_at"}
    _error(api.get(f"/api/v1/sessions/{session['id']}/document", headers=people.stranger.headers),
           404, "not_found")


# --- Idempotency-Key -----------------------------------------------------------------


def test_idempotency_key_replays_and_refuses_another_body(api: httpx.Client, people: People) -> None:
    headers = {**people.owner.headers, "Idempotency-Key": secrets.token_hex(8)}
    first = api.post("/api/v1/sessions", json={"title": "Once"}, headers=headers)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    again = api.post("/api/v1/sessions", json={"title": "Once"}, headers=headers)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    _error(api.post("/api/v1/sessions", json={"title": "Twice"}, headers=headers), 422,
           "unprocessable")
    # The key belongs to its user: someone else's request with it is their own.
    other = api.post("/api/v1/sessions", json={"title": "Once"},
                     headers={**people.editor.headers, "Idempotency-Key": headers["Idempotency-Key"]})
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]
    # A failed request does not use the key up.
    retry_key = {**people.owner.headers, "Idempotency-Key": secrets.token_hex(8)}
    _error(api.post("/api/v1/sessions", json={"title": ""}, headers=retry_key), 400,
           "invalid_argument")
    assert api.post("/api/v1/sessions", json={"title": "Fixed"}, headers=retry_key).status_code == 201
    _error(api.post("/api/v1/sessions", json={"title": "x"},
                    headers={**people.owner.headers, "Idempotency-Key": "k" * 256}), 400,
           "invalid_argument")


def test_idempotent_message_posts_create_one_message(api: httpx.Client, people: People) -> None:
    session = _create(api, people.owner)
    url = f"/api/v1/sessions/{session['id']}/messages"
    headers = {**people.owner.headers, "Idempotency-Key": secrets.token_hex(8)}
    replies = [api.post(url, json={"body": "only once"}, headers=headers) for _ in range(3)]
    assert [r.status_code for r in replies] == [201, 201, 201]
    assert len({r.json()["id"] for r in replies}) == 1
    assert len(api.get(url, headers=people.owner.headers).json()["items"]) == 1


async def test_concurrent_duplicates_create_one_session(platform: LocalPlatform) -> None:
    user = await asyncio.to_thread(sign_in_http, platform.url, f"racer-{secrets.token_hex(3)}")
    headers = {**user.headers, "Idempotency-Key": secrets.token_hex(8)}
    async with httpx.AsyncClient(base_url=platform.url, timeout=15) as client:
        replies = await asyncio.gather(*(
            client.post("/api/v1/sessions", json={"title": "Race"}, headers=headers)
            for _ in range(10)))
        statuses = sorted(r.status_code for r in replies)
        assert set(statuses) <= {201, 409}, [r.text for r in replies]
        assert 201 in statuses
        ids = {r.json()["id"] for r in replies if r.status_code == 201}
        assert len(ids) == 1
        listed = await client.get("/api/v1/sessions", headers=user.headers)
    assert [s["id"] for s in listed.json()["items"]] == list(ids)


# --- OpenAPI -------------------------------------------------------------------------


def test_openapi_documents_every_route_of_the_section(api: httpx.Client) -> None:
    doc = api.get("/openapi.json").json()
    paths = doc["paths"]
    expected = {
        "/api/v1/sessions": {"post": ("SessionCreateIn", "SessionOut"), "get": (None, "SessionList")},
        "/api/v1/sessions/{id}": {"get": (None, "SessionOut"), "patch": ("SessionPatchIn", "SessionOut"),
                                  "delete": (None, None)},
        "/api/v1/sessions/{id}/end": {"post": (None, "SessionOut")},
        "/api/v1/sessions/{id}/transfer": {"post": ("TransferIn", "SessionOut")},
        "/api/v1/sessions/{id}/members": {"get": (None, "MemberList")},
        "/api/v1/sessions/{id}/members/{user_id}": {"patch": ("MemberPatchIn", "MemberOut"),
                                                    "delete": (None, None)},
        "/api/v1/sessions/{id}/invitations": {"post": ("InvitationIn", "InvitationOut")},
        "/api/v1/invitations": {"get": (None, "InvitationList")},
        "/api/v1/invitations/accept": {"post": ("TokenIn", "AcceptOut")},
        "/api/v1/invitations/{id}/accept": {"post": (None, "AcceptOut")},
        "/api/v1/invitations/{id}/decline": {"post": (None, None)},
        "/api/v1/invitations/{id}": {"delete": (None, None)},
        "/api/v1/sessions/{id}/messages": {"get": (None, "MessageList"),
                                           "post": ("MessageIn", "MessageOut")},
        "/api/v1/sessions/{id}/document": {"get": (None, "DocumentOut")},
        "/api/v1/notifications": {"get": (None, "NotificationList")},
        "/api/v1/notifications/{id}/read": {"post": (None, None)},
    }
    schemas = doc["components"]["schemas"]
    for path, operations in expected.items():
        assert path in paths, path
        for method, (request, response) in operations.items():
            op = paths[path][method]
            if request is not None:
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/" + request)
            ok = next(code for code in op["responses"] if code.startswith("2"))
            if response is not None:
                ref = op["responses"][ok]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/" + response)
            else:
                assert ok == "204"
            assert "401" in op["responses"]
    assert set(schemas["SessionOut"]["properties"]) == SESSION_KEYS
    assert set(schemas["MemberOut"]["properties"]) == {"user", "role", "joined_at"}
    assert set(schemas["NotificationOut"]["properties"]) == {"id", "kind", "payload", "read",
                                                             "created_at"}
    for path in ("/api/v1/sessions", "/api/v1/sessions/{id}/messages"):
        names = [p["name"] for p in paths[path]["post"]["parameters"] if p["in"] == "header"]
        assert "Idempotency-Key" in names
    assert "If-Match" in [p["name"] for p in paths["/api/v1/sessions/{id}"]["patch"]["parameters"]]
    assert paths["/api/v1/sessions"]["post"]["responses"]["201"]
