"""Clients of the review service's peers: sessions (membership, events) and auth (tokens, people)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from datetime import UTC
from typing import Any, Generic, TypeVar

import grpc
import orjson
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc
from tandem.sessions.v1 import sessions_pb2, sessions_pb2_grpc

from services.common import metrics
from services.common.context import request_id_var
from services.common.errors import FailedPrecondition, Unavailable
from services.common.identity import service_metadata
from services.review.domain import Membership, Person

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

# Calls to sibling services on the request path: short, so an outage fails fast.
_CALL_TIMEOUT = 2.0
# Profiles shown beside verdicts (login, name, avatar) may be this many seconds old.
PROFILE_TTL = 30.0
_ROLES = {sessions_pb2.ROLE_OWNER: "owner", sessions_pb2.ROLE_EDITOR: "editor",
          sessions_pb2.ROLE_VIEWER: "viewer"}


class TtlCache(Generic[K, V]):
    """A small in-process cache whose entries expire; the oldest go first when full."""

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self._ttl = ttl
        self._size = size
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._items.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._items.pop(key, None)
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0:
            return
        self._items[key] = (time.monotonic() + self._ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, key: K) -> None:
        self._items.pop(key, None)


def _unavailable(service: str, exc: grpc.aio.AioRpcError) -> Unavailable:
    return Unavailable(f"the {service} service is unavailable ({exc.code().name.lower()}); "
                       "try again shortly", retry_after=1, reason=f"{service}_unavailable")


class SessionsMembership:
    """Asks the sessions service for a user's role; positive answers are cached briefly.

    Every review RPC needs one, so a few seconds of cache saves a round trip per
    call; a removed member keeps read access for at most that long. A "not a
    member" answer is not cached, so a new member is let in at once.
    """

    def __init__(self, channel: grpc.aio.Channel, service_token: str, ttl: float) -> None:
        self._stub = sessions_pb2_grpc.SessionsServiceStub(channel)
        self._token = service_token
        self._cache: TtlCache[tuple[str, str], Membership] = TtlCache(ttl)

    async def membership(self, session_id: str, user_id: str) -> Membership | None:
        key = (session_id, user_id)
        cached = self._cache.get(key)
        if cached is not None:
            metrics.CACHE_REQUESTS.labels("membership", "hit").inc()
            return cached
        metrics.CACHE_REQUESTS.labels("membership", "miss").inc()
        try:
            reply = await self._stub.GetMembership(
                sessions_pb2.GetMembershipRequest(session_id=session_id, user_id=user_id),
                timeout=_CALL_TIMEOUT,
                metadata=service_metadata(self._token, on_behalf_of=user_id,
                                          request_id=request_id_var.get()))
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise _unavailable("sessions", exc) from None
        role = _ROLES.get(reply.role)
        if role is None:
            return None
        found = Membership(role, reply.status != sessions_pb2.SESSION_STATUS_ENDED)
        self._cache.put(key, found)
        return found


class AuthDirectory:
    """GitHub tokens (internal RPC, cached briefly in memory) and logins from the auth service."""

    def __init__(self, channel: grpc.aio.Channel, service_token: str, ttl: float) -> None:
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)
        self._token = service_token
        self._tokens: TtlCache[str, str] = TtlCache(ttl)
        self._people: TtlCache[str, Person] = TtlCache(PROFILE_TTL)

    def _meta(self, user_id: str | None) -> list[tuple[str, str]]:
        return service_metadata(self._token, on_behalf_of=user_id,
                                request_id=request_id_var.get())

    async def github_token(self, user_id: str) -> str:
        cached = self._tokens.get(user_id)
        if cached is not None:
            return cached
        try:
            reply = await self._stub.GetGitHubToken(
                auth_pb2.GetGitHubTokenRequest(user_id=user_id), timeout=_CALL_TIMEOUT,
                metadata=self._meta(user_id))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise FailedPrecondition("no GitHub authorization is stored for this user; "
                                         "sign in again", reason="github_reauth") from None
            raise _unavailable("auth", exc) from None
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
            reply = await self._stub.BatchGetUsers(
                auth_pb2.BatchGetUsersRequest(user_ids=missing), timeout=_CALL_TIMEOUT,
                metadata=self._meta(None))
        except grpc.aio.AioRpcError as exc:
            log.warning("user profiles unavailable", extra={"code": exc.code().name})
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
        try:
            reply = await self._stub.BatchGetUsers(
                auth_pb2.BatchGetUsersRequest(user_ids=sorted(set(user_ids))),
                timeout=_CALL_TIMEOUT, metadata=self._meta(None))
        except grpc.aio.AioRpcError as exc:
            raise _unavailable("auth", exc) from None
        return {user.id: user.github_login for user in reply.users}


class SessionEvents:
    """Appends sequenced session events; best effort, since the change is already committed."""

    def __init__(self, channel: grpc.aio.Channel, service_token: str) -> None:
        self._stub = sessions_pb2_grpc.SessionsServiceStub(channel)
        self._token = service_token

    async def append(self, session_id: str, kind: str, payload: dict[str, Any],
                     user_id: str | None) -> None:
        try:
            await self._stub.AppendEvent(
                sessions_pb2.AppendEventRequest(session_id=session_id, type=kind,
                                                payload_json=orjson.dumps(payload).decode()),
                timeout=_CALL_TIMEOUT,
                metadata=service_metadata(self._token, on_behalf_of=user_id,
                                          request_id=request_id_var.get()))
        except grpc.aio.AioRpcError as exc:
            log.warning("could not append a session event", extra={
                "event_type": kind, "code": exc.code().name})
