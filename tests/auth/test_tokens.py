"""Token verification against forged, tampered and stale tokens (unit, no network)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from services.common.errors import Unauthenticated
from services.common.identity import TokenVerifier

ISS, AUD = "tandem-auth", "tandem"


def _key(kid: str) -> tuple[Ed25519PrivateKey, dict[str, Any]]:
    private = Ed25519PrivateKey.generate()
    jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "alg": "EdDSA", "use": "sig"})
    return private, jwk


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISS, "aud": AUD, "sub": "user-1", "iat": now, "nbf": now, "exp": now + 600,
            "jti": "j1", "login": "octocat", **over}


class Jwks:
    def __init__(self, *jwks: dict[str, Any]) -> None:
        self.keys = list(jwks)
        self.fetches = 0

    async def __call__(self) -> str:
        self.fetches += 1
        return orjson.dumps({"keys": self.keys}).decode()


@pytest.fixture
def signer() -> tuple[Ed25519PrivateKey, dict[str, Any]]:
    return _key("k1")


async def _verifier(jwks: Jwks) -> TokenVerifier:
    verifier = TokenVerifier(jwks, ISS, AUD, leeway=0, min_refresh_interval=5.0)
    await verifier.refresh(force=True)
    return verifier


async def test_valid_token_verifies_and_is_cached(signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    private, jwk = signer
    verifier = await _verifier(Jwks(jwk))
    token = jwt.encode(_claims(), private, algorithm="EdDSA", headers={"kid": "k1"})
    claims = await verifier.verify(token)
    assert (claims.user_id, claims.login) == ("user-1", "octocat")
    assert await verifier.verify(token) is claims


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_alg_none_is_refused(signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    verifier = await _verifier(Jwks(signer[1]))
    token = f"{_b64({'alg': 'none', 'kid': 'k1'})}.{_b64(_claims())}."
    with pytest.raises(Unauthenticated, match="algorithm not allowed"):
        await verifier.verify(token)


async def test_hs256_signed_with_public_key_text_is_refused(
        signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    private, jwk = signer
    verifier = await _verifier(Jwks(jwk))
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64({"alg": "HS256", "kid": "k1", "typ": "JWT"})
    payload = _b64(_claims())
    import hashlib
    import hmac

    sig = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    with pytest.raises(Unauthenticated):
        await verifier.verify(token)


async def test_tampered_payload_is_refused(signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    private, jwk = signer
    verifier = await _verifier(Jwks(jwk))
    token = jwt.encode(_claims(), private, algorithm="EdDSA", headers={"kid": "k1"})
    header, _, sig = token.split(".")
    forged = f"{header}.{_b64(_claims(sub='someone-else'))}.{sig}"
    with pytest.raises(Unauthenticated, match="invalid access token"):
        await verifier.verify(forged)


@pytest.mark.parametrize(("claims", "message"), [
    ({"exp": int(time.time()) - 10}, "expired"),
    ({"aud": "someone-else"}, "invalid"),
    ({"iss": "evil"}, "invalid"),
    ({"nbf": int(time.time()) + 3600}, "invalid"),
])
async def test_wrong_claims_are_refused(signer: tuple[Ed25519PrivateKey, dict[str, Any]],
                                        claims: dict[str, Any], message: str) -> None:
    private, jwk = signer
    verifier = await _verifier(Jwks(jwk))
    token = jwt.encode(_claims(**claims), private, algorithm="EdDSA", headers={"kid": "k1"})
    with pytest.raises(Unauthenticated, match=message):
        await verifier.verify(token)


async def test_missing_required_claim_is_refused(signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    private, jwk = signer
    verifier = await _verifier(Jwks(jwk))
    claims = _claims()
    del claims["jti"]
    token = jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": "k1"})
    with pytest.raises(Unauthenticated):
        await verifier.verify(token)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "eyJhbGciOi.x.y", "Bearer x", "\u00ff" * 10])
async def test_garbage_is_refused(signer: tuple[Ed25519PrivateKey, dict[str, Any]], garbage: str) -> None:
    verifier = await _verifier(Jwks(signer[1]))
    with pytest.raises(Unauthenticated):
        await verifier.verify(garbage)


async def test_unknown_kid_refreshes_at_most_once_per_interval(
        signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    private, jwk = signer
    jwks = Jwks(jwk)
    verifier = await _verifier(jwks)
    assert jwks.fetches == 1
    for i in range(50):
        token = jwt.encode(_claims(), private, algorithm="EdDSA", headers={"kid": f"random-{i}"})
        with pytest.raises(Unauthenticated, match="unknown key"):
            await verifier.verify(token)
    # A flood of random kids costs at most one extra JWKS fetch per interval.
    assert jwks.fetches <= 2


async def test_new_key_is_picked_up_on_unknown_kid() -> None:
    old_private, old_jwk = _key("old")
    new_private, new_jwk = _key("new")
    jwks = Jwks(old_jwk)
    verifier = TokenVerifier(jwks, ISS, AUD, leeway=0, min_refresh_interval=0.0)
    await verifier.refresh(force=True)
    jwks.keys.append(new_jwk)
    token = jwt.encode(_claims(), new_private, algorithm="EdDSA", headers={"kid": "new"})
    assert (await verifier.verify(token)).user_id == "user-1"
    old = jwt.encode(_claims(jti="j2"), old_private, algorithm="EdDSA", headers={"kid": "old"})
    assert (await verifier.verify(old)).jti == "j2"


def _pyjwt_verdict(token: str, public: Any, leeway: float) -> str:
    """What PyJWT (which auth signs with) says of a token: the reference for our verifier."""
    try:
        jwt.decode(token, public, algorithms=["EdDSA"], audience=AUD, issuer=ISS, leeway=leeway,
                   options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        return "expired"
    except jwt.PyJWTError:
        return "invalid"
    return "ok"


def _sign(private: Ed25519PrivateKey, claims: dict[str, Any], **header: Any) -> str:
    """A compact JWS made by hand: PyJWT refuses to encode some of the claims tried here."""
    signing_input = f"{_b64({'alg': 'EdDSA', 'typ': 'JWT', **header})}.{_b64(claims)}"
    sig = base64.urlsafe_b64encode(private.sign(signing_input.encode())).rstrip(b"=").decode()
    return f"{signing_input}.{sig}"


_NOW = int(time.time())


@pytest.mark.parametrize("over", [
    {},
    {"exp": _NOW - 20},            # expired, but within the leeway
    {"exp": _NOW - 40},            # expired beyond the leeway
    {"exp": str(_NOW + 600)},      # NumericDate as a string: PyJWT takes int() of it
    {"exp": _NOW + 600.7},
    {"exp": "soon"},
    {"exp": None},
    {"iat": _NOW + 20},            # issued in the future, within the leeway
    {"iat": _NOW + 40},
    {"iat": [1]},
    {"nbf": _NOW + 40},
    {"nbf": "later"},
    {"aud": ["other", AUD]},
    {"aud": ["other"]},
    {"aud": [AUD, 7]},
    {"aud": {"aud": AUD}},
    {"iss": "evil"},
    {"iss": [ISS]},
    {"sub": 42},
    {"jti": 42},
    {"sub": None},
    {"exp": _NOW - 40, "iss": "evil"},   # the first failing check decides the message
])
async def test_claims_are_judged_as_pyjwt_judges_them(
        signer: tuple[Ed25519PrivateKey, dict[str, Any]], over: dict[str, Any]) -> None:
    private, jwk = signer
    verifier = TokenVerifier(Jwks(jwk), ISS, AUD, leeway=30, min_refresh_interval=5.0)
    await verifier.refresh(force=True)
    claims = {k: v for k, v in _claims(**over).items() if v is not None}
    token = _sign(private, claims, kid="k1")
    expected = _pyjwt_verdict(token, private.public_key(), leeway=30)
    try:
        await verifier.verify(token)
        verdict = "ok"
    except Unauthenticated as exc:
        verdict = "expired" if "expired" in exc.message else "invalid"
    assert verdict == expected


async def test_signature_of_another_key_and_jws_extensions_are_refused(
        signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    private, jwk = signer
    verifier = await _verifier(Jwks(jwk))
    other, _ = _key("k1")
    forged = jwt.encode(_claims(), other, algorithm="EdDSA", headers={"kid": "k1"})
    with pytest.raises(Unauthenticated, match="invalid access token"):
        await verifier.verify(forged)
    critical = jwt.encode(_claims(), private, algorithm="EdDSA",
                          headers={"kid": "k1", "crit": ["exp"]})
    with pytest.raises(Unauthenticated, match="invalid access token"):
        await verifier.verify(critical)
    # Signed by the right key, but the header names another algorithm: refused, as PyJWT does.
    for alg in ("none", "HS256", "ES256", "eddsa"):
        confused = _sign(private, _claims(), kid="k1", alg=alg)
        assert _pyjwt_verdict(confused, private.public_key(), leeway=30) == "invalid"
        with pytest.raises(Unauthenticated, match="algorithm not allowed"):
            await verifier.verify(confused)
    # Padding, a fourth segment or a non-base64url character make the token malformed.
    token = jwt.encode(_claims(), private, algorithm="EdDSA", headers={"kid": "k1"})
    header, payload, sig = token.split(".")
    for bad in (f"{header}=.{payload}.{sig}", f"{token}.x", f"{header}.{payload}.{sig}+"):
        with pytest.raises(Unauthenticated):
            await verifier.verify(bad)
    assert (await verifier.verify(token)).user_id == "user-1"


async def test_a_jwks_with_a_malformed_key_is_not_loaded(
        signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    private, jwk = signer
    jwks = Jwks(jwk)
    verifier = await _verifier(jwks)
    jwks.keys = [dict(jwk, kid="k2", x=jwk["x"][:-4])]
    assert not await verifier.refresh(force=True)
    # The keys loaded before keep verifying.
    assert verifier.kids == ["k1"]
    token = jwt.encode(_claims(), private, algorithm="EdDSA", headers={"kid": "k1"})
    assert (await verifier.verify(token)).user_id == "user-1"


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _aliases(segment: str) -> list[str]:
    """Every other spelling of `segment` that decodes to the same bytes: the last character
    differs only in the bits that base64 leaves unused (RFC 4648, section 3.5)."""
    unused = {2: 4, 3: 2}.get(len(segment) % 4, 0)
    index = _B64URL.index(segment[-1])
    return [segment[:-1] + _B64URL[index ^ low] for low in range(1, 1 << unused)]


async def test_non_canonical_base64url_segments_are_refused(
        signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    private, jwk = signer
    verifier = await _verifier(Jwks(jwk))
    token = jwt.encode(_claims(), private, algorithm="EdDSA", headers={"kid": "k1"})
    header, payload, sig = token.split(".")
    # An Ed25519 signature is 64 bytes: 86 characters with 4 unused bits, so 15 other spellings.
    spellings = _aliases(sig)
    assert len(spellings) == 15
    for alias in spellings:
        assert base64.urlsafe_b64decode(alias + "==") == base64.urlsafe_b64decode(sig + "==")
        with pytest.raises(Unauthenticated, match="malformed access token"):
            await verifier.verify(f"{header}.{payload}.{alias}")
    # The same rule for the header and the payload, whatever their length.
    for forged in ([f"{a}.{payload}.{sig}" for a in _aliases(header)]
                   + [f"{header}.{a}.{sig}" for a in _aliases(payload)]):
        with pytest.raises(Unauthenticated, match="malformed access token"):
            await verifier.verify(forged)
    assert (await verifier.verify(token)).user_id == "user-1"
