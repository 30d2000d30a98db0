"""The one gRPC -> HTTP mapping."""

from __future__ import annotations

import grpc
import orjson
import pytest
from grpc.aio import AioRpcError, Metadata

from gateway.errors import from_grpc
from services.common.errors import FIELDS_KEY, REASON_KEY, RETRY_AFTER_KEY


def _error(code: grpc.StatusCode, details: str, trailers: tuple[tuple[str, str | bytes], ...] = ()) -> AioRpcError:
    return AioRpcError(code, Metadata(), Metadata(*trailers), details=details)


@pytest.mark.parametrize(
    ("code", "status", "word"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400, "invalid_argument"),
        (grpc.StatusCode.UNAUTHENTICATED, 401, "unauthenticated"),
        (grpc.StatusCode.PERMISSION_DENIED, 403, "permission_denied"),
        (grpc.StatusCode.NOT_FOUND, 404, "not_found"),
        (grpc.StatusCode.ALREADY_EXISTS, 409, "conflict"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "rate_limited"),
        (grpc.StatusCode.UNAVAILABLE, 503, "unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 503, "unavailable"),
        (grpc.StatusCode.INTERNAL, 500, "internal"),
        (grpc.StatusCode.UNKNOWN, 500, "internal"),
    ],
)
def test_status_codes_map_to_http(code: grpc.StatusCode, status: int, word: str) -> None:
    err = from_grpc(_error(code, "boom"), "sessions")
    assert (err.status, err.code) == (status, word)


def test_internal_details_never_reach_clients() -> None:
    err = from_grpc(_error(grpc.StatusCode.INTERNAL, "Traceback: secret stuff"), "auth")
    assert "secret" not in err.message


def test_unavailable_names_the_service_and_sets_retry_after() -> None:
    err = from_grpc(_error(grpc.StatusCode.UNAVAILABLE, "connect failed"), "review")
    assert "review" in err.message
    assert err.retry_after == 1


def test_reason_refines_to_410_and_412() -> None:
    gone = from_grpc(_error(grpc.StatusCode.FAILED_PRECONDITION, "invitation expired",
                            ((REASON_KEY, "gone"),)), "sessions")
    assert (gone.status, gone.code, gone.message) == (410, "gone", "invitation expired")
    stale = from_grpc(_error(grpc.StatusCode.ABORTED, "stale", ((REASON_KEY, "stale_version"),)),
                      "sessions")
    assert (stale.status, stale.code) == (412, "precondition_failed")


def test_field_violations_and_retry_after_travel_in_trailers() -> None:
    fields = orjson.dumps([{"field": "title", "message": "must not be empty"}])
    err = from_grpc(_error(grpc.StatusCode.INVALID_ARGUMENT, "invalid session",
                           ((FIELDS_KEY, fields), (RETRY_AFTER_KEY, "7"))), "sessions")
    assert err.details == [{"field": "title", "message": "must not be empty"}]
    assert err.retry_after == 7
