"""Realtime: chat fan-out over two gateways, document propagation, and syncing a long document."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable

from bench.realtime_scenarios import (
    Latencies,
    doc_sync,
    doc_update_latency,
    seed_document_url,
    typing_updates,
    ws_fanout,
)
from bench.registry import Context, Load, Measurement, PyLoad, RunSpec, Skip, scenario
from bench.runner import progress
from bench.scenarios.sessions import Api, add_member, run_id, sign_in, sign_in_many
from scripts.devlogin import SignedIn
from scripts.platform import wait_ready
from services.common.eventloop import loop_factory

FANOUT_CLIENTS = 500
FANOUT_RATE = 100.0  # chat messages per second, each delivered to every client
FANOUT_MEMBERS = 5  # an owner and four editors; the 500 sockets use their tokens in turn
DOC_UPDATES = 10_000
SECOND_GATEWAY = "gateway-bench2"


def second_gateway(ctx: Context) -> str:
    """A second gateway replica (same services and Redis), stopped when the scenario ends."""
    platform = ctx.platform
    if platform is None:
        raise Skip("needs a second gateway, which only a platform the benchmark starts has "
                   "(not with --url)")
    port = platform.add_gateway(SECOND_GATEWAY)
    ctx.defer(lambda: platform.stop(SECOND_GATEWAY))
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/ready", 60.0, what=SECOND_GATEWAY)
    return url


def crew_session(ctx: Context, prefix: str, members: int) -> tuple[list[SignedIn], str]:
    """`members` people (the first the owner, the rest editors) in one new session."""
    tag = run_id()
    people = sign_in_many(ctx, [f"{prefix}-{tag}-{i}" for i in range(members)])

    async def build() -> str:
        owner = Api.of(ctx.gateway, people[0])
        try:
            session_id = await owner.create_session(f"{prefix} {tag}")
            for person in people[1:]:
                await add_member(ctx.gateway, owner, session_id, person)
            return session_id
        finally:
            await owner.close()

    return people, asyncio.run(build())


def measurement(lat: Latencies, unit: str) -> Measurement:
    return Measurement(len(lat.samples), lat.seconds, lat.p50_ms, lat.p99_ms, lat.errors, unit)


def repeated(once: Callable[[], Latencies], spec: RunSpec, unit: str,
             minimum: int = 3) -> Measurement:
    """Call `once` until the run's time is up; pool every sample it measured."""
    samples: list[float] = []
    errors = 0
    took = 0.0
    deadline = time.perf_counter() + (1.0 if spec.warmup else spec.seconds)
    while time.perf_counter() < deadline or len(samples) < minimum:
        lat = once()
        samples.extend(lat.samples)
        errors += lat.errors
        took += lat.seconds
        if not lat.samples and lat.errors:
            break  # nothing gets through: report the errors instead of spinning
    return measurement(Latencies(samples, took, errors), unit)


@scenario("ws_fanout")
def fanout(ctx: Context) -> Load:
    """500 event sockets in one session over 2 gateways, 100 chat msg/s: delivery latency."""
    gateways = [ctx.gateway, second_gateway(ctx)]
    people, session_id = crew_session(ctx, "bench-fan", FANOUT_MEMBERS)
    tokens = [p.access_token for p in people]

    def run(spec: RunSpec) -> Measurement:
        seconds = 2.0 if spec.warmup else float(spec.seconds)
        # uvloop, as in the gateway: the listeners' reads cost the machine less CPU.
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            lat = runner.run(ws_fanout(gateways, session_id, tokens, clients=FANOUT_CLIENTS,
                                       rate=FANOUT_RATE, seconds=seconds))
        delivered = len(lat.samples)
        sent = (delivered + lat.errors) / FANOUT_CLIENTS
        if not spec.warmup:
            # The table shows deliveries; say how close the sender came to the asked rate.
            progress(f"    ws_fanout: {sent / seconds:,.1f} msg/s sent (asked "
                     f"{FANOUT_RATE:.0f}) to {FANOUT_CLIENTS} sockets, {delivered:,} deliveries")
        return measurement(lat, "deliveries/s")

    return PyLoad(run)


