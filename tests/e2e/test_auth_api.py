"""Authentication through the gateway: sign-in, tokens, attacks, rate limits, and clean logs."""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scripts.platform import LocalPlatform
from tests.helpers.identity import sign_in_http
from tests.helpers.waiting import poll

pytestmark = pytest.mark.e2e


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _get_user_calls(url: str) -> float:
    text = httpx.get(url + "/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "tandem_grpc_client_handled":
            total += sum(s.value for s in family.samples
                         if s.labels.get("method") == "GetUser" and s.name.endswith("_total"))
    return total


def test_login_redirects_to_github_with_pkce(platform: LocalPlatform) -> None:
    reply = httpx.get(platform.url + "/api/v1/auth/github/login")
    assert reply.status_code == 302
    location = httpx.URL(reply.headers["location"])
    assert location.path == "/login/oauth/authorize"
    assert {"client_id", "state", "code_challenge", "scope", "redirect_uri"} <= set(location.params)
    assert location.params["code_challenge_method"] == "S256"


def test_login_refuses_redirect_outside_allow_list(platform: LocalPlatform) -> None:
    reply = httpx.get(platform.url + "/api/v1/auth/github/login",
                      params={"redirect_uri": "https://evil.example/steal"})
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "invalid_argument"


def test_full_sign_in_then_me(platform: LocalPlatform) -> None:
    me = sign_in_http(platform.url, "octocat")
    reply = httpx.get(platform.url + "/api/v1/me", headers=me.headers)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body) == {"id", "github_login", "name", "avatar_url", "created_at"}
    assert body["github_login"] == "octocat"
    assert body["id"] == me.user_id
    claims = jwt.decode(me.access_token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] <= 900
    assert {"iss", "aud", "sub", "iat", "exp", "jti"} <= set(claims)
    assert jwt.get_unverified_header(me.access_token)["alg"] == "EdDSA"
    jwks = httpx.get(platform.url + "/.well-known/jwks.json").json()
    assert jwt.get_unverified_header(me.access_token)["kid"] in {k["kid"] for k in jwks["keys"]}


@pytest.mark.parametrize("params", [{}, {"code": "x"}, {"state": "y"}, {"code": "x", "state": "forged"}])
def test_callback_with_missing_or_forged_state_is_400(platform: LocalPlatform,
                                                      params: dict[str, str]) -> None:
    reply = httpx.get(platform.url + "/api/v1/auth/github/callback", params=params)
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "invalid_argument"


def _code_and_state(browser: httpx.Client, login: str) -> dict[str, str]:
    """Start sign-in in `browser` (which keeps the cookies it is given) and let the GitHub
    stand-in sign `login` in: the code and state GitHub would send the browser back with."""
    start = browser.get("/api/v1/auth/github/login")
    assert start.status_code == 302, start.text
    authorize = httpx.URL(start.headers["location"]).copy_add_param("login", login)
    back = httpx.URL(httpx.get(str(authorize)).headers["location"])
    return {"code": back.params["code"], "state": back.params["state"]}


def test_callback_state_replay_is_400(platform: LocalPlatform) -> None:
    with httpx.Client(base_url=platform.url) as browser:
        params = _code_and_state(browser, "hubot")
        cookies = dict(browser.cookies)
        assert browser.get("/api/v1/auth/github/callback", params=params).status_code == 200
        # Replayed with the very cookie it was started with: the state is spent.
        again = httpx.get(platform.url + "/api/v1/auth/github/callback", params=params,
                          cookies=cookies)
        assert again.status_code == 400
        assert again.json()["error"]["code"] == "invalid_argument"


def _set_cookie(reply: httpx.Response) -> dict[str, str]:
    """The sign-in cookie's attributes from Set-Cookie (lower-cased names; flags map to "")."""
    headers = reply.headers.get_list("set-cookie")
    assert len(headers) == 1, headers
    name_value, *attributes = (part.strip() for part in headers[0].split(";"))
    out = {"": name_value}
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        out[key.lower()] = value
    return out


