"""Prometheus metrics shared by every process, and the /metrics endpoint for services."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Buckets tuned for a loopback microservice: most calls are sub-millisecond to
# tens of milliseconds; the tail up to seconds catches outages and timeouts.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GRPC_SERVER_HANDLED = Counter(
    "tandem_grpc_server_handled_total", "gRPC calls handled by this server.",
    ["service", "method", "code"],
)
GRPC_SERVER_SECONDS = Histogram(
    "tandem_grpc_server_handling_seconds", "Time to handle a gRPC call on the server.",
    ["service", "method"], buckets=LATENCY_BUCKETS,
)
GRPC_CLIENT_HANDLED = Counter(
    "tandem_grpc_client_handled_total", "gRPC calls made by this process, by outcome.",
    ["service", "method", "code"],
)
GRPC_CLIENT_SECONDS = Histogram(
    "tandem_grpc_client_handling_seconds", "Time for a gRPC call made by this process.",
    ["service", "method"], buckets=LATENCY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "tandem_http_requests_total", "HTTP requests served by the gateway.",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "tandem_http_request_duration_seconds", "Time to serve an HTTP request.",
    ["route", "method"], buckets=LATENCY_BUCKETS,
)
DEPENDENCY_UP = Gauge(
    "tandem_dependency_up", "1 when this process can reach the dependency, else 0.",
    ["dependency"],
)
CACHE_REQUESTS = Counter(
    "tandem_cache_requests_total", "Cache look-ups by outcome (hit, miss, error).",
    ["cache", "result"],
)
GITHUB_REQUESTS = Counter(
    "tandem_github_requests_total",
    "Requests to the GitHub REST API by answer status ('error' when none came).",
    ["status"],
)
GITHUB_RATELIMIT_REMAINING = Gauge(
    "tandem_github_ratelimit_remaining",
    "X-RateLimit-Remaining of the latest GitHub API answer.",
)
WS_CONNECTIONS = Gauge(
    "tandem_ws_connections", "Open WebSocket connections.", ["socket"],
)
WS_CLOSED = Counter(
    "tandem_ws_closed_total", "WebSocket connections closed, by close code.", ["socket", "code"],
)
AI_JOBS = Counter(
    "tandem_ai_jobs_total", "AI review jobs that ended, by provider and final status.",
    ["provider", "status"],
)
AI_PROVIDER_SECONDS = Histogram(
    "tandem_ai_provider_request_seconds",
    "Time for one AI provider request (an LLM call to the end of its stream, or one built-in "
    "file analysis).",
    ["provider"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)
AI_TOKENS = Counter(
    "tandem_ai_tokens_total", "Tokens sent to (in) and received from (out) AI providers.",
    ["provider", "direction"],
)
AI_PROVIDER_ERRORS = Counter(
    "tandem_ai_provider_errors_total",
    "AI provider failures and rejected output (rate_limited, server_error, timeout, disconnect, "
    "malformed_output, out_of_range, ...).",
    ["provider", "kind"],
)


_POOL_STATS: dict[str, Callable[[], dict[str, int]]] = {}


class _PoolCollector(Collector):
    """Reports connection pool gauges at scrape time (no background polling)."""

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "tandem_db_pool_connections", "PostgreSQL pool connections by state.",
            labels=["pool", "state"],
        )
        for name, stats_fn in list(_POOL_STATS.items()):
            stats = stats_fn()
            for state in ("pool_size", "pool_available", "requests_waiting"):
                family.add_metric([name, state], float(stats.get(state, 0)))
        yield family


def track_pool(name: str, stats: Callable[[], dict[str, int]]) -> None:
    """Report a pool's gauges under `name` (the latest pool of that name wins)."""
    if not _POOL_STATS:
        REGISTRY.register(_PoolCollector())
    _POOL_STATS[name] = stats


async def _metrics_handler(_: web.Request) -> web.Response:
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def metrics_app() -> web.Application:
    """A tiny app serving /metrics, run by each service on its metrics port."""
    app = web.Application()
    app.router.add_get("/metrics", _metrics_handler)
    return app


def metrics_response() -> web.Response:
    """The exposition for the gateway's own /metrics route."""
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
