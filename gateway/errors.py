"""The standard error body, and the one mapping from a service's answer to HTTP.

A failed call to a service becomes a DomainError through the kit's one table
(services/common/grpcerrors.py, the same one services use for their peers); this
module maps that error to the HTTP status, code word and message the client sees.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import grpc
import orjson
from aiohttp import web

from services.common.context import REQUEST_ID_HEADER, request_id_var
from services.common.errors import (
    Conflict,
    DomainError,
    FailedPrecondition,
    Gone,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    StaleVersion,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from services.common.grpcerrors import from_rpc_error

log = logging.getLogger(__name__)

JSON = "application/json; charset=utf-8"


class ApiError(Exception):
    """An error answered with the standard body."""

    def __init__(self, status: int, code: str, message: str,
                 details: Sequence[dict[str, str]] = (), retry_after: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details)
        self.retry_after = retry_after
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, *,
                   details: Sequence[dict[str, str]] = (), retry_after: int | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    rid = request_id_var.get() or ""
    error: dict[str, Any] = {"code": code, "message": message, "request_id": rid}
    if details:
        error["details"] = list(details)
    out_headers = {REQUEST_ID_HEADER: rid, **(headers or {})}
    if retry_after is not None:
        out_headers["Retry-After"] = str(retry_after)
    return web.Response(status=status, body=orjson.dumps({"error": error}), content_type="application/json",
                        charset="utf-8", headers=out_headers)


def api_error_response(exc: ApiError) -> web.Response:
    return error_response(exc.status, exc.code, exc.message, details=exc.details,
                          retry_after=exc.retry_after, headers=exc.headers)


# HTTP status -> stable code word, for errors aiohttp raises itself (404, 405, 413, ...).
HTTP_CODES = {
    400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied",
    404: "not_found", 405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
    410: "gone", 411: "length_required", 412: "precondition_failed", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "unprocessable", 429: "rate_limited",
    431: "headers_too_large", 500: "internal", 501: "not_implemented", 503: "unavailable",
}

# DomainError -> HTTP. A reason word refines it where HTTP distinguishes what gRPC does
# not (410, 412, 413, 422).
_ERROR_HTTP: dict[type[DomainError], tuple[int, str]] = {
    InvalidArgument: (400, "invalid_argument"),
    Unauthenticated: (401, "unauthenticated"),
    PermissionDenied: (403, "permission_denied"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    StaleVersion: (412, "precondition_failed"),
    FailedPrecondition: (409, "failed_precondition"),
    Gone: (410, "gone"),
    ResourceExhausted: (429, "rate_limited"),
    Unimplemented: (501, "not_implemented"),
    Unavailable: (503, "unavailable"),
}
_REASON_HTTP: dict[str, tuple[int, str]] = {
    "gone": (410, "gone"),
    "stale_version": (412, "precondition_failed"),
    "unprocessable": (422, "unprocessable"),
    "in_progress": (409, "conflict"),
    "document_too_large": (413, "payload_too_large"),
    "rate_limited": (429, "rate_limited"),
}


def api_error(exc: DomainError) -> ApiError:
    """The HTTP error for a service's error (as the kit's peer table made it)."""
    if isinstance(exc, Internal):
        # Never pass a service's internal text through to clients.
        return ApiError(500, "internal", "internal error", retry_after=exc.retry_after)
    status, word = _ERROR_HTTP.get(type(exc), (500, "internal"))
    if exc.reason is not None and exc.reason in _REASON_HTTP:
        status, word = _REASON_HTTP[exc.reason]
    if status >= 500:
        # Unavailable's message is the kit's (it names the service), never the peer's own.
        message = exc.message if status in (501, 503) else "internal error"
        retry_after = (exc.retry_after or 1) if status == 503 else exc.retry_after
        return ApiError(status, word, message, retry_after=retry_after)
    details = [{"field": v.field, "message": v.message} for v in exc.violations]
    return ApiError(status, word, exc.message, details, exc.retry_after)


def from_grpc(exc: grpc.aio.AioRpcError, service: str) -> ApiError:
    """Translate a failed call to `service` into the HTTP error the client sees."""
    return api_error(from_rpc_error(exc, service))
