"""Clients of peer services, on the kit's peer helper: the auth service's user directory."""

from __future__ import annotations

import logging

from tandem.auth.v1 import auth_pb2, auth_pb2_grpc

from services.common.errors import DomainError, NotFound
from services.common.peers import Peer
from services.sessions.domain import FoundUser

log = logging.getLogger(__name__)


class UserDirectory:
    """Looks users up in the auth service with the service credential."""

    def __init__(self, auth: Peer) -> None:
        self._auth = auth
        self._stub = auth_pb2_grpc.AuthServiceStub(auth.channel)

    async def by_login(self, login: str, on_behalf_of: str) -> FoundUser | None:
        """The user with this login; None when there is none yet, or auth cannot say.

        An invitation to a login works without a user id (it is matched by the
        login claim when that person signs in), so auth being down degrades the
        invitation to a login-only one instead of failing it.
        """
        try:
            reply = await self._auth.call(self._stub.GetUserByLogin,
                                          auth_pb2.GetUserByLoginRequest(github_login=login),
                                          on_behalf_of=on_behalf_of)
        except NotFound:
            return None
        except DomainError as exc:
            log.warning("auth lookup by login failed (%s); inviting by login only",
                        type(exc).__name__)
            return None
        return FoundUser(reply.user.id, reply.user.github_login)
