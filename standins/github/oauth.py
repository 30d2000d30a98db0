"""GitHub's OAuth web flow: the authorize page and the code-for-token exchange."""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web
from yarl import URL

from standins.github import data
from standins.github.keys import STATE_KEY
from standins.github.responses import ApiError
from standins.github.store import LOGIN_PATTERN, OAuthError

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# An S256 challenge is a base64url SHA-256: exactly 43 characters.
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_ERROR_DOCS = (
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors"
)


def parse_scopes(raw: str) -> list[str]:
    """Scopes as GitHub takes them: space- or comma-separated, duplicates dropped."""
    scopes: list[str] = []
    for scope in re.split(r"[\s,]+", raw.strip()):
        if scope and scope not in scopes:
            scopes.append(scope)
    return scopes


def redirect_fits(given: str, registered: str) -> bool:
    """GitHub's rule: same host and port as the callback (any port on loopback), and a path
    at or below the callback's."""
    try:
        wanted, known = urlsplit(given), urlsplit(registered)
        wanted_port, known_port = wanted.port, known.port
    except ValueError:
        return False
    if wanted.scheme not in ("http", "https") or not wanted.hostname or wanted.fragment:
        return False
    if wanted.hostname in _LOOPBACK and known.hostname in _LOOPBACK:
        pass  # RFC 8252 loopback redirects: GitHub accepts any port
    elif (
        wanted.scheme != known.scheme
        or wanted.hostname != known.hostname
        or wanted_port != known_port
    ):
        return False
    base = known.path.rstrip("/")
    return wanted.path.rstrip("/") == base or wanted.path.startswith(base + "/")


def _redirect(target: str, params: Mapping[str, str]) -> web.Response:
    location = URL(target).update_query({k: v for k, v in params.items() if v})
    return web.Response(status=302, headers={"Location": str(location)})


async def authorize(request: web.Request) -> web.Response:
    """GET /login/oauth/authorize: pick a user, or sign in at once with &login=NAME."""
    state = request.app[STATE_KEY]
    config = state.config
    query = request.query
    if query.get("client_id") != config.client_id:
        # GitHub shows its 404 page for an unknown application.
        return _page("Page not found", "<p>No OAuth application has this client_id.</p>", 404)

    given_redirect = query.get("redirect_uri") or None
    target = given_redirect or config.callback_url
    client_state = query.get("state", "")
    if given_redirect is not None and not redirect_fits(given_redirect, config.callback_url):
        return _redirect(
            config.callback_url,
            {
                "error": "redirect_uri_mismatch",
                "error_description": (
                    "The redirect_uri MUST match the registered callback URL for this application."
                ),
                "error_uri": f"{_ERROR_DOCS}#redirect-uri-mismatch",
                "state": client_state,
            },
        )

    challenge = query.get("code_challenge") or None
    method = query.get("code_challenge_method") or None
    problem = None
    if challenge is not None and method != "S256":
        problem = "code_challenge_method must be S256"
    elif challenge is not None and not _S256_CHALLENGE.match(challenge):
        problem = "code_challenge must be 43 base64url characters (S256)"
    elif challenge is None and method is not None:
        problem = "code_challenge_method given without code_challenge"
    if problem is not None:
        return _redirect(
            target,
            {"error": "invalid_request", "error_description": problem, "state": client_state},
        )

    if "deny" in query:
        return _redirect(
            target,
            {
                "error": "access_denied",
                "error_description": "The user has denied your application access.",
                "error_uri": f"{_ERROR_DOCS}#access-denied",
                "state": client_state,
            },
        )

    login = query.get("login")
    if login is None:
        return _chooser(request, "")
    login = login.strip()
    if not LOGIN_PATTERN.match(login):
        return _chooser(request, f"{login!r} is not a valid GitHub login.", status=422)
    account = state.sign_in(login)
    code = state.issue_code(
        account.login, given_redirect, parse_scopes(query.get("scope", "")), challenge
    )
    return _redirect(target, {"code": code, "state": client_state})


