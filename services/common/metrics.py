"""Prometheus metrics shared by every process, and the /metrics endpoint for services."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

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

log = logging.getLogger(__name__)

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
WS_RATE_LIMITED = Counter(
    "tandem_ws_rate_limited_total",
    "WebSocket frames over a connection's rate limit (the document socket then closes with 4429).",
    ["socket"],
)
DOCUMENTS_LOADED_BYTES = Gauge(
    "tandem_documents_loaded_bytes",
    "Loaded documents of this sessions replica: encoded bytes plus 4 KiB each "
    "(SESSIONS_DOCUMENT_CACHE_BYTES bounds it).",
)
DOCUMENT_UPDATES_TOO_LARGE = Counter(
    "tandem_document_updates_too_large_total",
    "Document updates refused because the document would pass DOCUMENT_MAX_BYTES.",
)
AI_JOBS = Counter(
    "tandem_ai_jobs_total", "AI review jobs that ended, by provider and final status.",
    ["provider", "status"],
)
AI_JOB_DEADLINES = Counter(
    "tandem_ai_job_deadlines_total",
    "AI review jobs failed for running past AI_JOB_DEADLINE_SECONDS, by provider.",
    ["provider"],
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


def exposition() -> bytes:
    """Every metric of this process in the Prometheus text format (served as CONTENT_TYPE_LATEST)."""
    return generate_latest(REGISTRY)


# Limits in line with aiohttp's, which served this port before: a request head that
# breaks them is answered 400 and the connection closed.
_MAX_LINE = 8190
_MAX_HEADERS = 100
_MAX_HEAD = 64 * 1024
# How long an idle keep-alive connection (or a request head in progress) may take.
_KEEPALIVE_TIMEOUT = 75.0
_REQUEST_LINE = re.compile(r"([A-Z]+) (\S+) HTTP/(\d)\.(\d)")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            500: "Internal Server Error", 505: "HTTP Version Not Supported"}
_TEXT = "text/plain; charset=utf-8"


class _BadRequest(Exception):
    def __init__(self, status: int = 400) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str  # percent-decoded, without the query
    keep_alive: bool


def _parse_head(head: bytes) -> _Request:
    """The method, decoded path and keep-alive of one HTTP/1.x request head (ending in CRLFCRLF)."""
    lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")[:-2]
    if not lines or len(lines) > _MAX_HEADERS + 1 or any(len(line) > _MAX_LINE for line in lines):
        raise _BadRequest
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise _BadRequest
    method, target, major, minor = match.groups()
    if major != "1":
        raise _BadRequest(505)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not _HEADER_NAME.fullmatch(name):
            raise _BadRequest
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    http11 = minor != "0"
    if http11 and "host" not in headers:
        raise _BadRequest
    if target.startswith("/"):
        raw_path = target.partition("?")[0].partition("#")[0]
    elif target.startswith(("http://", "https://")):
        raw_path = urlsplit(target).path or "/"
    else:
        raise _BadRequest
    length = headers.get("content-length", "0")
    if not (length.isascii() and length.isdigit()):
        raise _BadRequest
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "keep-alive" in tokens if not http11 else "close" not in tokens
    # The body of a request is never read, so a connection that carries one is closed after it.
    if int(length) or "transfer-encoding" in headers:
        keep_alive = False
    return _Request(method, unquote(raw_path), keep_alive)


class MetricsServer:
    """GET (and HEAD) /metrics over plain HTTP/1.1, run by each service on its metrics port.

    A few dozen lines on asyncio streams instead of aiohttp, which a service would import
    (about 10 MB of resident memory) only for this one route. Anything else is 404, another
    method on /metrics 405, a malformed request 400; connections are kept alive for
    Prometheus and all closed by close(). tests/common/test_metrics_server.py reads what it
    serves with prometheus_client's own text parser.

    Kept over prometheus_client's `start_http_server` (issue 17), measured with the same
    registry in a child process, 1,000-2,000 scrapes over keep-alive (the script is in the
    kit's report for issue 17): idle RSS 25.4 vs 25.9 MB (25.7 vs 26.3-26.7 MB after
    scraping), and server CPU per scrape about 1.1 ms lower without compression and 2.5 ms
    lower with `Accept-Encoding: gzip` (what Prometheus sends; ours never compresses) on a
    loaded 2-core VM where rendering the 32 KB exposition alone took ~6 ms. The memory is
    small; what decides is that prometheus_client's server renders in a thread of its own,
    so collectors such as `track_pool` would read the event loop's objects from another
    thread, and its WSGI app answers the exposition on every path and method.
    """

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0 picks a free port); return the port bound."""
        self._server = await asyncio.start_server(self._serve, host, port, limit=_MAX_HEAD)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and close every open connection."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("metrics connection failed")
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; True when the connection stays open for another."""
        try:
            async with asyncio.timeout(_KEEPALIVE_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            request = _parse_head(head)
        except asyncio.LimitOverrunError:
            await _send(writer, 400, _TEXT, b"400: Bad Request", keep_alive=False)
            return False
        except _BadRequest as exc:
            body = f"{exc.status}: {_REASONS[exc.status]}".encode()
            await _send(writer, exc.status, _TEXT, body, keep_alive=False)
            return False
        head_only = request.method == "HEAD"
        if request.path != "/metrics":
            await _send(writer, 404, _TEXT, b"404: Not Found", request.keep_alive, head_only)
        elif request.method not in ("GET", "HEAD"):
            await _send(writer, 405, _TEXT, b"405: Method Not Allowed", request.keep_alive,
                        extra="Allow: GET,HEAD\r\n")
        else:
            try:
                body = exposition()
            except Exception:
                log.exception("rendering /metrics failed")
                await _send(writer, 500, _TEXT, b"500: Internal Server Error", keep_alive=False)
                return False
            await _send(writer, 200, CONTENT_TYPE_LATEST, body, request.keep_alive, head_only)
        return request.keep_alive


async def _send(writer: asyncio.StreamWriter, status: int, content_type: str, body: bytes,
                keep_alive: bool, head_only: bool = False, extra: str = "") -> None:
    head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n{extra}"
            f"Content-Length: {len(body)}\r\nDate: {email.utils.formatdate(usegmt=True)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")
    writer.write(head.encode("latin-1") if head_only else head.encode("latin-1") + body)
    await writer.drain()
