"""Signing keys: Ed25519 keys in the database (sealed), rotation, JWKS, and token signing."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from services.auth.crypto import Sealer
from services.common.errors import Unavailable
from services.common.grpcserver import Pool

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey | None  # None for keys that only verify
    public_jwk: dict[str, Any]
    created_at: datetime
    retired: bool
    verify_until: datetime | None


class SigningKeys:
    """Loads keys from the store; the newest unretired key signs, all unexpired keys verify.

    Several auth replicas share the table: each reloads on an interval, so a
    rotation made by one is picked up by all.
    """

    def __init__(self, pool: Pool, sealer: Sealer, issuer: str, audience: str, access_ttl: int) -> None:
        self._pool = pool
        self._sealer = sealer
        self._issuer = issuer
        self._audience = audience
        self._access_ttl = access_ttl
        self._keys: list[SigningKey] = []
        self._jwks = b'{"keys":[]}'
        self._lock = asyncio.Lock()

    @property
    def jwks_json(self) -> bytes:
        return self._jwks

    @property
    def can_sign(self) -> bool:
        return any(k.private is not None for k in self._keys)

    async def load(self) -> None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT kid, sealed_key, public_jwk, created_at, retired_at, verify_until "
                "FROM signing_keys WHERE verify_until IS NULL OR verify_until > now() "
                "ORDER BY created_at DESC")
            rows = await cur.fetchall()
        keys = []
        for row in rows:
            private = None
            if row["retired_at"] is None:
                try:
                    raw = self._sealer.open(bytes(row["sealed_key"]), row["kid"].encode())
                    private = Ed25519PrivateKey.from_private_bytes(raw)
                except ValueError:
                    # TOKEN_ENCRYPTION_KEY changed: this key can no longer sign, but its
                    # public half still verifies the tokens it signed until they expire.
                    log.error("signing key does not open with TOKEN_ENCRYPTION_KEY; it will "
                              "only verify, and a new key will sign", extra={"kid": row["kid"]})
            keys.append(SigningKey(row["kid"], private, dict(row["public_jwk"]), row["created_at"],
                                   private is None, row["verify_until"]))
        self._keys = keys
        self._jwks = orjson.dumps({"keys": [k.public_jwk for k in keys]})

    async def ensure_active(self) -> None:
        """Create a first key when none signs (idempotent across replicas)."""
        async with self._lock:
            await self.load()
            if self.can_sign:
                return
            unreadable = [k.kid for k in self._keys if k.private is None and k.verify_until is None]
            async with self._pool.connection() as conn, conn.transaction():
                # Serialize replicas creating the first key at the same moment.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tandem.auth.keys'))")
                if unreadable:
                    # Keys sealed under another TOKEN_ENCRYPTION_KEY: retire them (they keep
                    # verifying for one token lifetime) so a fresh key can sign.
                    until = datetime.now(UTC) + timedelta(seconds=self._access_ttl + 60)
                    await conn.execute(
                        "UPDATE signing_keys SET retired_at = now(), verify_until = %s "
                        "WHERE kid = ANY(%s) AND retired_at IS NULL", (until, unreadable))
                cur = await conn.execute("SELECT sealed_key, kid FROM signing_keys WHERE retired_at IS NULL")
                usable = False
                for row in await cur.fetchall():
                    try:
                        self._sealer.open(bytes(row["sealed_key"]), row["kid"].encode())
                        usable = True
                    except ValueError:
                        continue
                if not usable:
                    await self._insert(conn)
            await self.load()

    async def rotate(self) -> str:
        """Introduce a new signing key; the previous ones keep verifying until their tokens expire."""
        async with self._lock, self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tandem.auth.keys'))")
            # Tokens signed by a retired key live at most access_ttl; keep it a minute longer.
            until = datetime.now(UTC) + timedelta(seconds=self._access_ttl + 60)
            await conn.execute(
                "UPDATE signing_keys SET retired_at = now(), verify_until = %s "
                "WHERE retired_at IS NULL", (until,))
            kid = await self._insert(conn)
        await self.load()
        log.info("signing key rotated", extra={"kid": kid})
        return kid

    async def _insert(self, conn: Any) -> str:
        private = Ed25519PrivateKey.generate()
        kid = uuid.uuid4().hex[:16]
        jwk = orjson.loads(OKPAlgorithm.to_jwk(private.public_key()))
        jwk.update({"kid": kid, "alg": "EdDSA", "use": "sig"})
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - only here

        raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
        await conn.execute(
            "INSERT INTO signing_keys (kid, sealed_key, public_jwk) VALUES (%s, %s, %s)",
            (kid, self._sealer.seal(raw, kid.encode()), orjson.dumps(jwk).decode()))
        return kid

    def sign_access_token(self, user_id: str, login: str) -> tuple[str, int]:
        active = next((k for k in self._keys if not k.retired and k.private is not None), None)
        if active is None or active.private is None:
            raise Unavailable("signing keys are still loading, try again shortly", retry_after=1)
        now = int(time.time())
        claims = {
            "iss": self._issuer, "aud": self._audience, "sub": user_id, "login": login,
            "iat": now, "nbf": now, "exp": now + self._access_ttl, "jti": secrets.token_hex(12),
        }
        token = jwt.encode(claims, active.private, algorithm="EdDSA", headers={"kid": active.kid})
        return token, self._access_ttl

    async def reload_forever(self, interval: float = 30.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.load()
            except Exception:
                log.warning("could not reload signing keys", exc_info=True)
