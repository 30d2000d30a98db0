"""gRPC server bootstrap: interceptors, health that follows dependencies, reflection, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import psycopg
import psycopg_pool
import redis.exceptions
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from redis.asyncio import Redis

from services.common import metrics
from services.common.config import (
    DOCUMENT_MAX_BYTES,
    CommonConfig,
    grpc_message_limit,
    message_options,
)
from services.common.context import REQUEST_ID_METADATA, clean_request_id, request_id_var
from services.common.db import DB_ERRORS, Migration, create_pool, migrate
from services.common.errors import REASON_KEY, DomainError
from services.common.grpcerrors import status_of, trailers_of
from services.common.identity import SERVICE_TOKEN_METADATA, credential_refusal
from services.common.keyspace import KeySpace
from services.common.peers import Peer, open_channel
from services.common.redisutil import REDIS_ERRORS, create_redis, stop_if_cancelled

log = logging.getLogger(__name__)

Pool = psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[dict[str, Any]]]



def _split_method(full: str) -> tuple[str, str]:
    # "/tandem.auth.v1.AuthService/GetUser" -> ("tandem.auth.v1.AuthService", "GetUser")
    _, service, method = full.split("/", 2)
    return service, method


async def _abort_for(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> grpc.StatusCode:
    """Turn an exception into a status on the call; return the code used."""
    if isinstance(exc, DomainError):
        trailers = trailers_of(exc)
        if trailers:
            context.set_trailing_metadata(trailers)
        code, message = status_of(exc), exc.message
    elif isinstance(exc, DB_ERRORS):
        log.warning("database unavailable: %s", type(exc).__name__)
        context.set_trailing_metadata(((REASON_KEY, "database_unavailable"),))
        code, message = grpc.StatusCode.UNAVAILABLE, "database unavailable, try again shortly"
    elif isinstance(exc, redis.exceptions.RedisError):
        # Only redis-py's own errors: an RPC's OSError or TimeoutError may come from
        # anywhere, and naming Redis for it would mislead whoever reads the 503.
        log.warning("redis unavailable: %s", type(exc).__name__)
        context.set_trailing_metadata(((REASON_KEY, "redis_unavailable"),))
        code, message = grpc.StatusCode.UNAVAILABLE, "cache unavailable, try again shortly"
    else:
        log.error("unhandled error in RPC", exc_info=exc)
        code, message = grpc.StatusCode.INTERNAL, "internal error"
    await context.abort(code, message)


HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Binds the request id, records RED metrics and maps domain errors, for every RPC.

    With a `service_token`, it also refuses (UNAUTHENTICATED) every RPC that does not carry
    that credential in `x-tandem-service-token`, except those of `open_services` (the
    standard health service, which probes call, and reflection where it is served).
    """

    def __init__(self, service_token: str | None = None,
                 open_services: frozenset[str] = frozenset({HEALTH_SERVICE})) -> None:
        self._token = service_token.encode() if service_token is not None else None
        self._open = open_services

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        service, method = _split_method(handler_call_details.method)
        request_id = None
        presented: str | bytes | None = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == REQUEST_ID_METADATA:
                request_id = value if isinstance(value, str) else value.decode()
            elif key == SERVICE_TOKEN_METADATA:
                presented = value
        refusal = (credential_refusal(presented, self._token)
                   if self._token is not None and service not in self._open else None)
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                request_id_var.set(clean_request_id(request_id))
                start = time.perf_counter()
                code = grpc.StatusCode.OK
                try:
                    if refusal is not None:
                        await context.abort(grpc.StatusCode.UNAUTHENTICATED, refusal)
                    return await inner(request, context)
                except grpc.aio.AbortError:
                    code = context.code() or grpc.StatusCode.UNKNOWN
                    raise
                except Exception as exc:
                    code = await _abort_for(context, exc)
                finally:
                    _observe(service, method, code, start)

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                request_id_var.set(clean_request_id(request_id))
                start = time.perf_counter()
                code = grpc.StatusCode.OK
                try:
                    if refusal is not None:
                        await context.abort(grpc.StatusCode.UNAUTHENTICATED, refusal)
                    async for item in inner_stream(request, context):
                        yield item
                except grpc.aio.AbortError:
                    code = context.code() or grpc.StatusCode.UNKNOWN
                    raise
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                except Exception as exc:
                    code = await _abort_for(context, exc)
                finally:
                    _observe(service, method, code, start)

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if refusal is not None:
            # No client-streaming RPC of ours exists; one added later is refused all the same.
            async def refuse(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, refusal)

            make = (grpc.stream_unary_rpc_method_handler if handler.stream_unary is not None
                    else grpc.stream_stream_rpc_method_handler)
            return make(refuse, request_deserializer=handler.request_deserializer,
                        response_serializer=handler.response_serializer)
        return handler


