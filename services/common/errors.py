"""Domain errors: what the domain raises on purpose, free of any transport (grpc-free).

Each class stands for one outcome a caller can act on; the one mapping to gRPC status
codes (and back, for calls to peers) is services/common/grpcerrors.py, and the gateway
maps these to HTTP (gateway/errors.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str
    message: str


class DomainError(Exception):
    """Base of errors the domain raises on purpose; each subclass maps to one status code."""

    # A stable snake_case word refining the code (e.g. "gone", "stale_version").
    default_reason: str | None = None

    def __init__(
        self,
        message: str,
        violations: Sequence[FieldViolation] = (),
        *,
        reason: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.violations = tuple(violations)
        self.reason = reason or self.default_reason
        self.retry_after = retry_after


class InvalidArgument(DomainError):
    pass


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class StaleVersion(DomainError):
    """An optimistic-concurrency check failed (HTTP 412)."""

    default_reason = "stale_version"


class FailedPrecondition(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class Unauthenticated(DomainError):
    pass


class ResourceExhausted(DomainError):
    pass


class Unavailable(DomainError):
    pass


class Gone(DomainError):
    """The thing existed but can no longer be used (expired, revoked, spent)."""

    default_reason = "gone"


class Internal(DomainError):
    """A peer failed in a way that is none of the caller's doing; its text never reaches a client.

    Raised by the peer helper (services/common/peers.py) for a peer's INTERNAL/UNKNOWN and
    for gRPC's own RESOURCE_EXHAUSTED (a message over a size limit); domain code does not
    raise it (an unexpected exception already becomes INTERNAL).
    """


class Unimplemented(DomainError):
    """A peer does not have the RPC (a rolling deploy met an older peer)."""


# Trailing metadata keys that carry detail the gateway turns into the HTTP body
# (plain strings: written and read by services/common/grpcerrors.py).
REASON_KEY = "tandem-reason"
FIELDS_KEY = "tandem-fields-bin"
RETRY_AFTER_KEY = "tandem-retry-after"
