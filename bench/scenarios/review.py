"""Pull-request import from the GitHub stand-in: cold (no cached answers) and warm (ETags, 304)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import httpx
import redis

from bench.registry import Context, Load, Measurement, PyLoad, RunSpec, Skip, scenario
from bench.scenarios.sessions import owned_session, run_id
from scripts.devlogin import SignedIn
from services.common.keyspace import KeySpace

IMPORT = {"repo": "tandem-demo/hello-api", "pull_number": 1}
# Cold imports cost two GitHub requests each against a budget of 5,000 an hour per token
# (the stand-in keeps GitHub's limit); a few users keep a long run well inside it.
COLD_USERS = 4

Importer = tuple[SignedIn, str]  # a user and a session they own


def importers(ctx: Context, prefix: str, count: int) -> list[Importer]:
    tag = run_id()
    return [owned_session(ctx, f"{prefix}-{tag}-{i}", "Bench review") for i in range(count)]


def post_import(http: httpx.Client, who: Importer) -> httpx.Response:
    user, session_id = who
    return http.post(f"/api/v1/sessions/{session_id}/reviews", json=IMPORT, headers=user.headers)


def first_import(ctx: Context, who: Importer) -> None:
    """One untimed import: a route not built yet is a skip, any other refusal a failure."""
    with httpx.Client(base_url=ctx.gateway, timeout=30) as http:
        reply = post_import(http, who)
    if reply.status_code in (404, 405, 501):
        raise Skip(f"POST /api/v1/sessions/{{id}}/reviews answers {reply.status_code}: "
                   "not built yet")
    if reply.status_code != 201:
        raise RuntimeError(f"a pull-request import answered {reply.status_code}: "
                           f"{reply.text[:300]}")


def timed_imports(ctx: Context, who: Sequence[Importer],
                  before_each: Callable[[], None] | None = None) -> PyLoad:
    """Imports one after another (users in turn) for the run; p50/p99 per import."""

    def run(spec: RunSpec) -> Measurement:
        samples: list[float] = []
        errors = 0
        deadline = time.perf_counter() + (1.0 if spec.warmup else spec.seconds)
        with httpx.Client(base_url=ctx.gateway, timeout=30) as http:
            while time.perf_counter() < deadline or len(samples) + errors < 3:
                if before_each is not None:
                    before_each()  # not timed
                start = time.perf_counter()
                reply = post_import(http, who[(len(samples) + errors) % len(who)])
                took = time.perf_counter() - start
                if reply.status_code == 201:
                    samples.append(took)
                else:
                    errors += 1
        samples.sort()
        p50 = samples[len(samples) // 2] * 1000 if samples else None
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000 if samples else None
        return Measurement(len(samples), sum(samples), p50, p99, errors, "imports/s")

    return PyLoad(run)


def etag_forgetter(ctx: Context) -> Callable[[], None]:
    """Deletes the review service's cached GitHub answers, so the next import asks in full."""
    client = redis.Redis.from_url(ctx.env.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
                                  socket_connect_timeout=2)
    ctx.defer(client.close)
    pattern = KeySpace(ctx.env.get("REDIS_PREFIX", "tandem:"), "review").key("etag", "*")

    def forget() -> None:
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)

    try:
        forget()
    except redis.RedisError as exc:
        raise Skip(f"cannot reach the platform's Redis to clear the ETag cache: {exc}") from None
    return forget


@scenario("pr_import_cold")
def pr_import_cold(ctx: Context) -> Load:
    """POST .../reviews of the sample PR with GitHub's answers uncached: two full GitHub GETs."""
    who = importers(ctx, "bench-cold-pr", COLD_USERS)
    first_import(ctx, who[0])
    return timed_imports(ctx, who, before_each=etag_forgetter(ctx))


@scenario("pr_import_warm", baseline="pr_import_cold")
def pr_import_warm(ctx: Context) -> Load:
    """The same import repeated by the same user: both GitHub GETs answer 304 from the ETags."""
    who = importers(ctx, "bench-warm-pr", 1)
    first_import(ctx, who[0])
    return timed_imports(ctx, who)
