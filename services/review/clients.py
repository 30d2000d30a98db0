"""Clients of the review service's peers: sessions (membership, events) and auth (tokens, people).

All calls go through the kit's peer helper (services/common/peers.py): its
deadline, metadata and its one table from gRPC status to domain error. The
membership client is the kit's (MembershipClient), shared with ai.
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

import orjson
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc
from tandem.sessions.v1 import sessions_pb2, sessions_pb2_grpc

from services.common import metrics
from services.common.errors import DomainError, FailedPrecondition, NotFound
from services.common.peers import Peer
from services.common.ttlcache import TtlCache
from services.review.domain import Person

log = logging.getLogger(__name__)

# Calls to sibling services on the request path: short, so an outage fails fast.
CALL_DEADLINE = 2.0
# Profiles shown beside verdicts (login, name, avatar) may be this many seconds old.
PROFILE_TTL = 30.0


class AuthDirectory:
    """GitHub tokens (internal RPC, cached briefly in memory) and logins from the auth service."""

    def __init__(self, auth: Peer, ttl: float) -> None:
        self._peer = auth
        self._stub = auth_pb2_grpc.AuthServiceStub(auth.channel)
        self._tokens: TtlCache[str, str] = TtlCache(ttl)
        self._people: TtlCache[str, Person] = TtlCache(PROFILE_TTL)

    async def github_token(self, user_id: str) -> str:
        cached = self._tokens.get(user_id)
        if cached is not None:
            return cached
        try:
            reply = await self._peer.call(self._stub.GetGitHubToken,
                                          auth_pb2.GetGitHubTokenRequest(user_id=user_id),
                                          on_behalf_of=user_id)
        except NotFound:
            raise FailedPrecondition("no GitHub authorization is stored for this user; "
                                     "sign in again", reason="github_reauth") from None
        self._tokens.put(user_id, reply.access_token)
        return str(reply.access_token)

    def forget(self, user_id: str) -> None:
        """GitHub refused the token: ask auth again next time (the user may have signed in)."""
        self._tokens.drop(user_id)

    async def people(self, user_ids: list[str]) -> dict[str, Person]:
        """Public profiles by id, cached briefly (they change rarely and are decoration):
        ids auth does not know are left out, and so is everyone while auth is unreachable."""
        wanted = sorted(set(user_ids))
        found: dict[str, Person] = {}
        missing = []
        for user_id in wanted:
            cached = self._people.get(user_id)
            if cached is None:
                missing.append(user_id)
            else:
                found[user_id] = cached
        if found:
            metrics.CACHE_REQUESTS.labels("profiles", "hit").inc(len(found))
        if not missing:
            return found
        metrics.CACHE_REQUESTS.labels("profiles", "miss").inc(len(missing))
        try:
            reply = await self._peer.call(self._stub.BatchGetUsers,
                                          auth_pb2.BatchGetUsersRequest(user_ids=missing))
        except DomainError as exc:
            log.warning("user profiles unavailable", extra={"error": type(exc).__name__})
            return found
        for user in reply.users:
            person = Person(user.id, user.github_login, user.name, user.avatar_url,
                            user.created_at.ToDatetime(tzinfo=UTC)
                            if user.HasField("created_at") else None)
            self._people.put(user.id, person)
            found[user.id] = person
        return found

    async def logins(self, user_ids: list[str]) -> dict[str, str]:
        if not user_ids:
            return {}
        reply = await self._peer.call(self._stub.BatchGetUsers,
                                      auth_pb2.BatchGetUsersRequest(user_ids=sorted(set(user_ids))))
        return {user.id: user.github_login for user in reply.users}


class SessionEvents:
    """Appends sequenced session events; best effort, since the change is already committed."""

    def __init__(self, sessions: Peer) -> None:
        self._peer = sessions
        self._stub = sessions_pb2_grpc.SessionsServiceStub(sessions.channel)

    async def append(self, session_id: str, kind: str, payload: dict[str, Any],
                     user_id: str | None) -> None:
        try:
            await self._peer.call(
                self._stub.AppendEvent,
                sessions_pb2.AppendEventRequest(session_id=session_id, type=kind,
                                                payload_json=orjson.dumps(payload).decode()),
                on_behalf_of=user_id)
        except DomainError as exc:
            log.warning("could not append a session event", extra={
                "event_type": kind, "error": type(exc).__name__})
