"""Clients of peer services: the auth service, resolving a GitHub login to a Tandem user."""

from __future__ import annotations

import logging

import grpc
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc

from services.common.context import request_id_var
from services.common.identity import service_metadata
from services.sessions.domain import FoundUser

log = logging.getLogger(__name__)


class UserDirectory:
    """Looks users up in the auth service with the service credential."""

    def __init__(self, channel: grpc.aio.Channel, service_token: str, deadline: float) -> None:
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)
        self._token = service_token
        self._deadline = deadline

    async def by_login(self, login: str, on_behalf_of: str) -> FoundUser | None:
        """The user with this login; None when there is none yet, or auth cannot say.

        An invitation to a login works without a user id (it is matched by the
        login claim when that person signs in), so auth being down degrades the
        invitation to a login-only one instead of failing it.
        """
        try:
            reply = await self._stub.GetUserByLogin(
                auth_pb2.GetUserByLoginRequest(github_login=login), timeout=self._deadline,
                metadata=service_metadata(self._token, on_behalf_of, request_id_var.get()))
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                log.warning("auth lookup by login failed (%s); inviting by login only",
                            exc.code().name)
            return None
        return FoundUser(reply.user.id, reply.user.github_login)
