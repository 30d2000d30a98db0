"""The floor and the gateway's operational routes: what every other number is measured against."""

from __future__ import annotations

import sys

from bench.registry import Context, Load, WrkLoad, scenario
from scripts.platform import free_port, wait_ready


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
