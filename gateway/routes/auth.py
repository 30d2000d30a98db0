"""Authentication routes: GitHub sign-in, token refresh and logout, the current user, JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from typing import Any

from aiohttp import web
from pydantic import Field
from tandem.auth.v1 import auth_pb2

from gateway import keys
from gateway.auth import authenticate
from gateway.clientaddr import client_address, forwarded_https
from gateway.errors import ApiError, api_error_response
from gateway.http import Schema, json_response, no_content, parse_json
from gateway.openapi import Operation, RouteTable
from gateway.schemas import UserOut, user_out

RATE = "rate_limiter"
security = logging.getLogger("tandem.security")

# Login CSRF: the state is bound to the browser that started the flow. The login route
# sets this cookie to a hash of the state; the callback refuses a state whose cookie is
# missing or differs, so a code+state obtained by someone else cannot sign this browser
# in. Scoped to the sign-in routes, gone with the state (the auth service keeps a state
# for 10 minutes), out of reach of scripts (HttpOnly) and sent on GitHub's top-level
# redirect back (SameSite=Lax, where Strict would drop it).
LOGIN_COOKIE = "tandem_login"
LOGIN_COOKIE_PATH = "/api/v1/auth/github"
LOGIN_COOKIE_MAX_AGE = 600
_NOT_THIS_BROWSER = ("this sign-in was not started in this browser, or took more than 10 minutes; "
                     "start sign-in again")


class RefreshIn(Schema):
    refresh_token: str = Field(min_length=1, max_length=256)


class TokensOut(Schema):
    access_token: str
    refresh_token: str
    token_type: str = Field(description="Always Bearer")
    expires_in: int = Field(description="Seconds until the access token expires")
    user: UserOut


def _tokens(reply: auth_pb2.CompleteLoginResponse | auth_pb2.RefreshTokenResponse) -> dict[str, Any]:
    t = reply.tokens
    return {"access_token": t.access_token, "refresh_token": t.refresh_token,
            "token_type": t.token_type, "expires_in": t.expires_in, "user": user_out(reply.user)}


async def _limit_ip(request: web.Request) -> None:
    cfg = request.app[keys.CONFIG]
    await request.app[keys.LIMITER].hit("ip", client_address(request), cfg.rate_auth_per_minute,
                                        exact=True)


def _state_binding(state: str) -> str:
    """What the cookie holds for a state: its SHA-256 (the state itself never sits in a cookie)."""
    digest = hashlib.sha256(b"tandem-login-state:" + state.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _secure(request: web.Request) -> bool:
    """Secure behind TLS: PUBLIC_URL is https, or the client spoke HTTPS (to us or a trusted proxy)."""
    return request.app[keys.CONFIG].public_url.startswith("https://") or forwarded_https(request)


async def login(request: web.Request) -> web.Response:
    await _limit_ip(request)
    redirect = request.query.get("redirect_uri", "")
    reply = await request.app[keys.BACKENDS].call(
        "auth", "StartLogin", request.app[keys.BACKENDS].auth.StartLogin,
        auth_pb2.StartLoginRequest(redirect_uri=redirect))
    found = web.HTTPFound(reply.authorize_url, headers={"Cache-Control": "no-store"})
    found.set_cookie(LOGIN_COOKIE, _state_binding(reply.state), max_age=LOGIN_COOKIE_MAX_AGE,
                     path=LOGIN_COOKIE_PATH, httponly=True, samesite="Lax", secure=_secure(request))
    raise found


async def callback(request: web.Request) -> web.Response:
    await _limit_ip(request)
    try:
        response = await _complete_login(request)
    except _StateUntouched as exc:
        # Refused before auth saw the state (a forged or cross-site callback among them):
        # the real sign-in of this browser is still under way, so its cookie stays.
        return api_error_response(exc)
    except ApiError as exc:
        if exc.status == 429 or exc.status >= 500:
            # Nothing was decided about the state: keep the cookie so a reload can retry.
            raise
        response = api_error_response(exc)
    # Decided (signed in, or refused): the state is spent or worthless, and so is its cookie.
    response.del_cookie(LOGIN_COOKIE, path=LOGIN_COOKIE_PATH, httponly=True, samesite="Lax",
                        secure=_secure(request))
    return response


class _StateUntouched(ApiError):
    """A callback refused in the gateway, before the auth service saw (and spent) its state."""


async def _complete_login(request: web.Request) -> web.Response:
    code, state = request.query.get("code", ""), request.query.get("state", "")
    missing = [{"field": n, "message": "required"} for n, v in (("code", code), ("state", state)) if not v]
    if missing:
        raise _StateUntouched(400, "invalid_argument", "code and state are required", missing)
    if "error" in request.query:
        raise _StateUntouched(400, "invalid_argument", "GitHub sign-in was cancelled or refused")
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not cookie or not hmac.compare_digest(cookie.encode(), _state_binding(state).encode()):
        # Checked before the auth service sees the state: a refused attempt does not spend
        # it, so the browser that started the sign-in can still finish it.
        security.warning("oauth callback refused: state not bound to this browser",
                         extra={"reason": "cookie missing" if not cookie else "cookie mismatch"})
        raise _StateUntouched(400, "invalid_argument", _NOT_THIS_BROWSER)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("auth", "CompleteLogin", backends.auth.CompleteLogin,
                                auth_pb2.CompleteLoginRequest(code=code, state=state))
    return json_response(_tokens(reply), headers={"Cache-Control": "no-store"})


async def refresh(request: web.Request) -> web.Response:
    await _limit_ip(request)
    body = await parse_json(request, RefreshIn)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("auth", "RefreshToken", backends.auth.RefreshToken,
                                auth_pb2.RefreshTokenRequest(refresh_token=body.refresh_token))
    return json_response(_tokens(reply), headers={"Cache-Control": "no-store"})


async def logout(request: web.Request) -> web.Response:
    await _limit_ip(request)
    body = await parse_json(request, RefreshIn)
    backends = request.app[keys.BACKENDS]
    await backends.call("auth", "Logout", backends.auth.Logout,
                        auth_pb2.LogoutRequest(refresh_token=body.refresh_token))
    return no_content()


async def me(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("auth", "GetUser", backends.auth.GetUser,
                                auth_pb2.GetUserRequest(user_id=auth.user_id), token=auth.token)
    return json_response(user_out(reply.user))


_JWKS_TTL = 60.0


async def jwks(request: web.Request) -> web.Response:
    # Keys change rarely: cache the document briefly instead of calling auth per request.
    cached = request.app[keys.JWKS_CACHE]
    now = time.monotonic()
    if cached[0] is None or now - cached[1] > _JWKS_TTL:
        backends = request.app[keys.BACKENDS]
        reply = await backends.call("auth", "GetJwks", backends.auth.GetJwks, auth_pb2.GetJwksRequest())
        cached[0], cached[1] = reply.jwks_json.encode(), now
    return web.Response(body=cached[0], content_type="application/json",
                        headers={"Cache-Control": f"public, max-age={int(_JWKS_TTL)}"})


JWKS_SCHEMA = {"type": "object", "required": ["keys"], "properties": {"keys": {"type": "array", "items": {
    "type": "object", "required": ["kty", "kid"],
    "properties": {"kty": {"type": "string"}, "crv": {"type": "string"}, "x": {"type": "string"},
                   "kid": {"type": "string"}, "alg": {"type": "string"}, "use": {"type": "string"}}}}}}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


_LOGIN_DOC = (f"Sets the short-lived cookie `{LOGIN_COOKIE}` (HttpOnly, SameSite=Lax, Path="
              f"{LOGIN_COOKIE_PATH}, Secure behind TLS) that binds the sign-in to this browser.")
_CALLBACK_DOC = (f"Must come from the browser that started the sign-in, with its `{LOGIN_COOKIE}` "
                 "cookie (a browser sends it; scripts keep a cookie jar). Without it, or with "
                 "another sign-in's, the answer is 400 and sign-in must start again. The cookie is "
                 "cleared by every answer except 429 and 5xx.")


def add_routes(table: RouteTable) -> None:
    table.add(Operation("GET", "/api/v1/auth/github/login", login, "Start GitHub sign-in (302 to GitHub)",
                        "auth", status=302, auth=False, errors=(400, 429),
                        query=(("redirect_uri", {"type": "string"},
                                "Where GitHub sends the browser back; must be allow-listed"),),
                        extra={"description": _LOGIN_DOC, "responses": {
                            "302": {"description": "Redirect to GitHub's authorize page",
                                    "headers": {"Location": {"schema": {"type": "string"}},
                                                "Set-Cookie": {"schema": {"type": "string"},
                                                               "description": "tandem_login"}}},
                            **{str(code): _error_response(text) for code, text in (
                                (400, "redirect_uri not allowed"), (429, "Rate limited"),
                                (503, "Dependency unavailable"))}}}))
    table.add(Operation("GET", "/api/v1/auth/github/callback", callback,
                        "Finish GitHub sign-in: exchange the code for Tandem tokens", "auth",
                        auth=False, response=TokensOut, errors=(400, 429),
                        query=(("code", {"type": "string"}, "GitHub's authorization code"),
                               ("state", {"type": "string"}, "The state from the login redirect")),
                        extra={"description": _CALLBACK_DOC}))
    table.add(Operation("POST", "/api/v1/auth/refresh", refresh,
                        "Rotate a refresh token into a new token pair", "auth", auth=False,
                        request=RefreshIn, response=TokensOut, errors=(401, 429)))
    table.add(Operation("POST", "/api/v1/auth/logout", logout, "Revoke a refresh token's family",
                        "auth", status=204, auth=False, request=RefreshIn, errors=(429,)))
    table.add(Operation("GET", "/api/v1/me", me, "The signed-in user", "auth", response=UserOut,
                        errors=(429,)))
    table.add(Operation("GET", "/.well-known/jwks.json", jwks, "Public keys that sign access tokens",
                        "auth", auth=False, response=JWKS_SCHEMA))
