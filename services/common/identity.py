"""Access-token verification shared by the gateway and every service, and the caller of an RPC.

Tokens are EdDSA-signed JWTs from the auth service. The algorithm is fixed
here in code and never read from the token; keys come from the JWKS (fetched
from the auth service, cached, refreshed on an unknown `kid` at most once per
`min_refresh_interval` so random `kid`s cannot hammer auth).

Verification is done here with `cryptography`'s Ed25519 directly, with the
claim checks PyJWT makes (same order, same leeway rules): PyJWT itself loads
every algorithm it supports (RSA, EC, X.509, a JWKS HTTP client), about 2 MB of
resident memory in every process that only ever verifies one kind of token.
The auth service, which signs, still uses PyJWT.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.common.context import user_id_var
from services.common.errors import PermissionDenied, Unauthenticated

if TYPE_CHECKING:
    # Only for annotations: this module stays importable without gRPC (use cases need Caller).
    import grpc

log = logging.getLogger(__name__)

ALGORITHMS = ["EdDSA"]
SERVICE_TOKEN_METADATA = "x-tandem-service-token"  # noqa: S105 - a metadata key name, not a secret
ON_BEHALF_OF_METADATA = "x-tandem-on-behalf-of"
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud"]
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64url(segment: str) -> bytes:
    """Unpadded base64url (RFC 7515) to bytes; ValueError for anything else.

    Only the canonical spelling is accepted: a last character whose unused low bits are
    not zero decodes to the same bytes, so without this one token would have up to 15
    other spellings that all verify (and each would be a cache entry of its own).
    """
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=") != segment.encode():
        raise ValueError("not canonical base64url")
    return data


def _json_object(data: bytes) -> dict[str, Any]:
    value = orjson.loads(data)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _int_claim(payload: dict[str, Any], name: str) -> int:
    # As PyJWT: NumericDate claims go through int() (so "123" and 123.9 are accepted).
    try:
        return int(payload[name])
    except (ValueError, TypeError, OverflowError):
        raise Unauthenticated("invalid access token") from None


def _public_key(entry: dict[str, Any]) -> Ed25519PublicKey:
    """The Ed25519 public key of one OKP JWK (RFC 8037); ValueError when malformed."""
    x = entry.get("x")
    if not isinstance(x, str):
        raise ValueError("JWK without x")
    return Ed25519PublicKey.from_public_bytes(_b64url(x))


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified access token says."""

    user_id: str
    expires_at: float
    jti: str
    login: str


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling an RPC: a user (with their token) or another service."""

    user_id: str | None
    internal: bool
    token: str | None = None
    # The GitHub login from the access token ("" for internal callers): invitations
    # addressed to a login that had no Tandem user yet are matched by it.
    login: str = ""

    def require_user(self) -> str:
        if self.user_id is None:
            raise Unauthenticated("a user access token is required")
        return self.user_id


JwksFetcher = Callable[[], Awaitable[str]]


class TokenVerifier:
    """Verifies access tokens locally; verified tokens are cached until they expire."""

    def __init__(self, fetch_jwks: JwksFetcher, issuer: str, audience: str, *,
                 leeway: float = 30.0, min_refresh_interval: float = 5.0,
                 cache_size: int = 50_000) -> None:
        self._fetch = fetch_jwks
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._min_refresh = min_refresh_interval
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._next_refresh = 0.0
        self._refresh_lock = asyncio.Lock()
        self._cache: OrderedDict[str, Claims] = OrderedDict()
        self._cache_size = cache_size

    @property
    def kids(self) -> list[str]:
        return list(self._keys)

    def set_jwks(self, jwks_json: str | bytes) -> None:
        document = orjson.loads(jwks_json)
        keys: dict[str, Ed25519PublicKey] = {}
        for entry in document.get("keys", []):
            # Only keys for our one algorithm; anything else in the set is ignored.
            if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519" or "kid" not in entry:
                continue
            keys[entry["kid"]] = _public_key(entry)
        self._keys = keys

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload the JWKS unless one was loaded very recently; True if a load happened."""
        async with self._refresh_lock:
            now = time.monotonic()
            if not force and now < self._next_refresh:
                return False
            try:
                self.set_jwks(await self._fetch())
                if not self._keys:
                    # An auth service still starting serves an empty set: not a real load.
                    raise LookupError("the JWKS has no usable keys yet")
            except Exception as exc:
                log.warning("could not load JWKS: %s", type(exc).__name__)
                # Retry a failed load soon; throttle only successful ones, which is
                # what stops a flood of random kids from hammering auth.
                # With no keys at all (auth still starting) every request would fail,
                # so retry almost at once; with known keys, keep verifying with those.
                self._next_refresh = now + (0.05 if not self._keys else min(0.5, self._min_refresh))
                return False
            self._next_refresh = now + self._min_refresh
            return True

    async def verify(self, token: str) -> Claims:
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None:
            if cached.expires_at + self._leeway > now:
                return cached
            self._cache.pop(token, None)
        try:
            header_b64, payload_b64, signature_b64 = token.split(".")
            header = _json_object(_b64url(header_b64))
            payload_bytes = _b64url(payload_b64)
            signature = _b64url(signature_b64)
        except ValueError:
            raise Unauthenticated("malformed access token") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("access token has no key id")
        if header.get("alg") not in ALGORITHMS:
            raise Unauthenticated("access token algorithm not allowed")
        key = self._keys.get(kid)
        if key is None:
            await self.refresh()
            key = self._keys.get(kid)
            if key is None:
                raise Unauthenticated("access token signed by an unknown key")
        # No JWS extension is used by auth: a token asking for one ("crit", "b64") is refused.
        if "crit" in header or "b64" in header:
            raise Unauthenticated("invalid access token")
        try:
            key.verify(signature, f"{header_b64}.{payload_b64}".encode())
            payload = _json_object(payload_bytes)
        except (InvalidSignature, ValueError):
            raise Unauthenticated("invalid access token") from None
        self._check_claims(payload)
        claims = Claims(str(payload["sub"]), float(payload["exp"]), str(payload["jti"]),
                        str(payload.get("login", "")))
        self._cache[token] = claims
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return claims

    def _check_claims(self, payload: dict[str, Any]) -> None:
        """PyJWT's checks in PyJWT's order: required, iat, nbf, exp, iss, aud, sub, jti."""
        for name in _REQUIRED_CLAIMS:
            if payload.get(name) is None:
                raise Unauthenticated("invalid access token")
        now = time.time()
        if _int_claim(payload, "iat") > now + self._leeway:
            raise Unauthenticated("invalid access token")
        if "nbf" in payload and _int_claim(payload, "nbf") > now + self._leeway:
            raise Unauthenticated("invalid access token")
        if _int_claim(payload, "exp") <= now - self._leeway:
            raise Unauthenticated("access token expired")
        if payload["iss"] != self._issuer:
            raise Unauthenticated("invalid access token")
        audience = payload["aud"]
        audiences = [audience] if isinstance(audience, str) else audience
        if (not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences)
                or self._audience not in audiences):
            raise Unauthenticated("invalid access token")
        if not isinstance(payload["sub"], str) or not isinstance(payload["jti"], str):
            raise Unauthenticated("invalid access token")


