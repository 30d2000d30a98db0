"""Request ids, GitHub-style errors, injected faults, authentication and rate limits."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import secrets
from http import HTTPStatus

from aiohttp import web
from aiohttp.typedefs import Handler

from standins.github.keys import STATE_KEY, VIEWER_KEY, Viewer
from standins.github.responses import ApiError, http_exception_response
from standins.github.store import Budget, State

log = logging.getLogger("standins.github")

RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
# /rate_limit itself is free on GitHub, so clients can poll it while limited.
_FREE_PATHS = frozenset({"/rate_limit"})


def surface(request: web.Request) -> str:
    """ "api" (REST, rate limited), "web" (OAuth pages, raw files, avatars) or "control".

    Routes are named "<surface>:<name>"; unmatched paths count as API, like
    api.github.com's 404s do.
    """
    name = request.match_info.route.name
    return name.split(":", 1)[0] if name else "api"


def github_request_id() -> str:
    """Shaped like GitHub's X-GitHub-Request-Id, e.g. C0DE:1A2B:3C4D5E:6F7081:65A1B2C3."""
    return ":".join(secrets.token_hex(n).upper() for n in (2, 2, 3, 3, 4))


# Order (outermost first): errors_middleware wraps everything so even a failure
# inside api_middleware is answered as GitHub-style JSON with a request id;
# api_middleware then applies faults, authentication and the rate limit.
@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = github_request_id()
    response: web.StreamResponse
    try:
        response = await handler(request)
    except ApiError as exc:
        response = exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            response = web.Response(status=exc.status, headers=exc.headers)
        else:
            response = http_exception_response(exc)
    except Exception:
        # Bad input is answered by handlers; reaching here is a bug in the stand-in.
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = ApiError(500, "Server Error").response()
    response.headers["X-GitHub-Request-Id"] = request_id
    return response


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    kind = surface(request)
    if kind == "control":
        return await handler(request)
    state = request.app[STATE_KEY]
    faults = state.faults
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.status is not None:
        return ApiError(faults.status, _reason(faults.status)).response()
    if kind != "api":
        return await handler(request)
    return await _rest(request, handler, state)


async def _rest(request: web.Request, handler: Handler, state: State) -> web.StreamResponse:
    config = state.config
    anonymous_key = f"ip:{request.remote or 'unknown'}"
    credentials = bearer_credentials(request)
    viewer = Viewer(None, None)
    if credentials is not None:
        found = state.token_account(credentials)
        if found is None:
            refused = ApiError(401, "Bad credentials").response()
            _rate_headers(refused, state.budget(anonymous_key, config.anonymous_rate_limit))
            return refused
        viewer = Viewer(*found)

    if viewer.token is not None and viewer.account is not None:
        budget = state.budget(f"token:{viewer.token.value}", config.rate_limit)
        exceeded = f"API rate limit exceeded for user ID {viewer.account.id}."
    else:
        budget = state.budget(anonymous_key, config.anonymous_rate_limit)
        exceeded = (
            f"API rate limit exceeded for {request.remote or 'unknown'}. (But here's the good "
            "news: Authenticated requests get a higher rate limit. Check out the "
            "documentation for more details.)"
        )
    free = request.path in _FREE_PATHS
    response: web.StreamResponse
    if budget.remaining <= 0 and not free:
        response = ApiError(403, exceeded, RATE_LIMIT_DOCS).response()
    else:
        request[VIEWER_KEY] = viewer
        try:
            _check_forbidden(request, state)
            response = await handler(request)
        except ApiError as exc:
            response = exc.response()
        except web.HTTPException as exc:
            response = http_exception_response(exc)
        # As on GitHub, a 304 answer to a conditional request costs nothing.
        if response.status != 304 and not free:
            budget.used += 1
    _rate_headers(response, budget)
    response.headers["X-GitHub-Media-Type"] = "github.v3; format=json"
    response.headers["X-GitHub-Api-Version-Selected"] = "2022-11-28"
    if viewer.token is not None:
        response.headers["X-OAuth-Scopes"] = ", ".join(viewer.token.scopes)
        response.headers["X-Accepted-OAuth-Scopes"] = ""
    return response


def bearer_credentials(request: web.Request) -> str | None:
    """The token in Authorization (Bearer, token or Basic); "" when the header is garbage."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() in ("bearer", "token"):
        return value
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        user, _, password = decoded.partition(":")
        # git's convention: the token as password, or alone as user name.
        return password or user
    return ""


def _check_forbidden(request: web.Request, state: State) -> None:
    owner = request.match_info.get("owner")
    repo = request.match_info.get("repo")
    if owner and repo and f"{owner}/{repo}".lower() in state.faults.forbidden_repos:
        raise ApiError(
            403,
            "Resource not accessible by integration",
            "https://docs.github.com/rest/overview/permissions-required-for-github-apps",
        )


def _rate_headers(response: web.StreamResponse, budget: Budget) -> None:
    response.headers["X-RateLimit-Limit"] = str(budget.limit)
    response.headers["X-RateLimit-Remaining"] = str(budget.remaining)
    response.headers["X-RateLimit-Reset"] = str(int(budget.reset_at))
    response.headers["X-RateLimit-Used"] = str(min(budget.used, budget.limit))
    response.headers["X-RateLimit-Resource"] = "core"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"
