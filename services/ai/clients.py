"""What the ai service asks of the sessions and review services, over gRPC as the requesting user."""

from __future__ import annotations

from typing import Any

import orjson
from tandem.review.v1 import review_pb2, review_pb2_grpc
from tandem.sessions.v1 import sessions_pb2, sessions_pb2_grpc

from services.ai.domain import FileContent, ReviewFileRef, ReviewInfo
from services.common.grpcserver import Resources
from services.common.membership import Membership
from services.common.peers import MembershipClient

# Reading a pull request's files may wait on GitHub; the review service bounds its
# own retries by the deadline it is given.
GITHUB_BOUND_DEADLINE = 30.0


class Peers:
    """Calls to sessions and review made on behalf of a user, through the kit's Peer (deadline,
    service credential, request id, and its one table of errors)."""

    def __init__(self, res: Resources) -> None:
        self._sessions_peer = res.peer("sessions")
        self._review_peer = res.peer("review")
        self._sessions = sessions_pb2_grpc.SessionsServiceStub(self._sessions_peer.channel)
        self._review = review_pb2_grpc.ReviewServiceStub(self._review_peer.channel)
        self._members = MembershipClient(self._sessions_peer)

    async def membership(self, session_id: str, user_id: str) -> Membership | None:
        """The user's role in the session; None when they are not a member (or it is gone)."""
        return await self._members.membership(session_id, user_id)

    async def session_language(self, session_id: str, user_id: str) -> str:
        reply = await self._sessions_peer.call(
            self._sessions.GetSession, sessions_pb2.GetSessionRequest(session_id=session_id),
            on_behalf_of=user_id)
        return reply.session.language

    async def document(self, session_id: str, user_id: str) -> str:
        """The live text of the session's shared document."""
        reply = await self._sessions_peer.call(
            self._sessions.GetDocument, sessions_pb2.GetDocumentRequest(session_id=session_id),
            on_behalf_of=user_id)
        return reply.text

    async def append_event(self, session_id: str, event_type: str, payload: dict[str, Any]) -> None:
        """Record a sequenced session event (delivered live and replayable)."""
        await self._sessions_peer.call(
            self._sessions.AppendEvent,
            sessions_pb2.AppendEventRequest(session_id=session_id, type=event_type,
                                            payload_json=orjson.dumps(payload).decode()))

    async def review(self, review_id: str, user_id: str) -> ReviewInfo:
        reply = await self._review_peer.call(
            self._review.GetReview, review_pb2.GetReviewRequest(review_id=review_id),
            on_behalf_of=user_id)
        r = reply.review
        return ReviewInfo(r.id, r.session_id, r.head_sha,
                          tuple(ReviewFileRef(f.path, f.status) for f in r.files))

    async def review_file(self, review_id: str, path: str, user_id: str) -> FileContent:
        reply = await self._review_peer.call(
            self._review.GetFile, review_pb2.GetFileRequest(review_id=review_id, path=path),
            on_behalf_of=user_id, timeout=GITHUB_BOUND_DEADLINE)
        lines: tuple[int, ...] | None = None
        if reply.hunks:
            lines = tuple(line.target_line for hunk in reply.hunks for line in hunk.lines
                          if line.kind in ("+", " ") and line.target_line > 0)
        content = reply.content if reply.status != "removed" else None
        return FileContent(reply.path or path, reply.status, content, lines)