def test_login_binds_the_state_to_the_browser_with_a_short_lived_cookie(platform: LocalPlatform) -> None:
    reply = httpx.get(platform.url + "/api/v1/auth/github/login")
    assert reply.status_code == 302
    state = httpx.URL(reply.headers["location"]).params["state"]
    cookie = _set_cookie(reply)
    name, _, value = cookie[""].partition("=")
    assert name == "tandem_login"
    assert len(value) >= 43  # a SHA-256, base64url
    assert state not in value  # the cookie holds a hash of the state, never the state itself
    assert "httponly" in cookie
    assert cookie["samesite"].lower() == "lax"  # sent on GitHub's top-level redirect back
    assert cookie["path"] == "/api/v1/auth/github"
    assert 0 < int(cookie["max-age"]) <= 600
    assert "secure" not in cookie  # plain HTTP here; see the TLS test for Secure
    # A client's own X-Forwarded-Proto is not believed: this peer is no trusted proxy.
    spoofed = httpx.get(platform.url + "/api/v1/auth/github/login",
                        headers={"X-Forwarded-Proto": "https"})
    assert "secure" not in _set_cookie(spoofed)


def test_a_code_and_state_from_one_browser_cannot_be_completed_by_another(
        platform: LocalPlatform) -> None:
    """Login CSRF: an attacker's code+state must not sign a victim's browser into the attacker."""
    with (httpx.Client(base_url=platform.url) as attacker, httpx.Client(base_url=platform.url) as victim,
          httpx.Client(base_url=platform.url) as busy):
        params = _code_and_state(attacker, f"attacker-{secrets.token_hex(3)}")

        # The victim's browser never started a sign-in: no cookie at all.
        refused = victim.get("/api/v1/auth/github/callback", params=params)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["code"] == "invalid_argument"
        assert "start sign-in again" in error["message"]
        assert error["request_id"] == refused.headers["X-Request-Id"]
        assert "access_token" not in refused.text

        # A browser with a sign-in of its own under way: its cookie is for another state.
        busy.get("/api/v1/auth/github/login")
        assert busy.cookies
        mismatched = busy.get("/api/v1/auth/github/callback", params=params)
        assert mismatched.status_code == 400, mismatched.text
        assert "start sign-in again" in mismatched.json()["error"]["message"]
        # A forged (e.g. cross-site) callback must not end this browser's own sign-in:
        # its cookie stays, and that sign-in still finishes.
        assert "set-cookie" not in mismatched.headers
        assert busy.cookies

        # A cookie made up for the state by hand does not fit either.
        forged = victim.get("/api/v1/auth/github/callback", params=params,
                            headers={"Cookie": f"tandem_login={params['state']}"})
        assert forged.status_code == 400

        # The browser that started it still finishes it, and its cookie is cleared.
        done = attacker.get("/api/v1/auth/github/callback", params=params)
        assert done.status_code == 200, done.text
        assert done.json()["user"]["github_login"].startswith("attacker-")
        cleared = _set_cookie(done)
        assert cleared["max-age"] == "0"
        assert not attacker.cookies


def test_refresh_rotation_and_reuse_detection(platform: LocalPlatform) -> None:
    me = sign_in_http(platform.url, "monalisa")
    first = httpx.post(platform.url + "/api/v1/auth/refresh", json={"refresh_token": me.refresh_token})
    assert first.status_code == 200
    new_refresh = first.json()["refresh_token"]
    reuse = httpx.post(platform.url + "/api/v1/auth/refresh", json={"refresh_token": me.refresh_token})
    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "unauthenticated"
    family = httpx.post(platform.url + "/api/v1/auth/refresh", json={"refresh_token": new_refresh})
    assert family.status_code == 401


def test_logout_is_204_and_revokes(platform: LocalPlatform) -> None:
    me = sign_in_http(platform.url, "hubot")
    out = httpx.post(platform.url + "/api/v1/auth/logout", json={"refresh_token": me.refresh_token})
    assert out.status_code == 204
    again = httpx.post(platform.url + "/api/v1/auth/refresh", json={"refresh_token": me.refresh_token})
    assert again.status_code == 401