@scenario("doc_update")
def doc_update(ctx: Context) -> Load:
    """A document update typed at one gateway until it shows at a client of the other."""
    gateways = (ctx.gateway, second_gateway(ctx))
    owner = sign_in(ctx, f"bench-doc-{run_id()}")

    def once() -> Latencies:
        # A new document each time: the function's markers (<0>, <1>, ...) are unique only
        # within one call, and a marker already in the text would be "seen" at once.
        session_id = new_session(ctx, owner, "Bench propagation")
        return asyncio.run(doc_update_latency(*gateways, session_id, owner.access_token,
                                              updates=100))

    return PyLoad(lambda spec: repeated(once, spec, "updates/s"))


def new_session(ctx: Context, owner: SignedIn, title: str) -> str:
    async def create() -> str:
        api = Api.of(ctx.gateway, owner)
        try:
            return await api.create_session(title)
        finally:
            await api.close()

    return asyncio.run(create())


@functools.cache
def ten_thousand_updates() -> tuple[bytes, ...]:
    # Generated once per benchmark run: both document scenarios store the same log.
    return tuple(typing_updates(DOC_UPDATES))


def seeded_session(ctx: Context, owner: SignedIn, database_url: str) -> str:
    """A new session whose document holds 10,000 stored single-character updates."""
    session_id = new_session(ctx, owner, "Bench document")
    asyncio.run(seed_document_url(database_url, session_id, ten_thousand_updates()))
    return session_id


def database(ctx: Context) -> str:
    url = ctx.env.get("DATABASE_URL")
    if not url:
        raise Skip("DATABASE_URL is not set: the 10,000 updates are stored straight into it")
    return url


def check_seeded(ctx: Context, owner: SignedIn, session_id: str) -> None:
    async def version() -> int:
        api = Api.of(ctx.gateway, owner)
        try:
            return int((await api.call("GET", f"/api/v1/sessions/{session_id}/document"))["version"])
        finally:
            await api.close()

    found = asyncio.run(version())
    if found != DOC_UPDATES:
        raise Skip(f"the seeded document has version {found}, not {DOC_UPDATES}: DATABASE_URL "
                   "is not the database of the platform under test")


@scenario("doc_sync_10k")
def doc_sync_10k(ctx: Context) -> Load:
    """A new client's full sync of a 10,000-update document already loaded (warm, repeated)."""
    url = database(ctx)
    owner = sign_in(ctx, f"bench-sync-{run_id()}")
    session_id = seeded_session(ctx, owner, url)
    check_seeded(ctx, owner, session_id)

    def once() -> Latencies:
        return asyncio.run(doc_sync(ctx.gateway, session_id, owner.access_token, repeat=10))

    first = once()  # loads the document: the cold case is doc_sync_10k_cold
    if first.errors or not first.samples:
        raise RuntimeError("the first sync of the seeded document did not complete")
    return PyLoad(lambda spec: repeated(once, spec, "syncs/s"))


@scenario("doc_sync_10k_cold")
def doc_sync_10k_cold(ctx: Context) -> Load:
    """The first sync of a 10,000-update document nobody has opened: replay from the database."""
    url = database(ctx)
    owner = sign_in(ctx, f"bench-cold-{run_id()}")
    check_seeded(ctx, owner, seeded_session(ctx, owner, url))

    def once() -> Latencies:
        # A fresh document each time (seeding is not timed), so every sync is a first one.
        session_id = seeded_session(ctx, owner, url)
        return asyncio.run(doc_sync(ctx.gateway, session_id, owner.access_token, repeat=1))

    return PyLoad(lambda spec: repeated(once, spec, "syncs/s"))
