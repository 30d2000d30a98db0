"""Signing keys: Ed25519 keys (stored sealed by the repository), rotation, JWKS, token signing."""

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

from services.auth.domain import NewSigningKey, StoredSigningKey
from services.auth.ports import Sealer, SigningKeyStore
from services.common.errors import Unavailable

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

    def __init__(self, store: SigningKeyStore, sealer: Sealer, issuer: str, audience: str,
                 access_ttl: int) -> None:
        self._store = store
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

    def _private(self, stored: StoredSigningKey) -> Ed25519PrivateKey:
        """The key's private half; ValueError when it does not open with TOKEN_ENCRYPTION_KEY."""
        raw = self._sealer.open(stored.sealed_key, stored.kid.encode())
        return Ed25519PrivateKey.from_private_bytes(raw)

    def _opens(self, stored: StoredSigningKey) -> bool:
        try:
            self._sealer.open(stored.sealed_key, stored.kid.encode())
        except ValueError:
            return False
        return True

    async def load(self) -> None:
        keys = []
        for stored in await self._store.signing_keys():
            private = None
            if stored.retired_at is None:
                try:
                    private = self._private(stored)
                except ValueError:
                    # TOKEN_ENCRYPTION_KEY changed: this key can no longer sign, but its
                    # public half still verifies the tokens it signed until they expire.
                    log.error("signing key does not open with TOKEN_ENCRYPTION_KEY; it will "
                              "only verify, and a new key will sign", extra={"kid": stored.kid})
            keys.append(SigningKey(stored.kid, private, stored.public_jwk, stored.created_at,
                                   private is None, stored.verify_until))
        self._keys = keys
        self._jwks = orjson.dumps({"keys": [k.public_jwk for k in keys]})

    def _retire_until(self) -> datetime:
        # Tokens signed by a retired key live at most access_ttl; keep it a minute longer.
        return datetime.now(UTC) + timedelta(seconds=self._access_ttl + 60)

    async def ensure_active(self) -> None:
        """Create a first key when none signs (idempotent across replicas)."""
        async with self._lock:
            await self.load()
            if self.can_sign:
                return
            # Keys sealed under another TOKEN_ENCRYPTION_KEY are retired (they keep
            # verifying for one token lifetime) so a fresh key can sign.
            unreadable = [k.kid for k in self._keys if k.private is None and k.verify_until is None]
            await self._store.ensure_signing_key(unreadable, self._retire_until(), self._opens,
                                                 self._new_key())
            await self.load()

    async def rotate(self) -> str:
        """Introduce a new signing key; the previous ones keep verifying until their tokens expire."""
        async with self._lock:
            new = self._new_key()
            await self._store.rotate_signing_key(self._retire_until(), new)
        await self.load()
        log.info("signing key rotated", extra={"kid": new.kid})
        return new.kid

    def _new_key(self) -> NewSigningKey:
        private = Ed25519PrivateKey.generate()
        kid = uuid.uuid4().hex[:16]
        jwk = orjson.loads(OKPAlgorithm.to_jwk(private.public_key()))
        jwk.update({"kid": kid, "alg": "EdDSA", "use": "sig"})
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - only here

        raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
        return NewSigningKey(kid, self._sealer.seal(raw, kid.encode()), jwk)

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
        """Pick up keys other replicas made or rotated. A failed load (database away) is
        logged and retried at the next interval; the kit restarts this loop if it dies."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.load()
            except Exception:
                log.warning("could not reload signing keys", exc_info=True)