def bearer_token(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <t>` value, else None."""
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _metadata(context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        out[key] = value if isinstance(value, str) else value.decode(errors="replace")
    return out


def credential_refusal(presented: str | bytes | None, service_token: bytes) -> str | None:
    """Why an RPC's service credential is refused, or None when it is the right one."""
    if presented is None:
        return "missing service credential"
    value = presented.encode() if isinstance(presented, str) else presented
    # Constant-time: the comparison must not leak how much of the credential matched.
    if not hmac.compare_digest(value, service_token):
        return "invalid service credential"
    return None


class Authenticator:
    """Turns an RPC's metadata into a Caller.

    Every call must carry the calling service's credential (`x-tandem-service-token`); a
    user's access token alone is refused, so nothing but the gateway and the services can
    reach an RPC. With the credential, the caller is the user of the bearer token (what
    the gateway sends: a user caller, never internal), else the service itself, acting for
    `x-tandem-on-behalf-of` when given (internal).
    """

    def __init__(self, verifier: TokenVerifier, service_token: str) -> None:
        self.verifier = verifier
        self._service_token = service_token.encode()

    async def caller(self, context: grpc.aio.ServicerContext[Any, Any]) -> Caller:
        meta = _metadata(context)
        refusal = credential_refusal(meta.get(SERVICE_TOKEN_METADATA), self._service_token)
        if refusal is not None:
            raise Unauthenticated(refusal)
        token = bearer_token(meta.get("authorization"))
        if token is not None:
            claims = await self.verifier.verify(token)
            user_id_var.set(claims.user_id)
            return Caller(user_id=claims.user_id, internal=False, token=token, login=claims.login)
        on_behalf = meta.get(ON_BEHALF_OF_METADATA) or None
        if on_behalf:
            user_id_var.set(on_behalf)
        return Caller(user_id=on_behalf, internal=True)

    async def user(self, context: grpc.aio.ServicerContext[Any, Any]) -> Caller:
        caller = await self.caller(context)
        caller.require_user()
        return caller

    async def internal(self, context: grpc.aio.ServicerContext[Any, Any]) -> Caller:
        """Internal-only RPCs: user callers are refused even with a valid token."""
        caller = await self.caller(context)
        if not caller.internal:
            raise PermissionDenied("this operation is for internal callers only")
        return caller


def service_metadata(service_token: str, on_behalf_of: str | None = None,
                     request_id: str | None = None) -> list[tuple[str, str]]:
    """Metadata for a service-to-service call (acting for `on_behalf_of` when given)."""
    meta = [(SERVICE_TOKEN_METADATA, service_token)]
    if on_behalf_of:
        meta.append((ON_BEHALF_OF_METADATA, on_behalf_of))
    if request_id:
        meta.append(("x-request-id", request_id))
    return meta
