"""The standard error body, and the one mapping from gRPC status codes to HTTP."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import grpc
import orjson
from aiohttp import web

from services.common.context import REQUEST_ID_HEADER, request_id_var
from services.common.errors import FIELDS_KEY, REASON_KEY, RETRY_AFTER_KEY

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

# The single gRPC -> HTTP mapping. A reason word in the trailers refines it
# where HTTP distinguishes what gRPC does not (410, 412).
_GRPC_HTTP: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_argument"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_argument"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "unauthenticated"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_denied"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "conflict"),
    grpc.StatusCode.ABORTED: (409, "conflict"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "failed_precondition"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limited"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "not_implemented"),
    grpc.StatusCode.UNAVAILABLE: (503, "unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "unavailable"),
    grpc.StatusCode.CANCELLED: (503, "unavailable"),
}
_REASON_HTTP: dict[str, tuple[int, str]] = {
    "gone": (410, "gone"),
    "stale_version": (412, "precondition_failed"),
    "unprocessable": (422, "unprocessable"),
    "in_progress": (409, "conflict"),
    "document_too_large": (413, "payload_too_large"),
    "rate_limited": (429, "rate_limited"),
}


def from_grpc(exc: grpc.aio.AioRpcError, service: str) -> ApiError:
    """Translate a failed call to `service` into the HTTP error the client sees."""
    code = exc.code()
    trailers = dict(exc.trailing_metadata() or ())
    reason = trailers.get(REASON_KEY)
    status, word = _GRPC_HTTP.get(code, (500, "internal"))
    if isinstance(reason, str) and reason in _REASON_HTTP:
        status, word = _REASON_HTTP[reason]
    elif code == grpc.StatusCode.RESOURCE_EXHAUSTED and reason is None \
            and RETRY_AFTER_KEY not in trailers:
        # Our own limits always say why (a reason) or when to come back (Retry-After).
        # Without either, gRPC itself produced it — a message over a size limit, whose
        # text ("Received message larger than max (…)") is no business of the client's
        # and which no retry would change.
        log.warning("%s: gRPC refused a message: %s", service, exc.details())
        status, word = 500, "internal"
    details: list[dict[str, str]] = []
    raw_fields = trailers.get(FIELDS_KEY)
    if isinstance(raw_fields, bytes):
        details = [{"field": str(d["field"]), "message": str(d["message"])}
                   for d in orjson.loads(raw_fields)]
    retry_after: int | None = None
    raw_retry = trailers.get(RETRY_AFTER_KEY)
    if isinstance(raw_retry, str) and raw_retry.isdigit():
        retry_after = int(raw_retry)
    if status >= 500 or code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
        # Never pass a service's internal text through to clients.
        if status == 503:
            message = f"the {service} service is unavailable, try again shortly"
            if isinstance(reason, str) and reason.endswith("_unavailable"):
                message = f"{service}: {exc.details()}"
            retry_after = retry_after or 1
        elif status == 501:
            message = exc.details() or "not implemented"
        else:
            message = "internal error"
        return ApiError(status, word, message, retry_after=retry_after)
    return ApiError(status, word, exc.details() or word.replace("_", " "), details, retry_after)
