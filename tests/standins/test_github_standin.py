"""The GitHub stand-in over real HTTP: OAuth with PKCE, REST shapes, ETags, limits, webhooks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiohttp import web

from standins.github import StandinConfig, create_app
from standins.github.config import ConfigError, settings_from_env
from standins.github.data import HELLO_USERS_HEAD, HELLO_USERS_PROBLEMS
from standins.github.oauth import redirect_fits

REPO = "/repos/tandem-demo/hello-api"
PULL = f"{REPO}/pulls/1"
# The OAuth app is registered with the site root (docs/operations.md).
CALLBACK = "http://127.0.0.1:8080/"


@dataclass
class Standin:
    """A running stand-in and an HTTP client pointed at it."""

    url: str
    config: StandinConfig
    client: httpx.AsyncClient

    async def token(self, login: str) -> str:
        response = await self.client.post("/_standin/tokens", json={"login": login})
        assert response.status_code == 201
        return str(response.json()["access_token"])


@dataclass
class Receiver:
    """A tiny webhook receiver: what it got, and the status it answers."""

    url: str
    requests: asyncio.Queue[tuple[dict[str, str], bytes]]


def _bound_socket() -> tuple[socket.socket, str]:
    """A socket on 127.0.0.1 port 0 and its URL, known before the app that uses it is built."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