def _observe(service: str, method: str, code: grpc.StatusCode, start: float) -> None:
    metrics.GRPC_SERVER_HANDLED.labels(service, method, code.name).inc()
    metrics.GRPC_SERVER_SECONDS.labels(service, method).observe(time.perf_counter() - start)


@dataclass
class Resources:
    """What a service's domain code gets from the kit."""

    name: str
    config: CommonConfig
    pool: Pool
    redis: Redis
    keys: KeySpace
    health: HealthMonitor | None = None
    # Closed in reverse order at shutdown (HTTP clients, channels, consumers).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Extra readiness checks run after the schema is ready: None when fine, else a reason.
    ready_checks: dict[str, Callable[[], Awaitable[str | None]]] = field(default_factory=dict)
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    def channel(self, service: str) -> grpc.aio.Channel:
        """One shared channel to another service (created on first use, closed at shutdown)."""
        existing = self._channels.get(service)
        if existing is not None:
            return existing
        channel = open_channel(self.config, service)
        self._channels[service] = channel

        async def close() -> None:
            await channel.close(grace=None)

        self.closers.append(close)
        return channel

    def peer(self, service: str, deadline: float | None = None) -> Peer:
        """A caller of `service` on the shared channel (deadline: GRPC_DEADLINE_SECONDS)."""
        return Peer(service, self.channel(service), self.config.service_token,
                    self.config.grpc_deadline if deadline is None else deadline)


Register = Callable[[grpc.aio.Server, Resources], Awaitable[Sequence[str]]]
Background = Callable[[Resources], Awaitable[None]]


@dataclass
class ServiceSpec:
    """How to build one service: its name, schema, migrations and servicers."""

    name: str
    schema: str
    migrations: Callable[[], list[Migration]]
    grpc_port: int
    metrics_port: int
    register: Register
    background: Sequence[Background] = field(default_factory=tuple)


