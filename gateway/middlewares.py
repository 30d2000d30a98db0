"""The gateway's outer middleware: request id, security headers, metrics and the error body."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web, web_response
from aiohttp.typedefs import Handler, Middleware

from gateway.errors import HTTP_CODES, ApiError, api_error_response, error_response
from services.common import metrics
from services.common.context import (
    REQUEST_ID_HEADER,
    clean_request_id,
    request_id_var,
    session_id_var,
    user_id_var,
)

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=63072000; includeSubDomains"


CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-Match, X-Request-Id"
CORS_EXPOSE_HEADERS = "X-Request-Id, Retry-After, Idempotent-Replayed, ETag"
CORS_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"


def cors_headers(origin: str | None, allowed: frozenset[str]) -> dict[str, str]:
    """CORS headers for an allow-listed Origin (none for others: the browser then blocks)."""
    if not origin or (origin not in allowed and "*" not in allowed):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS}


def security_headers(hsts: bool) -> dict[str, str]:
    """The headers every answer carries, the ones the parser's refusals get included."""
    headers = dict(SECURITY_HEADERS)
    if hsts:
        headers["Strict-Transport-Security"] = HSTS
    return headers


def make_outer_middleware(hsts: bool, max_body: int,
                          cors_origins: tuple[str, ...] = ()) -> Middleware:
    """One middleware instead of four: each layer costs a coroutine frame on every request.

    Order inside: bind the request id first (so every log line and error body
    carries it), then run the handler, then turn *any* failure into the
    standard error body, then record metrics on the final status.
    """
    headers = security_headers(hsts)
    children: dict[tuple[str, str, int], tuple[object, object]] = {}
    allowed = frozenset(cors_origins)

    @web.middleware
    async def outer(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = clean_request_id(request.headers.get(REQUEST_ID_HEADER))
        request_id_var.set(rid)
        user_id_var.set(None)
        session_id_var.set(None)
        start = time.perf_counter()
        cors = cors_headers(request.headers.get("Origin"), allowed) if allowed else {}
        # Every answer carries these, errors, redirects and preflights included.
        extra = headers
        if cors or (not hsts and request.headers.get("X-Forwarded-Proto") == "https"):
            extra = {**headers, **cors}
            if not hsts and request.headers.get("X-Forwarded-Proto") == "https":
                # Behind a TLS-terminating proxy: tell browsers to stay on HTTPS.
                extra["Strict-Transport-Security"] = HSTS
        if cors and request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            # A preflight from an allowed origin: answer it here, before routing.
            return web.Response(status=204, headers={
                **extra, REQUEST_ID_HEADER: rid, "Access-Control-Allow-Methods": CORS_METHODS,
                "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS, "Access-Control-Max-Age": "600"})
        try:
            length = request.content_length
            if length is not None and length > max_body:
                # Refuse before reading a byte; aiohttp's own limit covers chunked bodies.
                raise ApiError(413, "payload_too_large",
                               f"request body too large (limit {max_body} bytes)")
            response = await handler(request)
        except ApiError as exc:
            response = api_error_response(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                # Redirects and other non-errors pass through untouched.
                exc.headers[REQUEST_ID_HEADER] = rid
                exc.headers.update(extra)
                raise
            response = error_response(exc.status, HTTP_CODES.get(exc.status, "error"),
                                      _http_message(exc), headers=_keep_headers(exc))
        except web.RequestPayloadError:
            # The body's framing broke mid-way (gateway.server fails the body): the client's
            # fault, and the connection cannot carry another request.
            response = error_response(400, "bad_request", "the request body is not valid HTTP/1.1")
            response.force_close()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unhandled error", extra={"path": request.path})
            response = error_response(500, "internal", "internal error")
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = rid
            response.headers.update(extra)
        _observe(request, response.status, time.perf_counter() - start, children)
        return response

    return outer


def _observe(request: web.Request, status: int, seconds: float,
             children: dict[tuple[str, str, int], tuple[object, object]]) -> None:
    info = request.match_info
    route = info.route.resource.canonical if info.route.resource is not None else "unmatched"
    key = (route, request.method, status)
    entry = children.get(key)
    if entry is None:
        entry = (metrics.HTTP_REQUESTS.labels(route, request.method, str(status)),
                 metrics.HTTP_SECONDS.labels(route, request.method))
        children[key] = entry
    entry[0].inc()  # type: ignore[attr-defined]
    entry[1].observe(seconds)  # type: ignore[attr-defined]


def _http_message(exc: web.HTTPException) -> str:
    if exc.status == 404:
        return "no such route"
    if exc.status == 405:
        return "method not allowed on this route"
    if exc.status == 413:
        return "request body too large"
    text = exc.text or exc.reason
    # aiohttp puts "413: Request Entity Too Large" style text in exceptions.
    return text.split(": ", 1)[-1] if text else exc.reason


def _keep_headers(exc: web.HTTPException) -> dict[str, str]:
    keep = {}
    if "Allow" in exc.headers:
        keep["Allow"] = exc.headers["Allow"]
    return keep


SERVER_NAME = "tandem"


async def remove_server_banner(_: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: no version banner for fingerprinting."""
    response.headers["Server"] = SERVER_NAME


def hide_server_version() -> None:
    """Also for the answers aiohttp writes itself (400 to a request it cannot parse).

    Those never reach on_response_prepare, and aiohttp's default Server header names the
    Python and aiohttp versions ("Python/3.11 aiohttp/3.x"), a fingerprint for scanners.
    """
    # The module reads this name when a response has no Server header of its own.
    web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]

