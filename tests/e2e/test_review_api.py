"""Review through the gateway: import, files, threads, roles, publish, webhooks, GitHub failures."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import orjson
import pytest
from tandem.sessions.v1 import sessions_pb2 as spb
from tandem.sessions.v1 import sessions_pb2_grpc

from scripts.platform import LocalPlatform
from standins.github.data import HELLO_USERS_HEAD
from tests.helpers.identity import SignedIn, sign_in_http

pytestmark = pytest.mark.e2e

REPO = "tandem-demo/hello-api"
REVIEW_FIELDS = {"id", "session_id", "repo", "pull_number", "ref", "head_sha", "base_sha",
                 "title", "state", "files", "verdict", "verdicts", "decision",
                 "github_review_id", "published_at", "created_by", "created_at", "updated_at"}
THREAD_FIELDS = {"id", "review_id", "path", "line", "start_line", "side", "commit_sha",
                 "resolved", "outdated", "comments", "created_by", "created_at", "updated_at"}


@dataclass
class Team:
    """A session owned by hubot (PR #1 is octocat's) with an editor, a viewer and an outsider."""

    url: str
    github: str
    webhook_secret: str
    owner: SignedIn
    editor: SignedIn
    viewer: SignedIn
    stranger: SignedIn
    session_id: str

    def call(self, method: str, path: str, user: SignedIn | None = None,
             **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers.update(user.headers)
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def import_pull(self, user: SignedIn | None = None) -> httpx.Response:
        return self.call("POST", f"/api/v1/sessions/{self.session_id}/reviews",
                         user or self.editor, json={"repo": REPO, "pull_number": 1})


def _join(stub: sessions_pb2_grpc.SessionsServiceStub, session_id: str, owner: SignedIn,
          user: SignedIn, role: spb.Role.ValueType) -> None:
    invitation = stub.CreateInvitation(spb.CreateInvitationRequest(session_id=session_id, role=role),
                                       metadata=owner.metadata, timeout=5)
    stub.AcceptInvitation(spb.AcceptInvitationRequest(token=invitation.invitation.token),
                          metadata=user.metadata, timeout=5)


@pytest.fixture(scope="module")
def team(platform: LocalPlatform) -> Team:
    owner = sign_in_http(platform.url, "hubot")
    editor = sign_in_http(platform.url, "monalisa")
    viewer = sign_in_http(platform.url, "octocat")
    stranger = sign_in_http(platform.url, f"eve-{secrets.token_hex(4)}")
    # Sessions are made over gRPC with the users' own tokens: this file tests the review routes.
    with grpc.insecure_channel(f"127.0.0.1:{platform.ports.grpc['sessions']}") as channel:
        stub = sessions_pb2_grpc.SessionsServiceStub(channel)
        session = stub.CreateSession(spb.CreateSessionRequest(title="Review e2e"),
                                     metadata=owner.metadata, timeout=5).session
        _join(stub, session.id, owner, editor, spb.ROLE_EDITOR)
        _join(stub, session.id, owner, viewer, spb.ROLE_VIEWER)
    return Team(platform.url, f"http://127.0.0.1:{platform.ports.github}",
                platform.env["GITHUB_WEBHOOK_SECRET"], owner, editor, viewer, stranger, session.id)


@pytest.fixture
def clean_github(team: Team) -> Iterator[None]:
    """Faults and pushes change the shared stand-in: put its sample data back afterwards."""
    yield
    assert httpx.post(team.github + "/_standin/reset").status_code == 200


def test_import_answers_the_contract_shape(team: Team) -> None:
    reply = team.import_pull()
    assert reply.status_code == 201, reply.text
    review = reply.json()
    assert set(review) == REVIEW_FIELDS
    assert review["session_id"] == team.session_id
    assert (review["repo"], review["pull_number"], review["state"]) == (REPO, 1, "open")
    assert review["title"] == "Add user lookup endpoint"
    files = {f["path"]: f for f in review["files"]}
    assert set(files["app/users.py"]) >= {"path", "status", "additions", "deletions"}
    assert files["scripts/seed_users.py"]["status"] == "renamed"
    assert files["app/legacy_lookup.py"]["status"] == "removed"

    got = team.call("GET", f"/api/v1/reviews/{review['id']}", team.viewer)
    assert got.status_code == 200
    assert got.json() == review
    listed = team.call("GET", f"/api/v1/sessions/{team.session_id}/reviews", team.viewer)
    assert listed.status_code == 200
    body = listed.json()
    assert set(body) == {"items", "next_cursor"}
    assert review["id"] in {r["id"] for r in body["items"]}


def test_a_file_path_with_slashes_answers_content_patch_and_hunks(team: Team) -> None:
    review = team.import_pull().json()
    reply = team.call("GET", f"/api/v1/reviews/{review['id']}/files/app/users.py", team.viewer)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert {"path", "content", "patch", "hunks"} <= set(body)
    assert body["path"] == "app/users.py"
    assert body["content"] == HELLO_USERS_HEAD
    assert body["sha"] == review["head_sha"]
    assert body["hunks"][0]["lines"][0] == {"kind": " ", "source_line": 2, "target_line": 2,
                                            "value": ""}
    removed = team.call("GET", f"/api/v1/reviews/{review['id']}/files/app/legacy_lookup.py",
                        team.viewer).json()
    assert removed["content"] is None
    missing = team.call("GET", f"/api/v1/reviews/{review['id']}/files/app/nope.py", team.viewer)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_threads_comments_resolve_and_verdicts(team: Team) -> None:
    review = team.import_pull().json()
    base = f"/api/v1/reviews/{review['id']}"
    created = team.call("POST", base + "/threads", team.editor,
                        json={"path": "app/users.py", "line": 44, "side": "RIGHT",
                              "body": "f-string SQL: injection"})
    assert created.status_code == 201, created.text
    thread = created.json()
    assert set(thread) == THREAD_FIELDS
    assert (thread["line"], thread["side"], thread["resolved"]) == (44, "RIGHT", False)
    assert [c["body"] for c in thread["comments"]] == ["f-string SQL: injection"]

    outside = team.call("POST", base + "/threads", team.editor,
                        json={"path": "app/users.py", "line": 1000, "side": "RIGHT", "body": "x"})
    assert outside.status_code == 422, outside.text
    error = outside.json()["error"]
    assert error["code"] == "unprocessable"
    assert error["details"][0]["field"] == "line"
    added_left = team.call("POST", base + "/threads", team.editor,
                           json={"path": "app/config.py", "line": 1, "side": "LEFT", "body": "x"})
    assert added_left.status_code == 422
    missing_body = team.call("POST", base + "/threads", team.editor,
                             json={"path": "app/users.py", "line": 4, "side": "RIGHT"})
    assert missing_body.status_code == 400
    assert missing_body.json()["error"]["details"][0]["field"] == "body"

    thread_path = f"{base}/threads/{thread['id']}"
    comment = team.call("POST", thread_path + "/comments", team.owner, json={"body": "Agreed"})
    assert comment.status_code == 201
    assert set(comment.json()) == {"id", "thread_id", "author_id", "body", "created_at"}
    for _ in range(2):
        resolved = team.call("POST", thread_path + "/resolve", team.editor)
        assert resolved.status_code == 200
        assert resolved.json()["resolved"] is True
    reopened = team.call("POST", thread_path + "/unresolve", team.editor)
    assert reopened.json()["resolved"] is False
    verdict = team.call("POST", base + "/verdicts", team.editor,
                        json={"state": "request_changes", "body": "Fix the SQL first."})
    assert verdict.status_code == 201
    assert verdict.json()["state"] == "request_changes"
    bad_state = team.call("POST", base + "/verdicts", team.editor, json={"state": "maybe"})
    assert bad_state.status_code == 400

    threads = team.call("GET", base + "/threads", team.viewer).json()
    assert threads["next_cursor"] is None
    (listed,) = threads["items"]
    assert [c["body"] for c in listed["comments"]] == ["f-string SQL: injection", "Agreed"]


def test_roles_viewer_reads_only_and_strangers_get_404(team: Team) -> None:
    review = team.import_pull().json()
    base = f"/api/v1/reviews/{review['id']}"
    assert team.call("GET", base, team.viewer).status_code == 200
    denied = team.call("POST", base + "/threads", team.viewer,
                       json={"path": "app/users.py", "line": 44, "side": "RIGHT", "body": "x"})
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "permission_denied"
    assert team.import_pull(team.viewer).status_code == 403
    assert team.call("POST", base + "/publish", team.editor).status_code == 403
    for method, path in (("GET", base), ("GET", base + "/threads"),
                         ("GET", base + "/files/app/users.py"), ("POST", base + "/publish"),
                         ("GET", f"/api/v1/sessions/{team.session_id}/reviews")):
        reply = team.call(method, path, team.stranger)
        assert reply.status_code == 404, (method, path, reply.text)
        assert reply.json()["error"]["code"] == "not_found"
    assert team.import_pull(team.stranger).status_code == 404
    assert team.call("GET", "/api/v1/reviews/not-a-uuid", team.owner).status_code == 404
    assert team.call("GET", base).status_code == 401


def test_publish_posts_once(team: Team) -> None:
    review = team.import_pull().json()
    base = f"/api/v1/reviews/{review['id']}"
    team.call("POST", base + "/threads", team.owner,
              json={"path": "app/users.py", "line": 52, "side": "RIGHT", "body": "eval on input"})
    team.call("POST", base + "/verdicts", team.owner, json={"state": "approve", "body": "Fine"})
    first = team.call("POST", base + "/publish", team.owner)
    assert first.status_code == 200, first.text
    body = first.json()
    assert {"github_review_id", "published_at"} <= set(body)
    second = team.call("POST", base + "/publish", team.owner)
    assert second.status_code == 200
    assert second.json() == body
    posted = httpx.get(team.github + f"/_standin/reviews/{REPO}/1").json()
    mine = [r for r in posted if f"tandem-review:{review['id']}" in r["body"]]
    assert len(mine) == 1
    assert mine[0]["id"] == body["github_review_id"]
    assert mine[0]["state"] == "APPROVED"
    assert [(c["path"], c["line"]) for c in mine[0]["comments"]] == [("app/users.py", 52)]
    after = team.call("GET", base, team.viewer).json()
    assert after["state"] == "published"
    assert after["github_review_id"] == body["github_review_id"]


def test_webhook_without_a_valid_signature_is_401(team: Team) -> None:
    body = orjson.dumps({"action": "synchronize", "number": 1,
                         "repository": {"full_name": REPO}})
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": str(uuid.uuid4()),
               "Content-Type": "application/json"}
    missing = team.call("POST", "/api/v1/webhooks/github", content=body, headers=headers)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthenticated"
    wrong = team.call("POST", "/api/v1/webhooks/github", content=body,
                      headers={**headers, "X-Hub-Signature-256": "sha256=" + "ab" * 32})
    assert wrong.status_code == 401
    good = "sha256=" + hmac.new(team.webhook_secret.encode(), orjson.dumps({"zen": "hi"}),
                                hashlib.sha256).hexdigest()
    ping = team.call("POST", "/api/v1/webhooks/github", content=orjson.dumps({"zen": "hi"}),
                     headers={**headers, "X-GitHub-Event": "ping", "X-Hub-Signature-256": good})
    assert ping.status_code == 202
    assert ping.json() == {"outcome": "ignored"}
    duplicate = team.call("POST", "/api/v1/webhooks/github", content=orjson.dumps({"zen": "hi"}),
                          headers={**headers, "X-GitHub-Event": "ping",
                                   "X-Hub-Signature-256": good})
    assert duplicate.status_code == 200
    assert duplicate.json() == {"outcome": "duplicate"}
    # The delivery id is not signed: the same signed body under a new one is a replay.
    replay = team.call("POST", "/api/v1/webhooks/github", content=orjson.dumps({"zen": "hi"}),
                       headers={**headers, "X-GitHub-Event": "ping", "X-Hub-Signature-256": good,
                                "X-GitHub-Delivery": str(uuid.uuid4())})
    assert replay.status_code == 200
    assert replay.json() == {"outcome": "duplicate"}


@pytest.mark.usefixtures("clean_github")
def test_a_signed_push_moves_the_head_and_outdates_threads(team: Team) -> None:
    review = team.import_pull().json()
    base = f"/api/v1/reviews/{review['id']}"
    thread = team.call("POST", base + "/threads", team.editor,
                       json={"path": "app/users.py", "line": 9, "side": "RIGHT",
                             "body": "hard-coded password"}).json()
    kept = team.call("POST", base + "/threads", team.editor,
                     json={"path": "app/users.py", "line": 44, "side": "RIGHT",
                           "body": "SQL"}).json()
    fixed = HELLO_USERS_HEAD.replace('"hunter2"', 'os.environ["HELLO_DB_PASSWORD"]')
    pushed = httpx.post(team.github + f"/_standin/repos/{REPO}/pulls/1/push",
                        json={"files": {"app/users.py": fixed}}, timeout=30).json()
    assert pushed["webhook_status"] == 200, pushed
    after = team.call("GET", base, team.viewer).json()
    assert after["head_sha"] == pushed["head_sha"]
    flags = {t["id"]: t["outdated"] for t in
             team.call("GET", base + "/threads", team.viewer).json()["items"]}
    assert flags == {thread["id"]: True, kept["id"]: False}


@pytest.mark.usefixtures("clean_github")
def test_github_rate_limit_is_503_with_retry_after(team: Team) -> None:
    httpx.post(team.github + "/_standin/faults", json={"rate_limit_remaining": 0})
    reply = team.import_pull()
    assert reply.status_code == 503, reply.text
    assert reply.json()["error"]["code"] == "unavailable"
    assert "rate limit" in reply.json()["error"]["message"]
    assert 1 <= int(reply.headers["Retry-After"]) <= 3600


@pytest.mark.usefixtures("clean_github")
def test_github_errors_map_to_404_and_403(team: Team) -> None:
    private = team.call("POST", f"/api/v1/sessions/{team.session_id}/reviews", team.owner,
                        json={"repo": "tandem-demo/secret-sauce", "pull_number": 1})
    assert private.status_code == 404
    assert private.json()["error"]["message"] == "repository or pull request not found"
    httpx.post(team.github + "/_standin/faults", json={"forbidden_repos": [REPO]})
    assert team.import_pull().status_code == 403


def test_bad_import_requests_name_the_field(team: Team) -> None:
    path = f"/api/v1/sessions/{team.session_id}/reviews"
    both = team.call("POST", path, team.editor,
                     json={"repo": REPO, "pull_number": 1, "ref": "main"})
    assert both.status_code == 400
    assert both.json()["error"]["details"][0]["field"] == "pull_number"
    bad_repo = team.call("POST", path, team.editor, json={"repo": "nope", "pull_number": 1})
    assert bad_repo.status_code == 400
    assert bad_repo.json()["error"]["details"][0]["field"] == "repo"


def test_openapi_documents_the_review_routes(team: Team) -> None:
    paths = httpx.get(team.url + "/openapi.json").json()["paths"]
    for path in ("/api/v1/sessions/{id}/reviews", "/api/v1/reviews/{id}/threads",
                 "/api/v1/reviews/{id}/publish", "/api/v1/webhooks/github"):
        assert path in paths, path