class HealthMonitor:
    """Checks PostgreSQL and Redis on an interval and drives grpc.health.v1 status.

    The service is SERVING only when both answer and its migrations are applied;
    it flips within one interval plus one check timeout of an outage.
    """

    CHECK_TIMEOUT = 1.0
    # How long a call waits for a connection while PostgreSQL is known to be down: long
    # enough for a connection the pool is about to make, short enough to fail fast (503).
    DOWN_POOL_TIMEOUT = 0.5

    def __init__(self, spec: ServiceSpec, res: Resources, servicer: health.aio.HealthServicer,
                 service_names: Sequence[str]) -> None:
        self._spec = spec
        self._res = res
        self._pool_timeout = res.pool.timeout
        self._servicer = servicer
        self._names = ("", *service_names)
        self.migrated = False
        self.serving: bool | None = None
        self.reasons: dict[str, str] = {}
        self._first_check = asyncio.Event()

    async def wait_first_check(self) -> None:
        await self._first_check.wait()

    async def run(self) -> None:
        while True:
            try:
                await self.check_once()
            except Exception:
                log.exception("health check failed unexpectedly")
            self._first_check.set()
            await asyncio.sleep(self._res.config.health_interval)

    async def check_once(self) -> None:
        db_reason, redis_reason = await asyncio.gather(self._check_db(), self._check_redis())
        reasons: dict[str, str] = {}
        if db_reason:
            reasons["postgres"] = db_reason
        if redis_reason:
            reasons["redis"] = redis_reason
        metrics.DEPENDENCY_UP.labels("postgres").set(0 if db_reason else 1)
        metrics.DEPENDENCY_UP.labels("redis").set(0 if redis_reason else 1)
        # Without this every call would queue for the pool's full timeout during an outage.
        self._res.pool.timeout = self.DOWN_POOL_TIMEOUT if db_reason else self._pool_timeout
        if not db_reason and not self.migrated:
            try:
                applied = await migrate(self._res.config.database_url, self._spec.schema,
                                        self._spec.migrations())
                self.migrated = True
                log.info("schema ready", extra={"schema": self._spec.schema, "applied": applied})
            except Exception as exc:
                reasons["migrations"] = f"{type(exc).__name__}: {exc}"[:200]
                log.exception("migrations failed")
        if not reasons:
            for name, check in self._res.ready_checks.items():
                try:
                    problem = await check()
                except Exception as exc:
                    problem = _reason(exc)
                if problem:
                    reasons[name] = problem
        serving = not reasons
        self.reasons = reasons
        if serving != self.serving:
            status = (health_pb2.HealthCheckResponse.SERVING if serving
                      else health_pb2.HealthCheckResponse.NOT_SERVING)
            for name in self._names:
                await self._servicer.set(name, status)
            if self.serving is not None or not serving:
                log.warning("health changed", extra={"serving": serving, "reasons": reasons})
            self.serving = serving

    async def _check_db(self) -> str | None:
        pool = self._res.pool
        for attempt in range(2):
            try:
                async with asyncio.timeout(self.CHECK_TIMEOUT):
                    async with pool.connection(timeout=self.CHECK_TIMEOUT) as conn:
                        await conn.execute("SELECT 1")
                return None
            except (TimeoutError, *DB_ERRORS) as exc:
                if attempt == 0:
                    # After a server restart the idle connections are dead; drop
                    # them all at once rather than failing one check per connection.
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(self.CHECK_TIMEOUT):
                            await pool.check()
                    continue
                return await self._db_failure_reason(exc)
        return "unreachable"

    async def _db_failure_reason(self, exc: BaseException) -> str:
        # A pool timeout says nothing useful; one direct attempt names the cause
        # (refused, auth failed, database missing) for /ready and the logs.
        if isinstance(exc, TimeoutError | psycopg_pool.PoolTimeout):
            try:
                async with asyncio.timeout(self.CHECK_TIMEOUT):
                    conn = await psycopg.AsyncConnection.connect(
                        self._res.config.database_url, connect_timeout=1)
                    await conn.close()
            except (TimeoutError, psycopg.Error) as direct:
                return _reason(direct)
        return _reason(exc)

    async def _check_redis(self) -> str | None:
        try:
            async with asyncio.timeout(self.CHECK_TIMEOUT):
                await self._res.redis.ping()
            return None
        except REDIS_ERRORS as exc:
            return _reason(exc)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Every service's gRPC server options."""
    return [("grpc.so_reuseport", 0), ("grpc.keepalive_time_ms", 30_000),
            *message_options(max_message_bytes)]


# The options at the default document limit (bench/grpcfloor.py measures a bare server with them).
SERVER_OPTIONS: list[tuple[str, int]] = server_options(grpc_message_limit(DOCUMENT_MAX_BYTES))


def _open_services(config: CommonConfig) -> frozenset[str]:
    """What answers without the service credential: health always, reflection in development."""
    return frozenset({HEALTH_SERVICE, *((reflection.SERVICE_NAME,) if config.development else ())})


