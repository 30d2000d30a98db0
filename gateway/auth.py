"""Local access-token validation in the gateway, and the JWKS it serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from gateway import keys
from gateway.errors import ApiError
from services.common.context import user_id_var
from services.common.errors import Unauthenticated
from services.common.identity import Claims, TokenVerifier, bearer_token

if TYPE_CHECKING:
    from gateway.openapi import Operation


@dataclass(frozen=True, slots=True)
class Auth:
    """A verified caller: claims plus the raw token to forward to services."""

    claims: Claims
    token: str

    @property
    def user_id(self) -> str:
        return self.claims.user_id


_MISSING = ApiError(401, "unauthenticated", "missing access token (Authorization: Bearer …)",
                    headers={"WWW-Authenticate": 'Bearer realm="tandem"'})


async def guard(request: web.Request, op: Operation) -> None:
    """What the route table runs before every `auth=True` operation: 401 without a valid token.

    The handler then reads the caller as `request[keys.AUTH]`.
    """
    request[keys.AUTH] = await authenticate(request, allow_query=op.token_in_query)


async def authenticate(request: web.Request, *, allow_query: bool = False) -> Auth:
    """Verify the caller's access token locally (JWKS cached; verified tokens cached to expiry).

    Counts the request against the caller's rate limit: `guard` calls it once per request.
    """
    token = bearer_token(request.headers.get("Authorization"))
    if token is None and allow_query:
        token = request.query.get("access_token") or None
    if token is None:
        raise _MISSING
    try:
        claims = await request.app[keys.VERIFIER].verify(token)
    except Unauthenticated as exc:
        raise ApiError(401, "unauthenticated", exc.message,
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    user_id_var.set(claims.user_id)
    await request.app[keys.LIMITER].hit("user", claims.user_id,
                                        request.app[keys.CONFIG].rate_user_per_minute)
    return Auth(claims, token)


async def verifier_ctx(app: web.Application) -> AsyncIterator[None]:
    backends = app[keys.BACKENDS]
    config = app[keys.CONFIG].common

    async def fetch() -> str:
        from tandem.auth.v1 import auth_pb2  # noqa: PLC0415 - generated module, imported where used

        reply = await backends.auth.GetJwks(auth_pb2.GetJwksRequest(), timeout=2.0,
                                            metadata=backends.peers["auth"].metadata())
        return reply.jwks_json

    verifier = TokenVerifier(fetch, config.jwt_issuer, config.jwt_audience)
    # Loaded at start-up; if auth is not up yet, the first unknown kid loads it.
    await verifier.refresh(force=True)
    app[keys.VERIFIER] = verifier
    yield
