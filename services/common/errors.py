"""Domain errors and the one mapping from them to gRPC status codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str
    message: str


class DomainError(Exception):
    """Base of errors the domain raises on purpose; each maps to one status code."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
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
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class Conflict(DomainError):
    code = grpc.StatusCode.ABORTED


class StaleVersion(DomainError):
    """An optimistic-concurrency check failed (HTTP 412)."""

    code = grpc.StatusCode.ABORTED
    default_reason = "stale_version"


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(DomainError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(DomainError):
    code = grpc.StatusCode.UNAVAILABLE


class Gone(DomainError):
    """The thing existed but can no longer be used (expired, revoked, spent)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "gone"


class DeadlineExceeded(DomainError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


# Trailing metadata keys that carry detail the gateway turns into the HTTP body.
REASON_KEY = "tandem-reason"
FIELDS_KEY = "tandem-fields-bin"
RETRY_AFTER_KEY = "tandem-retry-after"

