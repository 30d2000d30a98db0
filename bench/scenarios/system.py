"""The floor and the gateway's operational routes: what every other number is measured against."""

from __future__ import annotations

import asyncio
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.realtime_scenarios import Latencies
from bench.registry import Context, Load, Measurement, PyLoad, RunSpec, WrkLoad, scenario
from scripts.platform import free_port, wait_ready
from services.common.eventloop import loop_factory
from services.common.peers import CHANNEL_OPTIONS


@scenario("floor", needs_platform=False)
def floor(ctx: Context) -> Load:
    """A bare aiohttp handler in its own process: the most any HTTP route here can do."""
    port = free_port()
    ctx.start_process([sys.executable, "-m", "bench.floor", "--port", str(port)], name="floor")
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/health", 15.0, what="floor server")
    return WrkLoad(url + "/health")


@scenario("health", baseline="floor")
def health(ctx: Context) -> Load:
    """Gateway liveness: the gateway's middleware stack over the floor."""
    return WrkLoad(ctx.gateway + "/health")


@scenario("ready", baseline="health")
def ready(ctx: Context) -> Load:
    """Gateway readiness: four gRPC health calls and a Redis PING per request."""
    return WrkLoad(ctx.gateway + "/ready")


@scenario("grpc_floor", needs_platform=False)
def grpc_floor(ctx: Context) -> Load:
    """A bare grpc.aio health Check over loopback: the CPU of one gateway -> service hop."""
    port = free_port()
    ctx.start_process([sys.executable, "-m", "bench.grpcfloor", "--port", str(port)],
                      name="grpc_floor")
    target = f"127.0.0.1:{port}"
    asyncio.run(_wait_serving(target, 15.0))

    def run(spec: RunSpec) -> Measurement:
        seconds = 1.0 if spec.warmup else float(spec.seconds)
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(_hammer(target, spec.connections, seconds))

    return PyLoad(run)


async def _wait_serving(target: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gRPC floor server at {target} did not start")
            await asyncio.sleep(0.1)


async def _hammer(target: str, concurrency: int, seconds: float) -> Measurement:
    """`concurrency` callers in a loop over one channel, as the gateway calls a service."""
    samples: list[float] = []
    errors = 0
    now = time.perf_counter
    request = health_pb2.HealthCheckRequest()
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        start = now()
        deadline = start + seconds

        async def caller() -> None:
            nonlocal errors
            while (began := now()) < deadline:
                try:
                    await stub.Check(request, timeout=5.0)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                samples.append(now() - began)

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        took = now() - start
    lat = Latencies(samples, took, errors)
    return Measurement(len(samples), took, lat.p50_ms, lat.p99_ms, errors, "calls/s")
