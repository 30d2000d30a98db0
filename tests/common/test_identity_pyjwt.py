"""The kit's Ed25519 token verifier against PyJWT, the reference (auth signs with it), both ways.

services/common/identity.py verifies with cryptography directly to keep PyJWT out of the
processes that only verify (measured in the kit's report for issue 17: PyJWT's imports add
about 3.7 MB of resident memory; a first-sight verification costs about 20 % less CPU).
That is only worth it while it judges every token as PyJWT does: here tokens PyJWT signs
are accepted exactly when PyJWT's own decode accepts them, and of 2,000 mutated
tokens ours accepts none that PyJWT refuses, and refuses none that PyJWT accepts (save the
non-canonical base64url spellings it refuses on purpose, docs/architecture.md).
"""

from __future__ import annotations

import base64
import json
import random
import time
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from services.common.errors import Unauthenticated
from services.common.identity import TokenVerifier

ISS, AUD, LEEWAY = "tandem-auth", "tandem", 30
REQUIRED = ["exp", "iat", "sub", "jti", "iss", "aud"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _canonical(segment: str) -> bool:
    try:
        return _b64(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))) == segment
    except ValueError:
        return False


@pytest.fixture
async def setup() -> tuple[Ed25519PrivateKey, TokenVerifier]:
    private = Ed25519PrivateKey.generate()
    jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    jwk["kid"] = "k1"

    async def fetch() -> str:
        return orjson.dumps({"keys": [jwk]}).decode()

    # No cache of verified tokens: every token below is judged afresh.
    verifier = TokenVerifier(fetch, ISS, AUD, leeway=LEEWAY, cache_size=0)
    await verifier.refresh(force=True)
    return private, verifier


def _pyjwt_accepts(token: str, private: Ed25519PrivateKey) -> bool:
    try:
        # The key is chosen by `kid`, as from a JWKS (PyJWKClient does the same).
        if jwt.get_unverified_header(token).get("kid") != "k1":
            return False
        jwt.decode(token, private.public_key(), algorithms=["EdDSA"], audience=AUD, issuer=ISS,
                   leeway=LEEWAY, options={"require": REQUIRED})
    except jwt.PyJWTError:
        return False
    return True


async def _ours_accepts(token: str, verifier: TokenVerifier) -> bool:
    try:
        await verifier.verify(token)
    except Unauthenticated:
        return False
    return True


def _claims(rng: random.Random) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISS, "aud": AUD, "sub": "user-1", "iat": now,
                              "exp": now + 600, "jti": "j1", "login": "octocat"}
    choices: list[tuple[str, Any]] = [
        ("exp", now - rng.randint(0, 60)), ("iat", now + rng.randint(0, 60)),
        ("nbf", now + rng.randint(-60, 60)), ("aud", [AUD, "other"]), ("aud", ["other"]),
        ("aud", "other"), ("iss", "someone"), ("sub", 7), ("jti", None), ("login", "ünïcode"),
        ("extra", {"nested": [1, 2]}), ("exp", float(now + 600)), ("iat", None),
    ]
    for name, value in rng.sample(choices, rng.randint(0, 3)):
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


async def test_tokens_pyjwt_signs_are_accepted_exactly_when_pyjwt_accepts_them(
        setup: tuple[Ed25519PrivateKey, TokenVerifier]) -> None:
    private, verifier = setup
    rng = random.Random(17)
    verdicts = set()
    for _ in range(400):
        headers: dict[str, Any] = {"kid": "k1"}
        if rng.random() < 0.3:
            headers["cty"] = "JWT"
        token = jwt.encode(_claims(rng), private, algorithm="EdDSA", headers=headers)
        expected = _pyjwt_accepts(token, private)
        verdicts.add(expected)
        assert await _ours_accepts(token, verifier) == expected, jwt.decode(
            token, options={"verify_signature": False})
    assert verdicts == {True, False}, "the sample holds both kinds"


def _respelt(token: str, private: Ed25519PrivateKey, rng: random.Random) -> str:
    """The same claims (or nearly) written another way and signed again."""
    header, payload, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    text = json.dumps(claims, indent=rng.choice([None, 1]), sort_keys=rng.random() < 0.5)
    choice = rng.randrange(4)
    if choice == 0:
        text = text[:-1] + f', "sub": "{rng.choice(["user-1", "user-2"])}"}}'  # a duplicate key
    elif choice == 1:
        text = text[:-1] + f', "exp": {rng.choice([int(time.time()) - 120, "1e12", 1e12])}}}'
    elif choice == 2:
        text = " \n" + text + rng.choice(["", " ", "\t"])
    body = _b64(text.encode())
    return f"{header}.{body}.{_b64(private.sign(f'{header}.{body}'.encode()))}"


def _mutate(token: str, private: Ed25519PrivateKey, rng: random.Random) -> str:
    if rng.random() < 0.3:
        return _respelt(token, private, rng)
    header, payload, signature = token.split(".")
    parts = [bytearray(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
             for p in (header, payload, signature)]
    target = rng.randrange(3)
    for _ in range(rng.randint(1, 3)):
        data = parts[target]
        if data and rng.random() < 0.7:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif data:
            del data[rng.randrange(len(data))]
    head, body = _b64(bytes(parts[0])), _b64(bytes(parts[1]))
    if target != 2 and rng.random() < 0.5:
        # Signed again: what is left to judge is the header and claims themselves.
        return f"{head}.{body}.{_b64(private.sign(f'{head}.{body}'.encode()))}"
    return f"{head}.{body}.{_b64(bytes(parts[2]))}"


async def test_no_mutated_token_divides_the_two_verifiers(
        setup: tuple[Ed25519PrivateKey, TokenVerifier]) -> None:
    private, verifier = setup
    rng = random.Random(1717)
    now = int(time.time())
    good = jwt.encode({"iss": ISS, "aud": AUD, "sub": "user-1", "iat": now, "exp": now + 600,
                       "jti": "j1", "login": "octocat"}, private, algorithm="EdDSA",
                      headers={"kid": "k1"})
    accepted = 0
    for _ in range(2000):
        token = _mutate(good, private, rng)
        ours, theirs = await _ours_accepts(token, verifier), _pyjwt_accepts(token, private)
        if ours:
            assert theirs, token
            accepted += 1
        elif theirs:
            # The one refusal of ours PyJWT does not share: a segment spelt non-canonically.
            assert not all(_canonical(s) for s in token.split(".")), token
    assert accepted, "some mutations (resigned, harmless) stay valid"
