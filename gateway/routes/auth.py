"""Authentication routes: GitHub sign-in, token refresh and logout, the current user, JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from typing import Any

from aiohttp import web
from pydantic import Field, field_validator
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema
from tandem.auth.v1 import auth_pb2

from gateway import keys
from gateway.clientaddr import client_address, forwarded_https
from gateway.errors import ApiError, api_error_response
from gateway.http import Schema, json_response, no_content, parse_json
from gateway.openapi import Operation, RouteTable
from gateway.origins import is_own_origin
from gateway.schemas import UserOut, user_out

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


# The refresh token of a browser app: out of reach of scripts (HttpOnly), never sent by
# another site's page (SameSite=Strict) and only to the routes that spend it (Path).
REFRESH_COOKIE = "tandem_refresh"
REFRESH_COOKIE_PATH = "/api/v1/auth"
# Beside it, a flag the app's script can read (it holds no secret, only "1"): whether a
# refresh cookie was set here and not cleared since. A page load without it knows it is
# signed out without asking (a 401 from /auth/refresh is logged as an error by browsers).
SIGNED_IN_COOKIE = "tandem_signed_in"
TRANSPORTS = ("json", "cookie")
_MAX_REFRESH = 256


def _no_default(schema: JsonDict) -> None:
    """An optional field's schema without `"default": null` (null is not a value it takes)."""
    schema.pop("default", None)


def _sized_token(schema: JsonDict) -> None:
    _no_default(schema)
    schema.update(minLength=1, maxLength=_MAX_REFRESH)


class RefreshIn(Schema):
    refresh_token: str | SkipJsonSchema[None] = Field(
        default=None, description="The refresh token (JSON transport). Omit it (send `{}`) to use "
        f"the `{REFRESH_COOKIE}` cookie instead (cookie transport: the request must be "
        "`application/json` and come from this site).",
        json_schema_extra=_sized_token)

    @field_validator("refresh_token", mode="before")
    @classmethod
    def _sized(cls, value: object) -> object:
        # Before the str | None union: its refusals would name both branches as fields.
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if not 1 <= len(value) <= _MAX_REFRESH:
            raise ValueError(f"must be 1 to {_MAX_REFRESH} characters")
        return value


class TokensOut(Schema):
    access_token: str
    refresh_token: str | SkipJsonSchema[None] = Field(
        default=None, description="The new refresh token. Absent with the cookie transport "
        f"(`transport=cookie` on the callback, or a refresh without a `refresh_token`): it is "
        f"then in the `{REFRESH_COOKIE}` cookie instead.", json_schema_extra=_no_default)
    token_type: str = Field(description="Always Bearer")
    expires_in: int = Field(description="Seconds until the access token expires")
    user: UserOut


def _tokens(reply: auth_pb2.CompleteLoginResponse | auth_pb2.RefreshTokenResponse,
            *, with_refresh: bool = True) -> dict[str, Any]:
    t = reply.tokens
    out = {"access_token": t.access_token, "refresh_token": t.refresh_token,
           "token_type": t.token_type, "expires_in": t.expires_in, "user": user_out(reply.user)}
    if not with_refresh:
        del out["refresh_token"]
    return out


def _set_refresh_cookie(request: web.Request, response: web.Response,
                        tokens: auth_pb2.TokenPair) -> None:
    # Max-Age follows the token's own lifetime; an auth service too old to say sets a
    # cookie for the browser session rather than a guess.
    response.set_cookie(REFRESH_COOKIE, tokens.refresh_token,
                        max_age=tokens.refresh_expires_in or None, path=REFRESH_COOKIE_PATH,
                        httponly=True, samesite="Strict", secure=_secure(request))
    response.set_cookie(SIGNED_IN_COOKIE, "1", max_age=tokens.refresh_expires_in or None,
                        path="/", samesite="Strict", secure=_secure(request))


def _clear_refresh_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(REFRESH_COOKIE, path=REFRESH_COOKIE_PATH, httponly=True,
                        samesite="Strict", secure=_secure(request))
    response.del_cookie(SIGNED_IN_COOKIE, path="/", samesite="Strict", secure=_secure(request))


def _cookie_mode_request(request: web.Request) -> None:
    """A refresh or logout that relies on the cookie must be a script's same-origin JSON call.

    SameSite=Strict already keeps the cookie off other sites' requests; these two checks
    hold where it does not (old browsers, a sibling subdomain): a cross-site form cannot send
    application/json without a CORS preflight we never grant, and a browser names the page's
    origin on every POST.
    """
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type",
                       f"the {REFRESH_COOKIE} cookie is only used with Content-Type: application/json")
    origin = request.headers.get("Origin")
    if origin is not None and not is_own_origin(request, request.app[keys.CONFIG].public_url, origin):
        security.warning("refresh cookie refused: cross-origin request",
                         extra={"path": request.path})
        raise ApiError(403, "permission_denied",
                       f"the {REFRESH_COOKIE} cookie is only used by this site's own pages")


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
    # First: GitHub sends a person who clicked Cancel back with `error=access_denied`, the
    # state and no code, and that is what they must be told.
    if "error" in request.query:
        raise _StateUntouched(400, "invalid_argument", "GitHub sign-in was cancelled or refused")
    code, state = request.query.get("code", ""), request.query.get("state", "")
    transport = request.query.get("transport", "json")
    if transport not in TRANSPORTS:
        raise _StateUntouched(400, "invalid_argument", "transport must be json or cookie",
                              [{"field": "transport", "message": "must be json or cookie"}])
    missing = [{"field": n, "message": "required"} for n, v in (("code", code), ("state", state)) if not v]
    if missing:
        raise _StateUntouched(400, "invalid_argument", "code and state are required", missing)
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
    in_cookie = transport == "cookie"
    response = json_response(_tokens(reply, with_refresh=not in_cookie),
                             headers={"Cache-Control": "no-store"})
    if in_cookie:
        _set_refresh_cookie(request, response, reply.tokens)
    return response