async def access_token(request: web.Request) -> web.Response:
    """POST /login/oauth/access_token: failures are 200 with `error`, exactly like GitHub."""
    state = request.app[STATE_KEY]
    params = dict(request.query)
    raw = await request.read()
    if request.content_type == "application/json":
        try:
            body = json.loads(raw) if raw.strip() else {}
        except (ValueError, RecursionError):
            raise ApiError(400, "Problems parsing JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        params.update({k: v for k, v in body.items() if isinstance(v, str)})
    else:
        params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))

    basic = _basic_client(request)
    if basic is not None:
        params.setdefault("client_id", basic[0])
        params.setdefault("client_secret", basic[1])

    try:
        if params.get("grant_type", "authorization_code") != "authorization_code":
            raise OAuthError(
                "unsupported_grant_type",
                "The grant type is not supported.",
                "unsupported-grant-type",
            )
        token = state.exchange_code(
            client_id=params.get("client_id", ""),
            client_secret=params.get("client_secret", ""),
            code=params.get("code", ""),
            redirect_uri=params.get("redirect_uri") or None,
            verifier=params.get("code_verifier") or None,
        )
    except OAuthError as exc:
        return _token_answer(
            request,
            {"error": exc.error, "error_description": exc.description, "error_uri": exc.uri},
        )
    return _token_answer(
        request,
        {"access_token": token.value, "token_type": "bearer", "scope": ",".join(token.scopes)},
    )


def _basic_client(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _token_answer(request: web.Request, body: dict[str, str]) -> web.Response:
    # GitHub answers form-encoded unless the client asks for JSON.
    if "json" in request.headers.get("Accept", ""):
        return web.json_response(body)
    return web.Response(
        text=urlencode(body),
        content_type="application/x-www-form-urlencoded",
        charset="utf-8",
    )


def _chooser(request: web.Request, error: str, status: int = 200) -> web.Response:
    """The sign-in page: one link per sample user and a form for any login."""
    state = request.app[STATE_KEY]
    items = []
    for seed in data.ACCOUNTS:
        if seed.type != "User":
            continue
        account = state.account(seed.login)
        label = seed.login if account is None else f"{account.login} — {account.name or ''}"
        href = request.rel_url.update_query(login=seed.login)
        items.append(f'<li><a href="{html.escape(str(href))}">{html.escape(label)}</a></li>')
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(key)}" value="{html.escape(value)}">'
        for key, value in request.query.items()
        if key not in ("login", "deny")
    )
    deny = request.rel_url.update_query(deny="1")
    scopes = ", ".join(parse_scopes(request.query.get("scope", ""))) or "(none)"
    problem = f'<p class="error">{html.escape(error)}</p>' if error else ""
    body = f"""
<p class="warning">Local GitHub stand-in: for development only. No real GitHub account is used.</p>
<p>Sign in to <strong>{html.escape(request.query.get("client_id", ""))}</strong>
(scopes: {html.escape(scopes)}) as:</p>
<ul>{"".join(items)}</ul>
{problem}
<form method="get" action="{html.escape(request.path)}">
{hidden}
<label>or any login: <input name="login" required pattern="[A-Za-z0-9\\-]{{1,39}}"></label>
<button type="submit">Sign in</button>
</form>
<p><a href="{html.escape(str(deny))}">Cancel</a></p>
"""
    return _page("Authorize application", body, status)


def _page(title: str, body: str, status: int) -> web.Response:
    document = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>{html.escape(title)} · GitHub stand-in</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; }}
.warning {{ background: #fff8c5; padding: .5rem; border: 1px solid #d4a72c; }}
.error {{ color: #cf222e; }}
</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
{body}
</body>
</html>
"""
    return web.Response(text=document, status=status, content_type="text/html", charset="utf-8")