class ServiceRuntime:
    """A running service: start on a port (0 picks one), stop gracefully."""

    def __init__(self, spec: ServiceSpec, config: CommonConfig) -> None:
        self.spec = spec
        self.config = config
        self.grpc_port = 0
        self.metrics_port = 0
        self.health: HealthMonitor | None = None
        self._server: grpc.aio.Server | None = None
        self._health_servicer: health.aio.HealthServicer | None = None
        self._metrics_server: metrics.MetricsServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._res: Resources | None = None

    @property
    def resources(self) -> Resources:
        assert self._res is not None, "start() first"  # noqa: S101 - programming error guard
        return self._res

    async def start(self) -> None:
        cfg, spec = self.config, self.spec
        pool = create_pool(cfg.database_url, spec.schema, cfg.db_pool_min, cfg.db_pool_max, spec.name)
        # open(wait=False): a database that is down now must not stop the process.
        await pool.open(wait=False)
        metrics.track_pool(spec.name, pool.get_stats)
        res = Resources(spec.name, cfg, pool, create_redis(cfg.redis_url),
                        KeySpace(cfg.redis_prefix, spec.name))
        self._res = res
        server = grpc.aio.server(interceptors=[ServerInterceptor(cfg.service_token,
                                                                 _open_services(cfg))],
                                 options=server_options(cfg.grpc_max_message_bytes))
        names = list(await spec.register(server, res))
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        for name in ("", *names):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        # "liveness" answers SERVING while the process runs (Kubernetes liveness probes ask
        # for it), so an outage of PostgreSQL makes pods unready but never restarts them.
        await health_servicer.set("liveness", health_pb2.HealthCheckResponse.SERVING)
        if cfg.development:
            # Reflection lists every RPC and message: a map for whoever reaches the port,
            # so only in development mode (grpcurl against `make run`).
            reflection.enable_server_reflection((*names, HEALTH_SERVICE, reflection.SERVICE_NAME),
                                                server)
        self.grpc_port = server.add_insecure_port(f"{cfg.bind_host}:{spec.grpc_port}")
        await server.start()
        self._server, self._health_servicer = server, health_servicer
        metrics_server = metrics.MetricsServer()
        self.metrics_port = await metrics_server.start(cfg.bind_host, spec.metrics_port)
        self._metrics_server = metrics_server
        self.health = HealthMonitor(spec, res, health_servicer, names)
        res.health = self.health
        self._tasks.append(asyncio.create_task(self.health.run(), name=f"{spec.name}-health"))
        await self.health.wait_first_check()
        for job in spec.background:
            self._tasks.append(asyncio.create_task(_supervise(job, res), name=f"{spec.name}-bg"))
        log.info("serving", extra={"service": spec.name, "grpc_port": self.grpc_port,
                                   "metrics_port": self.metrics_port})

    async def stop(self, grace: float | None = None) -> None:
        grace = self.config.shutdown_grace if grace is None else grace
        if self._health_servicer is not None:
            # Tell load balancers first, then let in-flight calls finish.
            await self._health_servicer.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a loop that swallowed its cancel (Python 3.11's wait_for can) is asked
            # once more, then left behind with an error in the log, so a stop never hangs.
            _, pending = await asyncio.wait(self._tasks, timeout=5.0)
            for task in pending:
                task.cancel()
            if pending:
                _, pending = await asyncio.wait(pending, timeout=1.0)
            if pending:
                log.error("background tasks did not stop: %s",
                          ", ".join(sorted(task.get_name() for task in pending)))
        for task in self._tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: it was logged where it happened
        if self._metrics_server is not None:
            await self._metrics_server.close()
        if self._res is not None:
            for closer in reversed(self._res.closers):
                with contextlib.suppress(Exception):
                    await closer()
            await self._res.pool.close()
            await self._res.redis.aclose()
        log.info("stopped", extra={"service": self.spec.name})

    async def run_until_signal(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
            log.info("shutting down", extra={"service": self.spec.name})
        finally:
            await self.stop()


async def _supervise(job: Background, res: Resources) -> None:
    """Run a background loop forever, restarting it after unexpected failures."""
    delay = 0.5
    while True:
        try:
            await job(res)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            # A library can turn the cancellation of a stopping service into an error of its
            # own (redis-py does, mid-read): that is a stop, not a failure to restart after.
            stop_if_cancelled()
            log.exception("background task failed; restarting")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