async def refresh(request: web.Request) -> web.Response:
    await _limit_ip(request)
    body = await parse_json(request, RefreshIn)
    backends = request.app[keys.BACKENDS]
    if body.refresh_token is not None:
        reply = await backends.call("auth", "RefreshToken", backends.auth.RefreshToken,
                                    auth_pb2.RefreshTokenRequest(refresh_token=body.refresh_token))
        return json_response(_tokens(reply), headers={"Cache-Control": "no-store"})
    _cookie_mode_request(request)
    token = request.cookies.get(REFRESH_COOKIE, "")
    try:
        if not token or len(token) > _MAX_REFRESH:
            raise ApiError(401, "unauthenticated", "not signed in: no refresh cookie")
        reply = await backends.call("auth", "RefreshToken", backends.auth.RefreshToken,
                                    auth_pb2.RefreshTokenRequest(refresh_token=token))
    except ApiError as exc:
        if exc.status != 401:
            # 429 and 5xx decided nothing about the token: keep it for the retry.
            raise
        # Spent, revoked, expired or unknown: the cookie is worthless, so it goes.
        failed = api_error_response(exc)
        _clear_refresh_cookie(request, failed)
        return failed
    response = json_response(_tokens(reply, with_refresh=False), headers={"Cache-Control": "no-store"})
    _set_refresh_cookie(request, response, reply.tokens)
    return response


async def logout(request: web.Request) -> web.Response:
    await _limit_ip(request)
    body = await parse_json(request, RefreshIn)
    backends = request.app[keys.BACKENDS]
    if body.refresh_token is not None:
        await backends.call("auth", "Logout", backends.auth.Logout,
                            auth_pb2.LogoutRequest(refresh_token=body.refresh_token))
        return no_content()
    _cookie_mode_request(request)
    token = request.cookies.get(REFRESH_COOKIE, "")
    if token and len(token) <= _MAX_REFRESH:
        await backends.call("auth", "Logout", backends.auth.Logout,
                            auth_pb2.LogoutRequest(refresh_token=token))
    # Signing out is idempotent: no cookie (or a worthless one) is signed out already.
    response = no_content()
    _clear_refresh_cookie(request, response)
    return response


async def me(request: web.Request) -> web.Response:
    auth = request[keys.AUTH]
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
                 "cleared by every answer except 429 and 5xx.\n\n"
                 "With `transport=cookie` (browser apps) the body has no `refresh_token`: it is set "
                 f"as the cookie `{REFRESH_COOKIE}` (HttpOnly, SameSite=Strict, Path="
                 f"{REFRESH_COOKIE_PATH}, Max-Age the refresh token's lifetime, Secure behind TLS), "
                 "which `POST /api/v1/auth/refresh` and `/logout` with `{}` then use.")
_COOKIE_MODE_DOC = (f"With `{{}}` (no `refresh_token`) the `{REFRESH_COOKIE}` cookie is used "
                    "instead (cookie transport): the request must have `Content-Type: "
                    "application/json` (415 otherwise) and, when it carries an `Origin` header, "
                    "come from this site's own origin (403 otherwise).")
_REFRESH_DOC = (_COOKIE_MODE_DOC + " The answer then has no `refresh_token`: the rotated one "
                "replaces the cookie. No cookie, or a spent, revoked or expired one, is 401 and "
                "clears the cookie; presenting a spent refresh token (either way) revokes its family.")
_LOGOUT_DOC = (_COOKIE_MODE_DOC + " The cookie's family is revoked and the cookie cleared; without "
               "a cookie the answer is 204 too (signing out is idempotent).")
_SET_REFRESH = {"Set-Cookie": {"schema": {"type": "string"},
                               "description": f"{REFRESH_COOKIE}, with the cookie transport"}}


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
                               ("state", {"type": "string"}, "The state from the login redirect"),
                               ("transport", {"type": "string", "enum": list(TRANSPORTS)},
                                "`cookie`: the refresh token goes into the "
                                f"`{REFRESH_COOKIE}` cookie, not the body (default `json`)")),
                        response_headers=_SET_REFRESH, extra={"description": _CALLBACK_DOC}))
    table.add(Operation("POST", "/api/v1/auth/refresh", refresh,
                        "Rotate a refresh token into a new token pair", "auth", auth=False,
                        request=RefreshIn, response=TokensOut, errors=(401, 403, 415, 429),
                        response_headers=_SET_REFRESH, extra={"description": _REFRESH_DOC}))
    table.add(Operation("POST", "/api/v1/auth/logout", logout, "Revoke a refresh token's family",
                        "auth", status=204, auth=False, request=RefreshIn, errors=(403, 415, 429),
                        response_headers=_SET_REFRESH, extra={"description": _LOGOUT_DOC}))
    table.add(Operation("GET", "/api/v1/me", me, "The signed-in user", "auth", response=UserOut,
                        errors=(429,)))
    table.add(Operation("GET", "/.well-known/jwks.json", jwks, "Public keys that sign access tokens",
                        "auth", auth=False, response=JWKS_SCHEMA))