async def _serve(app: web.Application, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


def _free_port_url() -> str:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here any more: deliveries to it fail fast
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    requests: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await requests.put((dict(request.headers), await request.read()))
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/hook", hook)
    sock, url = _bound_socket()
    runner = await _serve(app, sock)
    try:
        yield Receiver(url=f"{url}/hook", requests=requests)
    finally:
        await runner.cleanup()


StartStandin = Callable[..., Awaitable[Standin]]


@pytest.fixture
async def start_standin() -> AsyncIterator[StartStandin]:
    """Start stand-ins with config overrides; all are stopped after the test."""
    runners: list[web.AppRunner] = []
    clients: list[httpx.AsyncClient] = []

    async def start(**overrides: Any) -> Standin:
        sock, url = _bound_socket()
        config = replace(StandinConfig(public_url=url), **overrides)
        runners.append(await _serve(create_app(config), sock))
        client = httpx.AsyncClient(base_url=url, timeout=5.0)
        clients.append(client)
        return Standin(url=url, config=config, client=client)

    try:
        yield start
    finally:
        for client in clients:
            await client.aclose()
        for runner in runners:
            await runner.cleanup()


@pytest.fixture
async def standin(start_standin: StartStandin) -> Standin:
    return await start_standin()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def _authorize(standin: Standin, login: str, challenge: str | None) -> str:
    """Sign in as login through the authorize page; answers the code from the redirect."""
    params = {"client_id": "tandem-local", "state": "st4te", "scope": "read:user user:email"}
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    response = await standin.client.get("/login/oauth/authorize", params=params | {"login": login})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = parse_qs(location.query)
    assert query["state"] == ["st4te"]
    return query["code"][0]


async def _exchange(standin: Standin, code: str, verifier: str | None, **extra: str) -> Any:
    form = {
        "client_id": "tandem-local",
        "client_secret": "tandem-local-secret",
        "code": code,
        **extra,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    response = await standin.client.post(
        "/login/oauth/access_token", data=form, headers={"Accept": "application/json"}
    )
    # GitHub answers token errors with 200 too.
    assert response.status_code == 200
    return response.json()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- OAuth ------------------------------------------------------------------


async def test_oauth_flow_with_pkce_signs_in_and_token_reads_user(standin: Standin) -> None:
    verifier, challenge = _pkce()
    code = await _authorize(standin, "hubot", challenge)
    answer = await _exchange(standin, code, verifier)
    assert answer["token_type"] == "bearer"
    assert answer["scope"] == "read:user,user:email"
    assert answer["access_token"].startswith("gho_")
    assert len(answer["access_token"]) == 40

    user = await standin.client.get("/user", headers=_auth(answer["access_token"]))
    assert user.status_code == 200
    body = user.json()
    assert (body["login"], body["id"], body["type"]) == ("hubot", 480938, "User")
    assert body["email"] is None  # hubot's email is private
    assert user.headers["X-OAuth-Scopes"] == "read:user, user:email"


async def test_wrong_pkce_verifier_is_rejected(standin: Standin) -> None:
    _, challenge = _pkce()
    other_verifier, _ = _pkce()
    code = await _authorize(standin, "octocat", challenge)
    answer = await _exchange(standin, code, other_verifier)
    assert answer["error"] == "bad_verification_code"
    assert "access_token" not in answer
    missing = await _exchange(standin, await _authorize(standin, "octocat", challenge), None)
    assert missing["error"] == "bad_verification_code"


async def test_reused_code_is_rejected_and_revokes_its_token(standin: Standin) -> None:
    verifier, challenge = _pkce()
    code = await _authorize(standin, "octocat", challenge)
    first = await _exchange(standin, code, verifier)
    assert (await standin.client.get("/user", headers=_auth(first["access_token"]))).is_success

    second = await _exchange(standin, code, verifier)
    assert second["error"] == "bad_verification_code"
    revoked = await standin.client.get("/user", headers=_auth(first["access_token"]))
    assert revoked.status_code == 401


async def test_wrong_client_secret_is_rejected(standin: Standin) -> None:
    verifier, challenge = _pkce()
    code = await _authorize(standin, "octocat", challenge)
    answer = await _exchange(standin, code, verifier, client_secret="not-the-secret")
    assert answer["error"] == "incorrect_client_credentials"
    assert answer["error_uri"].startswith("https://docs.github.com/")


async def test_expired_code_is_rejected(standin: Standin) -> None:
    verifier, challenge = _pkce()
    code = await _authorize(standin, "octocat", challenge)
    advanced = await standin.client.post("/_standin/clock", json={"advance": 601})
    assert advanced.status_code == 200
    answer = await _exchange(standin, code, verifier)
    assert answer["error"] == "bad_verification_code"


async def test_token_answer_is_form_encoded_without_json_accept(standin: Standin) -> None:
    verifier, challenge = _pkce()
    code = await _authorize(standin, "monalisa", challenge)
    response = await standin.client.post(
        "/login/oauth/access_token",
        data={
            "client_id": "tandem-local",
            "client_secret": "tandem-local-secret",
            "code": code,
            "code_verifier": verifier,
        },
    )
    assert response.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    fields = parse_qs(response.text)
    assert fields["token_type"] == ["bearer"]
    assert fields["access_token"][0].startswith("gho_")


async def test_authorize_page_lists_sample_users_and_unknown_login_is_created(
    standin: Standin,
) -> None:
    params = {"client_id": "tandem-local", "state": "s"}
    page = await standin.client.get("/login/oauth/authorize", params=params)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    for login in ("octocat", "hubot", "monalisa"):
        assert f"login={login}" in page.text
    assert "development only" in page.text

    code = await _authorize(standin, "Newcomer-42", None)
    token = (await _exchange(standin, code, None))["access_token"]
    user = (await standin.client.get("/user", headers=_auth(token))).json()
    assert user["login"] == "Newcomer-42"
    assert user["id"] >= 90000001


async def test_new_logins_keep_their_id_across_a_restart_and_never_take_an_earlier_one(
    start_standin: StartStandin,
) -> None:
    """Tandem keys users on GitHub's id: a restarted stand-in must not hand an id out again."""
    tag = secrets.token_hex(3)

    async def user_id(instance: Standin, login: str) -> int:
        token = await instance.token(login)
        return int((await instance.client.get("/user", headers=_auth(token))).json()["id"])

    before = await start_standin()
    seeded = {
        int((await before.client.get(f"/users/{login}")).json()["id"])
        for login in ("octocat", "hubot", "monalisa", "tandem-demo")
    }
    earlier = {login: await user_id(before, login) for login in (f"early-a-{tag}", f"early-b-{tag}")}
    assert len(set(earlier.values())) == 2
    assert not seeded & set(earlier.values())

    after = await start_standin()  # a restart: a stand-in with nothing in memory
    newcomer = await user_id(after, f"newcomer-{tag}")
    assert newcomer not in set(earlier.values()) | seeded
    # The same login signing in again after the restart is the same person, in any case.
    assert await user_id(after, f"early-a-{tag}") == earlier[f"early-a-{tag}"]
    assert await user_id(after, f"EARLY-B-{tag}") == earlier[f"early-b-{tag}"]
    # Ids stay integers every GitHub client can hold (JavaScript's safe range).
    assert all(0 < value < 2**53 for value in (*earlier.values(), newcomer))


async def test_authorize_refuses_unknown_client_and_non_s256_challenge(standin: Standin) -> None:
    unknown = await standin.client.get("/login/oauth/authorize", params={"client_id": "nope"})
    assert unknown.status_code == 404

    plain = await standin.client.get(
        "/login/oauth/authorize",
        params={
            "client_id": "tandem-local",
            "state": "s",
            "code_challenge": "x" * 43,
            "code_challenge_method": "plain",
            "login": "octocat",
        },
    )
    assert plain.status_code == 302
    query = parse_qs(urlsplit(plain.headers["Location"]).query)
    assert query["error"] == ["invalid_request"]
    assert "code" not in query

    mismatch = await standin.client.get(
        "/login/oauth/authorize",
        params={
            "client_id": "tandem-local",
            "redirect_uri": "https://evil.example/cb",
            "login": "octocat",
        },
    )
    assert parse_qs(urlsplit(mismatch.headers["Location"]).query)["error"] == [
        "redirect_uri_mismatch"
    ]


@pytest.mark.parametrize("redirect", ["http://127.0.0.1:8080/auth/callback",
                                      "http://127.0.0.1:8080/api/v1/auth/github/callback"])
async def test_both_of_tandems_callbacks_fit_under_the_registered_site_root(
        standin: Standin, redirect: str) -> None:
    response = await standin.client.get(
        "/login/oauth/authorize",
        params={"client_id": "tandem-local", "redirect_uri": redirect, "login": "octocat"},
    )
    assert response.headers["Location"].startswith(redirect + "?code=")


def test_a_redirect_fits_only_under_the_registered_origin() -> None:
    root = "https://tandem.example.com/"
    assert redirect_fits("https://tandem.example.com/auth/callback", root)
    assert redirect_fits("https://tandem.example.com/api/v1/auth/github/callback", root)
    for foreign in ("https://evil.example/auth/callback", "http://tandem.example.com/auth/callback",
                    "https://tandem.example.com:8443/auth/callback",
                    "https://tandem.example.com.evil.example/auth/callback"):
        assert not redirect_fits(foreign, root), foreign
    # A callback registered deeper keeps GitHub's rule: the app's page is not under it.
    assert not redirect_fits("https://tandem.example.com/auth/callback",
                             "https://tandem.example.com/api/v1/auth/github/callback")


async def test_loopback_redirect_uri_on_another_port_is_accepted(standin: Standin) -> None:
    redirect = "http://localhost:5173/api/v1/auth/github/callback"
    response = await standin.client.get(
        "/login/oauth/authorize",
        params={"client_id": "tandem-local", "redirect_uri": redirect, "login": "octocat"},
    )
    assert response.headers["Location"].startswith(redirect + "?code=")


# --- users ------------------------------------------------------------------


async def test_user_without_or_with_bad_token_is_401(standin: Standin) -> None:
    missing = await standin.client.get("/user")
    assert missing.status_code == 401
    assert missing.json()["message"] == "Requires authentication"
    bad = await standin.client.get("/user", headers={"Authorization": "token gho_nope"})
    assert bad.status_code == 401
    assert bad.json() == {
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
        "status": "401",
    }


async def test_user_and_emails_have_githubs_shape(standin: Standin) -> None:
    token = await standin.token("octocat")
    user = await standin.client.get("/user", headers={"Authorization": f"token {token}"})
    body = user.json()
    assert body["id"] == 583231
    assert body["name"] == "The Octocat"
    assert body["node_id"] == "MDQ6VXNlcjU4MzIzMQ=="
    assert body["html_url"] == f"{standin.url}/octocat"
    assert body["avatar_url"].startswith(f"{standin.url}/avatars/u/583231")
    for header in ("X-RateLimit-Limit", "X-RateLimit-Reset", "X-GitHub-Request-Id"):
        assert header in user.headers
    assert user.headers["X-RateLimit-Resource"] == "core"
    assert user.headers["X-RateLimit-Limit"] == "5000"

    emails = (await standin.client.get("/user/emails", headers=_auth(token))).json()
    primary = [email for email in emails if email["primary"]]
    assert primary == [
        {"email": "octocat@github.com", "primary": True, "verified": True, "visibility": "public"}
    ]


# --- repositories, pulls, contents --------------------------------------------


async def test_pull_request_and_files_carry_real_patches(standin: Standin) -> None:
    pull = (await standin.client.get(PULL)).json()
    assert pull["title"] == "Add user lookup endpoint"
    assert pull["user"]["login"] == "octocat"
    assert pull["state"] == "open"
    assert pull["base"]["ref"] == "main"
    head_sha = pull["head"]["sha"]
    assert len(head_sha) == 40
    assert int(head_sha, 16) >= 0

    files = (await standin.client.get(f"{PULL}/files")).json()
    by_name = {entry["filename"]: entry for entry in files}
    assert by_name["app/users.py"]["status"] == "modified"
    assert by_name["README.md"]["status"] == "modified"
    assert by_name["app/config.py"]["status"] == "added"
    assert by_name["app/legacy_lookup.py"]["status"] == "removed"
    renamed = by_name["scripts/seed_users.py"]
    assert (renamed["status"], renamed["previous_filename"]) == ("renamed", "scripts/seed.py")
    assert pull["changed_files"] == len(files)

    users = by_name["app/users.py"]
    assert users["patch"].startswith("@@ ")
    assert "+    return eval(raw)" in users["patch"]
    added = sum(line.startswith("+") for line in users["patch"].split("\n"))
    removed = sum(line.startswith("-") for line in users["patch"].split("\n"))
    assert (users["additions"], users["deletions"]) == (added, removed)
    assert users["changes"] == added + removed
    assert users["contents_url"].endswith(f"contents/app/users.py?ref={head_sha}")


async def test_contents_at_head_sha_are_base64_or_raw(standin: Standin) -> None:
    head_sha = (await standin.client.get(PULL)).json()["head"]["sha"]
    response = await standin.client.get(f"{REPO}/contents/app/users.py", params={"ref": head_sha})
    body = response.json()
    assert (body["type"], body["encoding"], body["path"]) == ("file", "base64", "app/users.py")
    content = base64.b64decode(body["content"])
    assert content.decode() == HELLO_USERS_HEAD
    assert body["size"] == len(content)
    blob = hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False)
    assert body["sha"] == blob.hexdigest()

    raw = await standin.client.get(
        f"{REPO}/contents/app/users.py",
        params={"ref": head_sha},
        headers={"Accept": "application/vnd.github.raw+json"},
    )
    assert raw.content == content

    at_base = await standin.client.get(f"{REPO}/contents/app/users.py", params={"ref": "main"})
    assert base64.b64decode(at_base.json()["content"]) != content
    missing = await standin.client.get(f"{REPO}/contents/app/config.py", params={"ref": "main"})
    assert missing.status_code == 404


async def test_commit_by_sha_lists_its_parent_and_files(standin: Standin) -> None:
    pull = (await standin.client.get(PULL)).json()
    commit = (await standin.client.get(f"{REPO}/commits/{pull['head']['sha']}")).json()
    assert commit["sha"] == pull["head"]["sha"]
    assert commit["parents"][0]["sha"] == pull["base"]["sha"]
    assert {f["filename"] for f in commit["files"]} >= {"app/users.py", "app/config.py"}
    unknown = await standin.client.get(f"{REPO}/commits/{'0' * 40}")
    assert unknown.status_code == 422


async def test_etag_answers_304_without_spending_rate_limit(standin: Standin) -> None:
    token = await standin.token("hubot")
    for path in (REPO, PULL, f"{PULL}/files", f"{REPO}/contents/README.md", f"{PULL}/reviews"):
        first = await standin.client.get(path, headers=_auth(token))
        etag = first.headers["ETag"]
        assert etag.startswith('"')
        assert etag.endswith('"')
        again = await standin.client.get(path, headers=_auth(token) | {"If-None-Match": etag})
        assert again.status_code == 304, path
        assert again.content == b""
        assert again.headers["X-RateLimit-Remaining"] == first.headers["X-RateLimit-Remaining"]


async def test_unknown_repo_and_pull_are_github_404s(standin: Standin) -> None:
    for path in ("/repos/tandem-demo/nope", f"{REPO}/pulls/999", f"{REPO}/pulls/999/files"):
        response = await standin.client.get(path)
        assert response.status_code == 404
        body = response.json()
        assert body["message"] == "Not Found"
        assert body["status"] == "404"
        assert "documentation_url" in body


async def test_private_repo_is_hidden_from_users_without_access(standin: Standin) -> None:
    path = "/repos/tandem-demo/secret-sauce"
    assert (await standin.client.get(path)).status_code == 404
    octocat = await standin.token("octocat")
    assert (await standin.client.get(path, headers=_auth(octocat))).status_code == 404
    monalisa = await standin.token("monalisa")
    response = await standin.client.get(path, headers=_auth(monalisa))
    assert response.status_code == 200
    assert response.json()["private"] is True


# --- reviews ----------------------------------------------------------------


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n"), 1) if needle in line)


async def test_review_is_posted_with_comments_and_listed(standin: Standin) -> None:
    token = await standin.token("hubot")
    head_sha = (await standin.client.get(PULL)).json()["head"]["sha"]
    eval_line = _line_of(HELLO_USERS_HEAD, "return eval(raw)")
    posted = await standin.client.post(
        f"{PULL}/reviews",
        headers=_auth(token),
        json={
            "commit_id": head_sha,
            "body": "Please fix these before merging.",
            "event": "REQUEST_CHANGES",
            "comments": [
                {"path": "app/users.py", "line": eval_line, "side": "RIGHT", "body": "eval!"},
                {
                    "path": "app/users.py",
                    "start_line": eval_line - 1,
                    "line": eval_line,
                    "body": "range",
                },
            ],
        },
    )
    assert posted.status_code == 200, posted.text
    review = posted.json()
    assert review["state"] == "CHANGES_REQUESTED"
    assert review["user"]["login"] == "hubot"
    assert review["commit_id"] == head_sha
    assert review["html_url"].endswith(f"#pullrequestreview-{review['id']}")
    assert "submitted_at" in review

    listed = (await standin.client.get(f"{PULL}/reviews")).json()
    assert [r["id"] for r in listed] == [review["id"]]
    comments = (await standin.client.get(f"{PULL}/comments")).json()
    assert [c["line"] for c in comments] == [eval_line, eval_line]
    assert comments[0]["diff_hunk"].startswith("@@ ")
    assert comments[0]["diff_hunk"].endswith("+    return eval(raw)")
    assert comments[1]["start_line"] == eval_line - 1
    assert comments[0]["pull_request_review_id"] == review["id"]

    control = (await standin.client.get("/_standin/reviews/tandem-demo/hello-api/1")).json()
    assert [(r["id"], len(r["comments"])) for r in control] == [(review["id"], 2)]


async def test_review_and_comment_ids_are_not_handed_out_again_after_a_restart(
    start_standin: StartStandin,
) -> None:
    """Tandem keeps the ids of published reviews: a restarted stand-in must not reuse them."""
    eval_line = _line_of(HELLO_USERS_HEAD, "return eval(raw)")

    async def publish(instance: Standin) -> tuple[int, int]:
        token = await instance.token("hubot")
        head_sha = (await instance.client.get(PULL)).json()["head"]["sha"]
        posted = await instance.client.post(
            f"{PULL}/reviews",
            headers=_auth(token),
            json={
                "commit_id": head_sha,
                "event": "COMMENT",
                "body": "one comment",
                "comments": [{"path": "app/users.py", "line": eval_line, "body": "eval!"}],
            },
        )
        assert posted.status_code == 200, posted.text
        comments = (await instance.client.get(f"{PULL}/comments")).json()
        return int(posted.json()["id"]), int(comments[-1]["id"])

    first_review, first_comment = await publish(await start_standin())
    second_review, second_comment = await publish(await start_standin())  # a restart
    assert second_review > first_review
    assert second_comment > first_comment
    assert all(0 < value < 2**53 for value in (second_review, second_comment))


async def test_review_comment_outside_the_diff_is_422(standin: Standin) -> None:
    token = await standin.token("hubot")
    # Line 14 of app/users.py ("id: int") is unchanged and far from any hunk.
    response = await standin.client.post(
        f"{PULL}/reviews",
        headers=_auth(token),
        json={
            "body": "hm",
            "event": "COMMENT",
            "comments": [{"path": "app/users.py", "line": 14, "body": "not in the diff"}],
        },
    )
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "Unprocessable Entity"
    assert body["errors"]
    assert "documentation_url" in body
    assert (await standin.client.get(f"{PULL}/reviews")).json() == []


async def test_author_cannot_approve_own_pull_request(standin: Standin) -> None:
    token = await standin.token("octocat")
    response = await standin.client.post(
        f"{PULL}/reviews", headers=_auth(token), json={"body": "", "event": "APPROVE"}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == ["Can not approve your own pull request"]
    approved = await standin.client.post(
        f"{PULL}/reviews",
        headers=_auth(await standin.token("monalisa")),
        json={"event": "APPROVE"},
    )
    assert approved.json()["state"] == "APPROVED"


async def test_review_needs_a_token_and_valid_json(standin: Standin) -> None:
    anonymous = await standin.client.post(f"{PULL}/reviews", json={"event": "COMMENT"})
    assert anonymous.status_code == 401
    token = await standin.token("hubot")
    broken = await standin.client.post(
        f"{PULL}/reviews",
        headers=_auth(token) | {"Content-Type": "application/json"},
        content=b'{"body": ',
    )
    assert broken.status_code == 400
    assert broken.json()["message"] == "Problems parsing JSON"
    wrong_type = await standin.client.post(
        f"{PULL}/reviews", headers=_auth(token), json={"event": "SHIP_IT"}
    )
    assert wrong_type.status_code == 422


# --- limits, faults, robustness -----------------------------------------------


async def test_exhausted_rate_limit_is_403_per_token(start_standin: StartStandin) -> None:
    standin = await start_standin(rate_limit=2)
    token, other = await standin.token("hubot"), await standin.token("monalisa")
    for expected in ("1", "0"):
        ok = await standin.client.get(REPO, headers=_auth(token))
        assert ok.status_code == 200
        assert ok.headers["X-RateLimit-Remaining"] == expected
    limited = await standin.client.get(REPO, headers=_auth(token))
    assert limited.status_code == 403
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.json()["message"] == "API rate limit exceeded for user ID 480938."
    # Another token has its own budget.
    assert (await standin.client.get(REPO, headers=_auth(other))).status_code == 200


async def test_faults_switch_status_rate_limit_and_forbidden_repos(standin: Standin) -> None:
    token = await standin.token("hubot")
    set_status = await standin.client.post("/_standin/faults", json={"status": 502})
    assert set_status.status_code == 200
    assert (await standin.client.get(REPO, headers=_auth(token))).status_code == 502
    assert (await standin.client.get("/_standin/health")).status_code == 200

    await standin.client.delete("/_standin/faults")
    assert (await standin.client.get(REPO, headers=_auth(token))).status_code == 200

    await standin.client.post("/_standin/faults", json={"rate_limit_remaining": 0})
    limited = await standin.client.get("/user", headers=_auth(token))
    assert limited.status_code == 403
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    await standin.client.delete("/_standin/faults")

    await standin.client.post(
        "/_standin/faults", json={"forbidden_repos": ["tandem-demo/hello-api"]}
    )
    forbidden = await standin.client.get(f"{PULL}/files", headers=_auth(token))
    assert forbidden.status_code == 403
    assert forbidden.json()["message"] == "Resource not accessible by integration"
    await standin.client.delete("/_standin/faults")
    assert (await standin.client.get(f"{PULL}/files", headers=_auth(token))).status_code == 200

    bad = await standin.client.post("/_standin/faults", json={"status": "boom"})
    assert bad.status_code == 422


async def test_unknown_routes_and_methods_are_github_404s(standin: Standin) -> None:
    for response in (
        await standin.client.get("/no/such/route"),
        await standin.client.delete(REPO),
    ):
        assert response.status_code == 404
        assert response.json()["message"] == "Not Found"
        assert "X-GitHub-Request-Id" in response.headers


# --- control routes -----------------------------------------------------------


async def test_push_moves_head_and_sends_signed_synchronize_webhook(
    start_standin: StartStandin, receiver: Receiver
) -> None:
    standin = await start_standin(webhook_url=receiver.url)
    before = (await standin.client.get(PULL)).json()["head"]["sha"]
    pushed = await standin.client.post(
        "/_standin/repos/tandem-demo/hello-api/pulls/1/push",
        json={"files": {"app/config.py": "DEBUG = False\n", "README.md": None}},
    )
    assert pushed.status_code == 200, pushed.text
    answer = pushed.json()
    assert answer["webhook_status"] == 202
    after = answer["head_sha"]
    assert after != before
    assert len(after) == 40

    headers, raw = await asyncio.wait_for(receiver.requests.get(), timeout=5)
    expected = hmac.new(b"tandem-local-webhook-secret", raw, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == f"sha256={expected}"
    assert headers["X-GitHub-Event"] == "pull_request"
    assert headers["X-GitHub-Delivery"] == answer["delivery_id"]
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    event = json.loads(raw)
    assert (event["action"], event["number"]) == ("synchronize", 1)
    assert (event["before"], event["after"]) == (before, after)
    assert event["pull_request"]["head"]["sha"] == after
    assert event["repository"]["full_name"] == "tandem-demo/hello-api"
    assert event["sender"]["login"] == "octocat"

    pull = (await standin.client.get(PULL)).json()
    assert pull["head"]["sha"] == after
    files = {f["filename"]: f for f in (await standin.client.get(f"{PULL}/files")).json()}
    assert files["README.md"]["status"] == "removed"  # it exists at the base
    assert files["app/config.py"]["patch"] == "@@ -0,0 +1 @@\n+DEBUG = False"


async def test_push_with_unreachable_webhook_still_succeeds(start_standin: StartStandin) -> None:
    standin = await start_standin(webhook_url=_free_port_url(), webhook_timeout=1.0)
    pushed = await standin.client.post(
        "/_standin/repos/tandem-demo/hello-api/pulls/1/push",
        json={"files": {"NOTES.md": "notes\n"}},
    )
    assert pushed.status_code == 200
    assert pushed.json()["webhook_status"] is None

    bad = await standin.client.post(
        "/_standin/repos/tandem-demo/hello-api/pulls/1/push", json={"files": {"../x": "y"}}
    )
    assert bad.status_code == 422


async def test_reset_restores_sample_data(standin: Standin) -> None:
    original = (await standin.client.get(PULL)).json()["head"]["sha"]
    await standin.client.post(
        "/_standin/repos/tandem-demo/hello-api/pulls/1/push",
        json={"files": {"NOTES.md": "notes\n"}},
    )
    assert (await standin.client.get(PULL)).json()["head"]["sha"] != original
    assert (await standin.client.post("/_standin/reset")).status_code == 200
    assert (await standin.client.get(PULL)).json()["head"]["sha"] == original


# --- sample data and configuration --------------------------------------------


def test_documented_problem_lines_match_the_sample_file() -> None:
    lines = HELLO_USERS_HEAD.split("\n")
    expected = {
        "unused-import": "import os",
        "hard-coded-password": 'DB_PASSWORD = "hunter2"',
        "mutable-default-argument": "seen=[]",
        "sql-injection": "LIKE '%{text}%'",
        "eval-on-user-input": "eval(raw)",
        "complex-function": "def lookup(",
        "bare-except": "except:",
    }
    for problem, needle in expected.items():
        first, _ = HELLO_USERS_PROBLEMS[problem]
        assert needle in lines[first - 1], problem
    first, last = HELLO_USERS_PROBLEMS["complex-function"]
    assert lines[last - 1].strip() == 'return 500, {"error": "lookup failed"}'
    branches = sum(
        line.strip().startswith(("if ", "elif ", "for ")) for line in lines[first - 1 : last]
    )
    assert branches > 12


def test_env_settings_name_the_bad_variable() -> None:
    with pytest.raises(ConfigError) as port:
        settings_from_env({"GITHUB_STANDIN_PORT": "ninety"})
    assert port.value.variable == "GITHUB_STANDIN_PORT"
    with pytest.raises(ConfigError) as url:
        settings_from_env({"GITHUB_WEBHOOK_URL": "not a url"})
    assert url.value.variable == "GITHUB_WEBHOOK_URL"
    settings = settings_from_env(
        {"GITHUB_CLIENT_ID": "abc", "GITHUB_STANDIN_PORT": "9911", "GITHUB_STANDIN_HOST": "0.0.0.0"}
    )
    assert settings.standin.client_id == "abc"
    assert settings.standin.public_url == "http://127.0.0.1:9911"
    assert settings.host == "0.0.0.0"
    assert settings.standin.callback_url == CALLBACK
    gateway = settings_from_env({"PUBLIC_URL": "http://127.0.0.1:18080/"})
    assert gateway.standin.callback_url == "http://127.0.0.1:18080/"
    behind = settings_from_env({"PUBLIC_URL": "https://tandem.example.com/somewhere"})
    assert behind.standin.callback_url == "https://tandem.example.com/"
