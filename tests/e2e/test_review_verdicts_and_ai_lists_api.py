"""Through the gateway: every reviewer's current verdict and the decision on the review, and the
lists of a review's and a session's AI jobs (issue 16's review and AI panels read these)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from scripts.platform import LocalPlatform
from tests.helpers.identity import SignedIn, sign_in_http

pytestmark = pytest.mark.e2e

REPO = "tandem-demo/hello-api"
USER_FIELDS = {"id", "github_login", "name", "avatar_url", "created_at"}


@dataclass
class Room:
    """A Python session with an editor, a viewer and an outsider, and PR #1 imported."""

    url: str
    owner: SignedIn
    editor: SignedIn
    viewer: SignedIn
    stranger: SignedIn
    session_id: str
    review_id: str

    def call(self, method: str, path: str, user: SignedIn, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.url + path, headers=user.headers, timeout=30, **kwargs)

    def get(self, path: str, user: SignedIn | None = None, **params: Any) -> httpx.Response:
        return self.call("GET", path, user or self.viewer, params=params)

    def verdict(self, user: SignedIn, state: str, body: str) -> None:
        reply = self.call("POST", f"/api/v1/reviews/{self.review_id}/verdicts", user,
                          json={"state": state, "body": body})
        assert reply.status_code == 201, reply.text

    def finished(self, accepted: httpx.Response) -> dict[str, Any]:
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        deadline = time.monotonic() + 30
        while True:
            job: dict[str, Any] = self.get(f"/api/v1/ai/jobs/{job_id}").json()
            if job["status"] in ("done", "failed", "cancelled"):
                return job
            assert time.monotonic() < deadline, job
            time.sleep(0.1)


def _join(url: str, session_id: str, owner: SignedIn, user: SignedIn, role: str) -> None:
    invited = httpx.post(f"{url}/api/v1/sessions/{session_id}/invitations", json={"role": role},
                         headers=owner.headers, timeout=10)
    assert invited.status_code == 201, invited.text
    accepted = httpx.post(f"{url}/api/v1/invitations/accept",
                          json={"token": invited.json()["token"]}, headers=user.headers, timeout=10)
    assert accepted.status_code == 200, accepted.text


@pytest.fixture(scope="module")
def room(platform: LocalPlatform) -> Room:
    url = platform.url
    owner, editor, viewer, stranger = [sign_in_http(url, f"{name}-{secrets.token_hex(3)}")
                                       for name in ("owner", "editor", "viewer", "stranger")]
    session = httpx.post(f"{url}/api/v1/sessions", json={"title": "Panels", "language": "python"},
                         headers=owner.headers, timeout=10)
    assert session.status_code == 201, session.text
    session_id = session.json()["id"]
    _join(url, session_id, owner, editor, "editor")
    _join(url, session_id, owner, viewer, "viewer")
    review = httpx.post(f"{url}/api/v1/sessions/{session_id}/reviews",
                        json={"repo": REPO, "pull_number": 1}, headers=editor.headers, timeout=30)
    assert review.status_code == 201, review.text
    assert (review.json()["verdicts"], review.json()["decision"]) == ([], None)
    return Room(url, owner, editor, viewer, stranger, session_id, review.json()["id"])


def test_the_review_carries_each_reviewers_current_verdict_and_the_decision(room: Room) -> None:
    members = room.get(f"/api/v1/sessions/{room.session_id}/members").json()["items"]
    users = {m["user"]["id"]: m["user"] for m in members}

    def shown() -> dict[str, Any]:
        review: dict[str, Any] = room.get(f"/api/v1/reviews/{room.review_id}").json()
        listed = room.get(f"/api/v1/sessions/{room.session_id}/reviews").json()["items"]
        assert [r for r in listed if r["id"] == room.review_id] == [review]
        for item in review["verdicts"]:
            assert set(item) == {"user", "state", "body", "at"}
            assert item["user"] == users[item["user"]["id"]]  # the members' user object
            assert set(item["user"]) == USER_FIELDS
        return review

    room.verdict(room.owner, "request_changes", "line 44 builds SQL from user text")
    room.verdict(room.editor, "approve", "ship it")
    review = shown()
    assert [(v["user"]["github_login"], v["state"]) for v in review["verdicts"]] == [
        (room.owner.login, "request_changes"), (room.editor.login, "approve")]
    assert review["decision"] == "changes_requested"
    assert review["verdict"]["state"] == "approve"  # the latest of anyone's, as before
    assert review["verdicts"][0]["at"] < review["verdicts"][1]["at"]

    room.verdict(room.owner, "approve", "fixed now")
    review = shown()
    assert [(v["user"]["github_login"], v["state"], v["body"]) for v in review["verdicts"]] == [
        (room.editor.login, "approve", "ship it"), (room.owner.login, "approve", "fixed now")]
    assert review["decision"] == "approved"

    room.verdict(room.editor, "comment", "a thought, no verdict")
    room.verdict(room.owner, "comment", "me neither")
    review = shown()
    assert [v["state"] for v in review["verdicts"]] == ["comment", "comment"]
    assert review["decision"] is None


def test_a_review_and_its_session_list_their_ai_jobs_newest_first(room: Room) -> None:
    review_path = f"/api/v1/reviews/{room.review_id}/ai"
    session_path = f"/api/v1/sessions/{room.session_id}/ai"
    assert room.get(review_path).json() == {"items": [], "next_cursor": None}
    whole = room.finished(room.call("POST", review_path, room.editor, json={}))
    document = room.finished(room.call("POST", session_path, room.editor, json={}))
    one = room.finished(room.call("POST", review_path, room.owner, json={"paths": ["app/users.py"]}))
    assert [j["status"] for j in (whole, document, one)] == ["done"] * 3

    # Each item is the job exactly as GET /api/v1/ai/jobs/{job_id} answers it.
    listed = room.get(review_path).json()
    assert listed == {"items": [one, whole], "next_cursor": None}
    assert whole["findings"]
    assert room.get(session_path).json()["items"] == [one, document, whole]
    assert room.get(session_path, kind="document").json()["items"] == [document]
    assert room.get(session_path, kind="review").json()["items"] == [one, whole]

    seen: list[str] = []
    cursor = None
    while True:
        page = room.get(session_path, limit=1, **({"cursor": cursor} if cursor else {})).json()
        seen += [j["job_id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [one["job_id"], document["job_id"], whole["job_id"]]
    for user in (room.owner, room.editor):
        assert room.get(review_path, user).status_code == 200


def test_job_lists_are_for_members_and_name_bad_parameters(room: Room) -> None:
    for path in (f"/api/v1/reviews/{room.review_id}/ai", f"/api/v1/sessions/{room.session_id}/ai",
                 "/api/v1/reviews/00000000-0000-4000-8000-000000000000/ai",
                 "/api/v1/sessions/not-a-uuid/ai"):
        hidden = room.get(path, room.stranger)
        assert hidden.status_code == 404, hidden.text
        assert hidden.json()["error"]["code"] == "not_found"
    session_path = f"/api/v1/sessions/{room.session_id}/ai"
    for params, field in (({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
                          ({"limit": "x"}, "limit"), ({"kind": "chat"}, "kind"),
                          ({"cursor": "garbage"}, "cursor")):
        bad = room.get(session_path, **params)
        assert bad.status_code == 400, (params, bad.text)
        assert bad.json()["error"]["details"][0]["field"] == field
    assert httpx.get(room.url + session_path, timeout=10).status_code == 401
