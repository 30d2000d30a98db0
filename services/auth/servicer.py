"""gRPC servicer of the auth service: proto <-> domain, nothing else."""

from __future__ import annotations

from typing import Any

import grpc
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc

from services.auth.domain import Issued, User
from services.auth.keys import SigningKeys
from services.auth.usecases import AuthUseCases
from services.common.identity import Authenticator
from services.common.timeconv import to_timestamp

Ctx = grpc.aio.ServicerContext[Any, Any]


def user_pb(user: User) -> auth_pb2.User:
    return auth_pb2.User(id=user.id, github_id=user.github_id, github_login=user.github_login,
                         name=user.name, avatar_url=user.avatar_url,
                         created_at=to_timestamp(user.created_at))


def _tokens(issued: Issued) -> auth_pb2.TokenPair:
    return auth_pb2.TokenPair(access_token=issued.access_token, refresh_token=issued.refresh_token,
                              token_type="Bearer",  # noqa: S106 - the OAuth token type, not a secret
                              expires_in=issued.expires_in,
                              refresh_expires_in=issued.refresh_expires_in)


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, usecases: AuthUseCases, keys: SigningKeys, authn: Authenticator) -> None:
        self._u = usecases
        self._keys = keys
        self._authn = authn

    async def StartLogin(
        self, request: auth_pb2.StartLoginRequest, context: Ctx
    ) -> auth_pb2.StartLoginResponse:
        url, state = await self._u.start_login(request.redirect_uri)
        return auth_pb2.StartLoginResponse(authorize_url=url, state=state)

    async def CompleteLogin(
        self, request: auth_pb2.CompleteLoginRequest, context: Ctx
    ) -> auth_pb2.CompleteLoginResponse:
        issued = await self._u.complete_login(request.code, request.state)
        return auth_pb2.CompleteLoginResponse(tokens=_tokens(issued), user=user_pb(issued.user))

    async def RefreshToken(
        self, request: auth_pb2.RefreshTokenRequest, context: Ctx
    ) -> auth_pb2.RefreshTokenResponse:
        issued = await self._u.refresh(request.refresh_token)
        return auth_pb2.RefreshTokenResponse(tokens=_tokens(issued), user=user_pb(issued.user))

    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: Ctx
    ) -> auth_pb2.LogoutResponse:
        await self._u.logout(request.refresh_token)
        return auth_pb2.LogoutResponse()

    async def GetUser(
        self, request: auth_pb2.GetUserRequest, context: Ctx
    ) -> auth_pb2.GetUserResponse:
        await self._authn.caller(context)
        return auth_pb2.GetUserResponse(user=user_pb(await self._u.user(request.user_id)))

    async def BatchGetUsers(
        self, request: auth_pb2.BatchGetUsersRequest, context: Ctx
    ) -> auth_pb2.BatchGetUsersResponse:
        await self._authn.caller(context)
        users = await self._u.users(list(request.user_ids))
        return auth_pb2.BatchGetUsersResponse(users=[user_pb(u) for u in users])

    async def GetUserByLogin(
        self, request: auth_pb2.GetUserByLoginRequest, context: Ctx
    ) -> auth_pb2.GetUserByLoginResponse:
        await self._authn.caller(context)
        return auth_pb2.GetUserByLoginResponse(user=user_pb(await self._u.user_by_login(request.github_login)))

    async def GetJwks(
        self, request: auth_pb2.GetJwksRequest, context: Ctx
    ) -> auth_pb2.GetJwksResponse:
        # Public keys are public: no credential needed (the gateway serves them at /.well-known).
        return auth_pb2.GetJwksResponse(jwks_json=self._keys.jwks_json.decode())

    async def GetGitHubToken(
        self, request: auth_pb2.GetGitHubTokenRequest, context: Ctx
    ) -> auth_pb2.GetGitHubTokenResponse:
        await self._authn.internal(context)
        token, scope = await self._u.github_token(request.user_id)
        return auth_pb2.GetGitHubTokenResponse(access_token=token, scope=scope)

    async def RotateSigningKey(
        self, request: auth_pb2.RotateSigningKeyRequest, context: Ctx
    ) -> auth_pb2.RotateSigningKeyResponse:
        await self._authn.internal(context)
        return auth_pb2.RotateSigningKeyResponse(kid=await self._keys.rotate())
