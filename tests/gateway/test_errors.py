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


def test_a_document_too_large_is_413_with_the_services_message() -> None:
    err = from_grpc(_error(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           "the document would pass its size limit of 4194304 bytes",
                           ((REASON_KEY, "document_too_large"),)), "sessions")
    assert (err.status, err.code) == (413, "payload_too_large")
    assert err.message == "the document would pass its size limit of 4194304 bytes"


def test_our_own_rate_limits_stay_429_with_their_message() -> None:
    limited = from_grpc(_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down",
                               ((REASON_KEY, "rate_limited"),)), "sessions")
    assert (limited.status, limited.code, limited.message) == (429, "rate_limited", "slow down")
    # The AI per-user limit names no reason but says when to come back.
    queued = from_grpc(_error(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              "you already have 3 AI reviews queued or running",
                              ((RETRY_AFTER_KEY, "5"),)), "ai")
    assert (queued.status, queued.code, queued.retry_after) == (429, "rate_limited", 5)
    assert queued.message == "you already have 3 AI reviews queued or running"


@pytest.mark.parametrize("details", [
    # What GET /api/v1/sessions/{id}/document answered in issue 14 (as a 429 rate_limited).
    "Stream removed (CLIENT: Received message larger than max (20285020 vs. 16777216))",
    "Received message larger than max (4194330 vs. 4194304)",
    "Sent message larger than max (9000000 vs. 4194304)",
])
def test_a_grpc_library_resource_exhausted_is_an_internal_error_without_its_text(
        details: str) -> None:
    # gRPC itself sets no trailers of ours: nothing here is a limit of Tandem's.
    err = from_grpc(_error(grpc.StatusCode.RESOURCE_EXHAUSTED, details), "sessions")
    assert (err.status, err.code) == (500, "internal")
    assert "larger than max" not in err.message
    assert "Stream removed" not in err.message
    assert err.message == "internal error"