# `{}` is not here: an empty object asks for the refresh cookie (tests/gateway covers it).
@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b'{"refresh_token": 5}'])
def test_malformed_bodies_are_400_with_details(platform: LocalPlatform, body: bytes) -> None:
    reply = httpx.post(platform.url + "/api/v1/auth/refresh", content=body,
                       headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "invalid_argument"


def test_oversized_body_is_413(platform: LocalPlatform) -> None:
    reply = httpx.post(platform.url + "/api/v1/auth/refresh",
                       content=b'{"refresh_token": "' + b"a" * (2 * 1024 * 1024) + b'"}')
    assert reply.status_code == 413


def test_forged_tokens_are_401_and_never_reach_a_service(platform: LocalPlatform) -> None:
    me = sign_in_http(platform.url, "octocat")
    header, payload, sig = me.access_token.split(".")
    claims = jwt.decode(me.access_token, options={"verify_signature": False})
    forged = [
        f"{_b64({'alg': 'none', 'kid': jwt.get_unverified_header(me.access_token)['kid']})}.{payload}.",
        f"{header}.{_b64({**claims, 'sub': '00000000-0000-0000-0000-000000000000'})}.{sig}",
        f"{_b64({'alg': 'EdDSA', 'kid': 'unknown-kid'})}.{payload}.{sig}",
        f"{_b64({'alg': 'HS256', 'kid': jwt.get_unverified_header(me.access_token)['kid']})}.{payload}.{sig}",
        "garbage",
        me.access_token[:-4] + "AAAA",
    ]
    before = _get_user_calls(platform.url)
    for token in forged:
        reply = httpx.get(platform.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 401, token
        assert reply.json()["error"]["code"] == "unauthenticated"
        assert "WWW-Authenticate" in reply.headers
    assert httpx.get(platform.url + "/api/v1/me").status_code == 401
    assert httpx.get(platform.url + "/api/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401
    assert _get_user_calls(platform.url) == before


def _access_lines(plat: LocalPlatform, path: str) -> list[dict[str, Any]]:
    """The gateway's access-log entries for `path`, in order (the log is JSON lines)."""
    entries = []
    for line in (plat.log_dir / "gateway.log").read_text(errors="replace").splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a line being written, or a non-JSON start-up line
        if isinstance(entry, dict) and entry.get("logger") == "gateway.access" and \
                entry.get("path") == path:
            entries.append(entry)
    return entries


@pytest.fixture
def strict_platform(base_env: dict[str, str]) -> Iterator[LocalPlatform]:
    # Its own key prefix: the shared platform's sign-ins must not use up this budget.
    env = dict(base_env, RATE_LIMIT_AUTH_PER_MINUTE="3", ACCESS_LOG="true", LOG_LEVEL="debug",
               REDIS_PREFIX=base_env["REDIS_PREFIX"] + "strict:")
    plat = LocalPlatform.create(env, openai_standin=False)
    with plat:
        plat.wait_ready(90)
        yield plat


@pytest.mark.slow
def test_auth_routes_are_rate_limited_per_ip_and_logs_hold_no_secrets(
        strict_platform: LocalPlatform) -> None:
    url = strict_platform.url
    # Signing in uses two auth-route requests (login, callback) of the budget of 3.
    me = sign_in_http(url, "octocat")
    httpx.get(url + "/api/v1/me", headers=me.headers)
    replies = [httpx.get(url + "/api/v1/auth/github/login") for _ in range(8)]
    limited = [r for r in replies if r.status_code == 429]
    assert limited, [r.status_code for r in replies]
    assert limited[0].json()["error"]["code"] == "rate_limited"
    assert int(limited[0].headers["Retry-After"]) >= 1

    # The gateway writes a request's access line after answering it: wait until the lines of
    # all these requests are there (the rest of each process's logging precedes its answers).
    def logged_all() -> bool | None:
        lines = _access_lines(strict_platform, "/api/v1/auth/github/login")
        return True if [e["status"] for e in lines][-len(replies):] == [
            r.status_code for r in replies] else None

    poll(logged_all, 15, "the access log lines of the login requests")
    secrets_seen = {
        "access token": me.access_token,
        "refresh token": me.refresh_token,
        "service token": strict_platform.env["SERVICE_TOKEN"],
        "encryption key": strict_platform.env["TOKEN_ENCRYPTION_KEY"],
        "client secret": strict_platform.env["GITHUB_CLIENT_SECRET"],
    }
    tandem_logs = [p for p in strict_platform.log_dir.glob("*.log")
                   if p.stem not in ("github", "openai")]
    assert tandem_logs
    text = "\n".join(p.read_text(errors="replace") for p in tandem_logs)
    assert "user signed in" in text  # the logs were captured at all
    for what, value in secrets_seen.items():
        assert value not in text, f"{what} leaked into the logs"
    assert not re.search(r"gho_[A-Za-z0-9]{8,}", text), "a GitHub token leaked into the logs"
    assert "code=" not in text
    assert "state=" not in text
