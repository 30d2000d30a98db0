"""The one table between domain errors and gRPC status codes, both ways.

Server side: `status_of` and `trailers_of` turn a DomainError into the status and
trailing metadata of the call (the kit's ServerInterceptor does it for every RPC).
Client side: `from_rpc_error` turns a peer's failed call back into the DomainError it
stands for, so a refusal reaches our own caller unchanged (the reason, the field
violations and Retry-After travel with it) and a peer's outage becomes Unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import grpc
import orjson

from services.common.errors import (
    FIELDS_KEY,
    REASON_KEY,
    RETRY_AFTER_KEY,
    Conflict,
    DomainError,
    FailedPrecondition,
    FieldViolation,
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

log = logging.getLogger(__name__)

Code = grpc.StatusCode

STATUS: dict[type[DomainError], grpc.StatusCode] = {
    InvalidArgument: Code.INVALID_ARGUMENT,
    NotFound: Code.NOT_FOUND,
    Conflict: Code.ABORTED,
    StaleVersion: Code.ABORTED,
    FailedPrecondition: Code.FAILED_PRECONDITION,
    Gone: Code.FAILED_PRECONDITION,
    PermissionDenied: Code.PERMISSION_DENIED,
    Unauthenticated: Code.UNAUTHENTICATED,
    ResourceExhausted: Code.RESOURCE_EXHAUSTED,
    Unavailable: Code.UNAVAILABLE,
    Internal: Code.INTERNAL,
    Unimplemented: Code.UNIMPLEMENTED,
}

# The reverse: a status from a peer as our error. Codes that say the peer could not answer
# (down, too slow, the call cancelled) are Unavailable: the caller may retry shortly.
_FROM_STATUS: dict[grpc.StatusCode, type[DomainError]] = {
    **{code: kind for kind, code in STATUS.items() if kind.default_reason is None},
    Code.OUT_OF_RANGE: InvalidArgument,
    Code.ALREADY_EXISTS: Conflict,
    Code.DEADLINE_EXCEEDED: Unavailable,
    Code.CANCELLED: Unavailable,
}
# Classes told apart from their code's by the reason word they carry.
_FROM_REASON: dict[tuple[grpc.StatusCode, str], type[DomainError]] = {
    (code, kind.default_reason): kind for kind, code in STATUS.items()
    if kind.default_reason is not None
}


def status_of(exc: DomainError) -> grpc.StatusCode:
    """The status code of a domain error (a subclass takes its nearest listed base's)."""
    for kind in type(exc).__mro__:
        code = STATUS.get(kind)
        if code is not None:
            return code
    return Code.INTERNAL


def trailers_of(exc: DomainError) -> tuple[tuple[str, str | bytes], ...]:
    """The trailing metadata that carries a domain error's reason, fields and Retry-After."""
    trailers: list[tuple[str, str | bytes]] = []
    if exc.reason:
        trailers.append((REASON_KEY, exc.reason))
    if exc.violations:
        trailers.append((FIELDS_KEY, orjson.dumps(
            [{"field": v.field, "message": v.message} for v in exc.violations])))
    if exc.retry_after is not None:
        trailers.append((RETRY_AFTER_KEY, str(exc.retry_after)))
    return tuple(trailers)


def from_rpc_error(exc: grpc.aio.AioRpcError, service: str) -> DomainError:
    """A failed call to the peer `service` as the DomainError of the one table."""
    trailers: Mapping[str, str | bytes] = dict(exc.trailing_metadata() or ())
    return from_status(exc.code(), exc.details() or "", trailers, service)


def from_status(code: grpc.StatusCode, details: str, trailers: Mapping[str, str | bytes],
                service: str) -> DomainError:
    """See from_rpc_error (this is it, on the parts of the call)."""
    raw_reason = trailers.get(REASON_KEY)
    reason = raw_reason if isinstance(raw_reason, str) and raw_reason else None
    raw_retry = trailers.get(RETRY_AFTER_KEY)
    retry_after = int(raw_retry) if isinstance(raw_retry, str) and raw_retry.isdigit() else None
    kind = _FROM_REASON.get((code, reason)) if reason else None
    if kind is None:
        kind = _FROM_STATUS.get(code, Internal)
    if kind is ResourceExhausted and reason is None and retry_after is None:
        # Our own limits always say why (a reason) or when to come back (Retry-After).
        # Without either, gRPC itself produced it - a message over a size limit, whose
        # text ("Received message larger than max (...)") is no business of the client's
        # and which no retry would change.
        log.warning("%s: gRPC refused a message: %s", service, details)
        kind = Internal
    if kind is Unavailable:
        if reason is not None and reason.endswith("_unavailable"):
            # The peer names what it is missing (its database, GitHub ...): say so.
            return Unavailable(f"{service}: {details}", reason=reason,
                               retry_after=retry_after or 1)
        return Unavailable(f"the {service} service is unavailable, try again shortly",
                           reason=f"{service}_unavailable", retry_after=retry_after or 1)
    if kind is Internal:
        if code is not Code.RESOURCE_EXHAUSTED:
            log.warning("call to %s failed: %s", service, code.name)
        return Internal(f"the {service} service failed")
    if kind is Unimplemented:
        return Unimplemented(details or "not implemented")
    return kind(details or code.name.lower().replace("_", " "), _violations(trailers),
                reason=reason, retry_after=retry_after)


def _violations(trailers: Mapping[str, str | bytes]) -> tuple[FieldViolation, ...]:
    raw = trailers.get(FIELDS_KEY)
    if not isinstance(raw, bytes):
        return ()
    try:
        items = orjson.loads(raw)
        return tuple(FieldViolation(str(d["field"]), str(d["message"])) for d in items)
    except (orjson.JSONDecodeError, TypeError, KeyError):
        log.warning("a peer sent malformed field violations")
        return ()
