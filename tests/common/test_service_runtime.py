"""The kit's gRPC runtime on real PostgreSQL and Redis: health, reflection, metrics, migrations."""

from __future__ import annotations

import asyncio

import grpc
import httpx
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from services.common.db import Migration, migrate
from services.common.grpcserver import Resources, _supervise
from tests.conftest import RuntimeFactory

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _health(port: int, service: str = "") -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2)
        return int(reply.status)


@pytest.mark.parametrize("name", ["auth", "sessions", "review", "ai"])
async def test_service_starts_migrated_and_serving(service_runtime: RuntimeFactory,
                                                   database_url: str, name: str) -> None:
    async with service_runtime(name) as runtime:
        assert runtime.grpc_port > 0
        assert await _health(runtime.grpc_port) == SERVING
        full_name = {"auth": "tandem.auth.v1.AuthService",
                     "sessions": "tandem.sessions.v1.SessionsService",
                     "review": "tandem.review.v1.ReviewService",
                     "ai": "tandem.ai.v1.AiService"}[name]
        assert await _health(runtime.grpc_port, full_name) == SERVING
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = 'schema_migrations'", (name,)).fetchone()
        assert row is not None
        assert row[0] == 1


async def test_reflection_lists_the_service_and_health(service_runtime: RuntimeFactory) -> None:
    async with service_runtime("auth") as runtime, grpc.aio.insecure_channel(
            f"127.0.0.1:{runtime.grpc_port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def requests():  # type: ignore[no-untyped-def]
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        names: set[str] = set()
        async for reply in stub.ServerReflectionInfo(requests()):
            names |= {s.name for s in reply.list_services_response.service}
        assert {"tandem.auth.v1.AuthService", "grpc.health.v1.Health"} <= names


async def test_metrics_port_exposes_grpc_red_metrics(service_runtime: RuntimeFactory) -> None:
    async with service_runtime("sessions") as runtime:
        await _health(runtime.grpc_port)
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"http://127.0.0.1:{runtime.metrics_port}/metrics")
        assert reply.status_code == 200
        families = {f.name: f for f in text_string_to_metric_families(reply.text)}
        handled = families["tandem_grpc_server_handled"]
        assert any(s.labels["method"] == "Check" and s.labels["code"] == "OK" for s in handled.samples)
        assert "tandem_grpc_server_handling_seconds" in families
        pool = families["tandem_db_pool_connections"]
        assert any(s.labels["pool"] == "sessions" for s in pool.samples)
        up = families["tandem_dependency_up"]
        values = {s.labels["dependency"]: s.value for s in up.samples}
        assert values["postgres"] == 1.0
        assert values["redis"] == 1.0


async def test_graceful_stop_reports_not_serving_then_closes(service_runtime: RuntimeFactory) -> None:
    async with service_runtime("ai") as runtime:
        port = runtime.grpc_port
        assert await _health(port) == SERVING
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _health(port)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_concurrent_migrations_apply_each_file_once(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.migration_probe (n int)")
    # Each migration appends a row: if two runners both applied it, there would be duplicates.
    migrations = [Migration(1, "001_probe.sql", "INSERT INTO public.migration_probe VALUES (1);"),
                  Migration(2, "002_probe.sql",
                            "SELECT pg_sleep(0.2); INSERT INTO public.migration_probe VALUES (2);")]
    results = await asyncio.gather(*(migrate(database_url, "lockprobe", migrations) for _ in range(4)))
    applied = [name for names in results for name in names]
    assert sorted(applied) == ["001_probe.sql", "002_probe.sql"]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT n FROM public.migration_probe ORDER BY n").fetchall()
    assert rows == [(1,), (2,)]


async def test_service_started_with_database_down_serves_not_serving_then_recovers(
        service_runtime: RuntimeFactory, database_url: str, pg_server_url: str) -> None:
    # A database that does not exist yet stands in for one that is down: the
    # process must start, report NOT_SERVING with a reason, and recover by itself.
    missing = database_url + "_late"
    async with service_runtime("review", DATABASE_URL=missing) as runtime:
        assert await _health(runtime.grpc_port) == NOT_SERVING
        assert runtime.health is not None
        assert "does not exist" in runtime.health.reasons.get("postgres", "")
        dbname = missing.rsplit("/", 1)[1]
        admin = pg_server_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        try:
            async with asyncio.timeout(15):
                # Polling a remote status under a deadline; there is no event to wait on.
                while await _health(runtime.grpc_port) != SERVING:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
        finally:
            await runtime.stop(grace=0.1)
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


async def test_a_background_job_whose_cancellation_a_library_turns_into_an_error_stops() -> None:
    # redis-py can turn a cancel that lands mid-read into its own TimeoutError: the supervisor
    # must take that for the stop it is, or a stopping service restarts the job forever.
    started: list[int] = []
    running = asyncio.Event()

    async def job(res: Resources) -> None:
        started.append(1)
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise TimeoutError("converted by a library") from None

    task = asyncio.create_task(_supervise(job, None))  # type: ignore[arg-type]
    await running.wait()
    task.cancel()
    await asyncio.wait({task}, timeout=10)  # does not cancel it again, unlike wait_for
    try:
        assert task.cancelled(), "the supervisor restarted a job that was being stopped"
        assert started == [1]
    finally:
        task.cancel()
