"""What the ai service asks of the sessions and review services, over gRPC as the requesting user."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import orjson
from tandem.review.v1 import review_pb2, review_pb2_grpc
from tandem.sessions.v1 import sessions_pb2, sessions_pb2_grpc

from services.ai.domain import FileContent, Membership, ReviewFileRef, ReviewInfo
from services.common.context import request_id_var
from services.common.errors import (
    REASON_KEY,
    RETRY_AFTER_KEY,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from services.common.grpcserver import Resources
from services.common.identity import service_metadata

log = logging.getLogger(__name__)

Resp = TypeVar("Resp")

# Reading a pull request's files may wait on GitHub; the review service bounds its
# own retries by the deadline it is given.
GITHUB_BOUND_DEADLINE = 30.0
_ROLES = {sessions_pb2.ROLE_OWNER: "owner", sessions_pb2.ROLE_EDITOR: "editor",
          sessions_pb2.ROLE_VIEWER: "viewer"}


def _error(exc: grpc.aio.AioRpcError, service: str) -> DomainError:
    """A peer's refusal as our own domain error (so it reaches the client unchanged)."""
    code, details = exc.code(), exc.details() or ""
    mapping: dict[grpc.StatusCode, type[DomainError]] = {
        grpc.StatusCode.NOT_FOUND: NotFound, grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
        grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
        grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
        grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    }
    trailers = dict(exc.trailing_metadata() or ())
    reason = trailers.get(REASON_KEY)
    raw_retry = trailers.get(RETRY_AFTER_KEY)
    retry_after = int(raw_retry) if isinstance(raw_retry, str) and raw_retry.isdigit() else None
    kind = mapping.get(code)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and reason is None and retry_after is None:
        # gRPC's own (a message over a size limit): not the client's doing, and its text is
        # the library's, which must not reach a client.
        kind = None
    if kind is not None:
        return kind(details or code.name.lower(), reason=reason if isinstance(reason, str) else None,
                    retry_after=retry_after)
    log.warning("call to %s failed: %s", service, code.name)
    return Unavailable(f"the {service} service is unavailable, try again shortly", retry_after=1)


class Peers:
    """Calls to sessions and review made on behalf of a user, with the service credential."""

    def __init__(self, res: Resources) -> None:
        self._token = res.config.service_token
        self._deadline = res.config.grpc_deadline
        self._sessions = sessions_pb2_grpc.SessionsServiceStub(res.channel("sessions"))
        self._review = review_pb2_grpc.ReviewServiceStub(res.channel("review"))

    async def _call(self, service: str, fn: Callable[..., Awaitable[Resp]], request: Any,
                    user_id: str | None, timeout: float | None = None) -> Resp:
        metadata = service_metadata(self._token, on_behalf_of=user_id,
                                    request_id=request_id_var.get())
        try:
            return await fn(request, timeout=timeout or self._deadline, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise _error(exc, service) from None

    async def membership(self, session_id: str, user_id: str) -> Membership | None:
        """The user's role in the session; None when they are not a member (or it is gone)."""
        try:
            reply = await self._call(
                "sessions", self._sessions.GetMembership,
                sessions_pb2.GetMembershipRequest(session_id=session_id, user_id=user_id), user_id)
        except NotFound:
            return None
        role = _ROLES.get(reply.role)
        if role is None:
            return None
        return Membership(role, reply.status != sessions_pb2.SESSION_STATUS_ENDED)

    async def session_language(self, session_id: str, user_id: str) -> str:
        reply = await self._call("sessions", self._sessions.GetSession,
                                 sessions_pb2.GetSessionRequest(session_id=session_id), user_id)
        return reply.session.language

    async def document(self, session_id: str, user_id: str) -> str:
        """The live text of the session's shared document."""
        reply = await self._call("sessions", self._sessions.GetDocument,
                                 sessions_pb2.GetDocumentRequest(session_id=session_id), user_id)
        return reply.text

    async def append_event(self, session_id: str, event_type: str, payload: dict[str, Any]) -> None:
        """Record a sequenced session event (delivered live and replayable)."""
        await self._call("sessions", self._sessions.AppendEvent,
                         sessions_pb2.AppendEventRequest(session_id=session_id, type=event_type,
                                                         payload_json=orjson.dumps(payload).decode()),
                         None)

    async def review(self, review_id: str, user_id: str) -> ReviewInfo:
        reply = await self._call("review", self._review.GetReview,
                                 review_pb2.GetReviewRequest(review_id=review_id), user_id)
        r = reply.review
        return ReviewInfo(r.id, r.session_id, r.head_sha,
                          tuple(ReviewFileRef(f.path, f.status) for f in r.files))

    async def review_file(self, review_id: str, path: str, user_id: str) -> FileContent:
        reply = await self._call("review", self._review.GetFile,
                                 review_pb2.GetFileRequest(review_id=review_id, path=path), user_id,
                                 GITHUB_BOUND_DEADLINE)
        lines: tuple[int, ...] | None = None
        if reply.hunks:
            lines = tuple(line.target_line for hunk in reply.hunks for line in hunk.lines
                          if line.kind in ("+", " ") and line.target_line > 0)
        content = reply.content if reply.status != "removed" else None
        return FileContent(reply.path or path, reply.status, content, lines)
