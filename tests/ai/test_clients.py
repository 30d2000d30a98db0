"""How the ai service passes a peer's refusal on: the reason and Retry-After survive, gRPC's own text does not."""

from __future__ import annotations

import grpc
from grpc.aio import AioRpcError, Metadata

from services.ai.clients import _error
from services.common.errors import REASON_KEY, RETRY_AFTER_KEY, ResourceExhausted, Unavailable


def _rpc_error(code: grpc.StatusCode, details: str, *trailers: tuple[str, str]) -> AioRpcError:
    return AioRpcError(code, Metadata(), Metadata(*trailers), details)


def test_a_peers_refusal_keeps_its_reason_and_retry_after() -> None:
    err = _error(_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down",
                            (REASON_KEY, "rate_limited"), (RETRY_AFTER_KEY, "7")), "sessions")
    assert isinstance(err, ResourceExhausted)
    assert (err.message, err.reason, err.retry_after) == ("slow down", "rate_limited", 7)


def test_grpcs_own_resource_exhausted_is_unavailable_without_the_library_text() -> None:
    text = "Received message larger than max (20285020 vs. 16777216)"
    err = _error(_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, text), "review")
    assert isinstance(err, Unavailable)
    assert "larger than max" not in err.message
