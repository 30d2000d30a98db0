"""gRPC servicer of the auth service: proto <-> domain, nothing else."""

from __future__ import annotations

from typing import Any

import grpc
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc

from services.auth.domain import AuthDomain, Issued
from services.auth.keys import SigningKeys
from services.common.identity import Authenticator
from services.common.timeconv import to_timestamp

Ctx = grpc.aio.ServicerContext[Any, Any]


def user_pb(row: dict[str, Any]) -> auth_pb2.User:
    created = to_timestamp(row["created_at"])
    return auth_pb2.User(id=str(row["id"]), github_id=int(row["github_id"]),
                         github_login=row["github_login"], name=row["name"],
                         avatar_url=row["avatar_url"], created_at=created)


def _tokens(issued: Issued) -> auth_pb2.TokenPair:
    return auth_pb2.TokenPair(access_token=issued.access_token, refresh_token=issued.refresh_token,
                              token_type="Bearer",  # noqa: S106 - the OAuth token type, not a secret
                              expires_in=issued.expires_in,
                              refresh_expires_in=issued.refresh_expires_in)


class AuthServiceServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, domain: AuthDomain, keys: SigningKeys, authn: Authenticator) -> None:
        self._d = domain
        self._keys = keys
        self._authn = authn

    async def StartLogin(
        self, request: auth_pb2.StartLoginRequest, context: Ctx
    ) -> auth_pb2.StartLoginResponse:
        url, state = await self._d.start_login(request.redirect_uri)
        return auth_pb2.StartLoginResponse(authorize_url=url, state=state)

    async def CompleteLogin(
        self, request: auth_pb2.CompleteLoginRequest, context: Ctx
    ) -> auth_pb2.CompleteLoginResponse:
        issued = await self._d.complete_login(request.code, request.state)
        return auth_pb2.CompleteLoginResponse(tokens=_tokens(issued), user=user_pb(issued.user))

    async def RefreshToken(
        self, request: auth_pb2.RefreshTokenRequest, context: Ctx
    ) -> auth_pb2.RefreshTokenResponse:
        issued = await self._d.refresh(request.refresh_token)
        return auth_pb2.RefreshTokenResponse(tokens=_tokens(issued), user=user_pb(issued.user))

    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: Ctx
    ) -> auth_pb2.LogoutResponse:
        await self._d.logout(request.refresh_token)
        return auth_pb2.LogoutResponse()

    async def GetUser(
        self, request: auth_pb2.GetUserRequest, context: Ctx
    ) -> auth_pb2.GetUserResponse:
        await self._authn.caller(context)
        return auth_pb2.GetUserResponse(user=user_pb(await self._d.user(request.user_id)))

    async def BatchGetUsers(
        self, request: auth_pb2.BatchGetUsersRequest, context: Ctx
    ) -> auth_pb2.BatchGetUsersResponse:
        await self._authn.caller(context)
        rows = await self._d.users(list(request.user_ids))
        return auth_pb2.BatchGetUsersResponse(users=[user_pb(r) for r in rows])

    async def GetUserByLogin(
        self, request: auth_pb2.GetUserByLoginRequest, context: Ctx
    ) -> auth_pb2.GetUserByLoginResponse:
        await self._authn.caller(context)
        return auth_pb2.GetUserByLoginResponse(user=user_pb(await self._d.user_by_login(request.github_login)))

    async def GetJwks(
        self, request: auth_pb2.GetJwksRequest, context: Ctx
    ) -> auth_pb2.GetJwksResponse:
        # Public keys are public: no credential needed (the gateway serves them at /.well-known).
        return auth_pb2.GetJwksResponse(jwks_json=self._keys.jwks_json.decode())

    async def GetGitHubToken(
        self, request: auth_pb2.GetGitHubTokenRequest, context: Ctx
    ) -> auth_pb2.GetGitHubTokenResponse:
        await self._authn.internal(context)
        token, scope = await self._d.github_token(request.user_id)
        return auth_pb2.GetGitHubTokenResponse(access_token=token, scope=scope)

    async def RotateSigningKey(
        self, request: auth_pb2.RotateSigningKeyRequest, context: Ctx
    ) -> auth_pb2.RotateSigningKeyResponse:
        await self._authn.internal(context)
        return auth_pb2.RotateSigningKeyResponse(kid=await self._keys.rotate())
