"""Authenticated reads next to the floor, and the cost of one local token verification."""

from __future__ import annotations

import asyncio
import time

import orjson

from bench.registry import Context, Load, Measurement, PyLoad, RunSpec, Skip, WrkLoad, scenario
from scripts.devlogin import sign_in_http
from services.common.identity import TokenVerifier


def _token(ctx: Context, login: str = "bench-me") -> str:
    try:
        return sign_in_http(ctx.gateway, login).access_token
    except RuntimeError as exc:
        raise Skip(f"cannot sign in through the GitHub stand-in: {exc}") from None


@scenario("me", baseline="health")
def me(ctx: Context) -> Load:
    """Authenticated GET /api/v1/me: local JWT check (cached), rate limit, one gRPC hop, one row."""
    return WrkLoad(ctx.gateway + "/api/v1/me", headers={"Authorization": f"Bearer {_token(ctx)}"})


@scenario("token_verify", baseline=None)
def token_verify(ctx: Context) -> Load:
    """One EdDSA access-token verification in-process, uncached (µs per call in p50/p99)."""
    import httpx  # noqa: PLC0415 - only this scenario needs it

    jwks = httpx.get(ctx.gateway + "/.well-known/jwks.json", timeout=5).text
    token = _token(ctx, "bench-verify")
    issuer = ctx.env.get("JWT_ISSUER", "tandem-auth")
    audience = ctx.env.get("JWT_AUDIENCE", "tandem")

    async def fetch() -> str:
        return jwks

    def run(spec: RunSpec) -> Measurement:
        async def measure() -> Measurement:
            verifier = TokenVerifier(fetch, issuer, audience, cache_size=1)
            await verifier.refresh(force=True)
            samples: list[float] = []
            deadline = time.perf_counter() + (0.3 if spec.warmup else min(spec.seconds, 3))
            while time.perf_counter() < deadline:
                # A cache of one entry evicted each time measures the real signature check.
                verifier._cache.clear()
                start = time.perf_counter()
                await verifier.verify(token)
                samples.append(time.perf_counter() - start)
            samples.sort()
            total = sum(samples)
            return Measurement(len(samples), total, samples[len(samples) // 2] * 1000,
                               samples[int(len(samples) * 0.99)] * 1000, 0)

        return asyncio.run(measure())

    orjson.loads(jwks)  # fail early and clearly if the JWKS is not JSON
    return PyLoad(run)
