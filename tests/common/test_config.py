"""Configuration: typed readers and one-line errors naming the variable."""

from __future__ import annotations

import base64
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from scripts.platform import ROOT, python_env
from services.auth.config import PUBLISHED_DEV_KEY, AuthConfig
from services.common.config import CommonConfig, ConfigError, Env
from services.review.config import ReviewConfig


def test_defaults_are_valid_without_any_variable() -> None:
    # Only in development: outside it SERVICE_TOKEN has no default (below).
    config = CommonConfig.from_env(Env({"TANDEM_ENV": "development"}))
    assert config.database_url.startswith("postgresql://")
    assert config.auth_addr == "127.0.0.1:50051"
    assert config.db_pool_min <= config.db_pool_max


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DATABASE_URL", "mysql://db", "DATABASE_URL: expected a URL starting with postgresql://"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL: expected a URL starting with redis://"),
        ("DB_POOL_MAX", "many", "DB_POOL_MAX: expected an integer"),
        ("HEALTH_INTERVAL_SECONDS", "-1", "HEALTH_INTERVAL_SECONDS: expected a number of at least"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL: expected one of debug, info, warning, error"),
        ("AUTH_ADDR", "nohost", "AUTH_ADDR: expected HOST:PORT"),
    ],
)
def test_malformed_value_names_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        CommonConfig.from_env(Env({name: value}))
    assert str(info.value).startswith(expected)


def test_secret_values_are_not_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        Env({"SERVICE_TOKEN_TTL": "s3cr3t-value"}).int("SERVICE_TOKEN_TTL", 1)
    assert "s3cr3t" not in str(info.value)
    assert "12 characters" in str(info.value)


def test_password_in_url_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        Env({"DATABASE_URL": "mysql://user:hunter2@db/x"}).url("DATABASE_URL", None, ("postgresql",))
    assert "hunter2" not in str(info.value)


def test_required_variable_missing() -> None:
    with pytest.raises(ConfigError, match="REQUIRED_THING: expected a non-empty value"):
        Env({"REQUIRED_THING": "  "}).str("REQUIRED_THING")


def test_bool_and_csv_readers() -> None:
    env = Env({"A": "yes", "B": "off", "C": "a, b,,c"})
    assert env.bool("A", False) is True
    assert env.bool("B", True) is False
    assert env.csv("C") == ("a", "b", "c")
    with pytest.raises(ConfigError):
        Env({"A": "maybe"}).bool("A", False)


@pytest.mark.parametrize("module", ["services.auth", "gateway"])
def test_process_exits_with_one_line_on_bad_config(module: str) -> None:
    env = python_env() | {"DATABASE_URL": "nope://x"}
    result = subprocess.run([sys.executable, "-m", module], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL: expected a URL starting with postgresql://" in lines[0]


# --------------------------------------------------------------------------- secrets

_KEY = "7cXu5YdQz8yT4vVnqkR9cH1o0mQmJb5q3VtQ0y2Lw8c="
# (variable, how to read it, the published local default used in development)
_SECRETS: list[tuple[str, Callable[[Env], str], str]] = [
    ("SERVICE_TOKEN", lambda env: CommonConfig.from_env(env).service_token,
     "tandem-local-service-token"),
    ("GITHUB_WEBHOOK_SECRET", lambda env: ReviewConfig.from_env(env).webhook_secret,
     "tandem-local-webhook-secret"),
    ("GITHUB_CLIENT_SECRET", lambda env: AuthConfig.from_env(env).github_client_secret,
     "tandem-local-secret"),
]
_ALL_SET = {"SERVICE_TOKEN": "s" * 40, "GITHUB_WEBHOOK_SECRET": "w" * 40,
            "GITHUB_CLIENT_SECRET": "c" * 40, "GITHUB_CLIENT_ID": "Iv1.abc",
            "TOKEN_ENCRYPTION_KEY": _KEY}


@pytest.mark.parametrize(("name", "read", "local"), _SECRETS, ids=[s[0] for s in _SECRETS])
@pytest.mark.parametrize("tandem_env", [None, "production", "Development", ""])
def test_a_secret_has_no_default_outside_development(
        name: str, read: Callable[[Env], str], local: str, tandem_env: str | None) -> None:
    values = {k: v for k, v in _ALL_SET.items() if k != name}
    if tandem_env is not None:
        values["TANDEM_ENV"] = tandem_env
    with pytest.raises(ConfigError) as info:
        read(Env(values))
    message = str(info.value)
    assert info.value.name == name
    assert message.startswith(f"{name} is not set")
    assert "TANDEM_ENV=development" in message
    assert "\n" not in message


@pytest.mark.parametrize(("name", "read", "local"), _SECRETS, ids=[s[0] for s in _SECRETS])
def test_development_mode_keeps_the_local_default(
        name: str, read: Callable[[Env], str], local: str) -> None:
    values = {k: v for k, v in _ALL_SET.items() if k != name}
    assert read(Env({**values, "TANDEM_ENV": "development"})) == local
    # A value of one's own wins in both modes.
    assert read(Env({**values, name: "mine-" + "x" * 30})) == "mine-" + "x" * 30


@pytest.mark.parametrize(("name", "read", "local"), _SECRETS, ids=[s[0] for s in _SECRETS])
def test_the_published_local_default_is_refused_outside_development(
        name: str, read: Callable[[Env], str], local: str) -> None:
    with pytest.raises(ConfigError) as info:
        read(Env({**_ALL_SET, name: local}))
    assert str(info.value).startswith(f"{name} is the published local default")
    assert local not in str(info.value)
    assert read(Env({**_ALL_SET, name: local, "TANDEM_ENV": "development"})) == local


def test_github_client_id_is_required_outside_development() -> None:
    values = {k: v for k, v in _ALL_SET.items() if k != "GITHUB_CLIENT_ID"}
    with pytest.raises(ConfigError, match="GITHUB_CLIENT_ID"):
        AuthConfig.from_env(Env(values))
    dev = AuthConfig.from_env(Env({**values, "TANDEM_ENV": "development"}))
    assert dev.github_client_id == "tandem-local"


def _production_env(base_env: dict[str, str], *without: str) -> dict[str, str]:
    env = {k: v for k, v in base_env.items() if k != "TANDEM_ENV"}
    env.update({k: v for k, v in _ALL_SET.items() if k != "SERVICE_TOKEN"})
    for svc in ("AUTH", "SESSIONS", "REVIEW", "AI"):
        env[f"{svc}_GRPC_PORT"] = env[f"{svc}_METRICS_PORT"] = "0"
    env["GATEWAY_PORT"] = "0"
    for name in without:
        env.pop(name, None)
    return env


@pytest.mark.parametrize(("module", "missing"), [
    ("services.auth", "SERVICE_TOKEN"),
    ("services.sessions", "SERVICE_TOKEN"),
    ("services.review", "SERVICE_TOKEN"),
    ("services.ai", "SERVICE_TOKEN"),
    ("gateway", "SERVICE_TOKEN"),
    ("services.review", "GITHUB_WEBHOOK_SECRET"),
    ("services.auth", "GITHUB_CLIENT_SECRET"),
])
def test_a_process_without_a_secret_outside_development_stops_with_one_line(
        base_env: dict[str, str], module: str, missing: str) -> None:
    env = _production_env(base_env, missing)
    if missing != "SERVICE_TOKEN":
        env["SERVICE_TOKEN"] = base_env["SERVICE_TOKEN"]
    result = subprocess.run([sys.executable, "-m", module], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    process = module.removeprefix("services.")
    assert lines[0].startswith(f"{process}: configuration error: {missing} is not set")
    assert "TANDEM_ENV=development" in lines[0]
    assert "Traceback" not in result.stderr


def _serves(env: dict[str, str], module: str, timeout: float = 30.0) -> str:
    """Start `module`, return its log once it says it is serving, then stop it."""
    proc = subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = b""
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + timeout
            while b'"serving"' not in output:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{module} did not serve in {timeout:.0f}s:\n{output.decode()}"
                if sel.select(remaining):
                    chunk = os.read(proc.stdout.fileno(), 65536)
                    assert chunk, f"{module} exited {proc.wait()}:\n{output.decode()}"
                    output += chunk
    finally:
        proc.terminate()
        proc.wait(15)
    return output.decode()


def test_development_mode_starts_without_secrets(base_env: dict[str, str]) -> None:
    env = _production_env(base_env, "SERVICE_TOKEN")
    env["TANDEM_ENV"] = "development"
    _serves(env, "services.sessions")


def test_production_mode_starts_with_its_secrets(base_env: dict[str, str]) -> None:
    env = _production_env(base_env)
    env["SERVICE_TOKEN"] = "p" * 43
    log = _serves(env, "services.sessions")
    assert "p" * 43 not in log


def test_the_published_dev_encryption_key_is_refused_outside_development() -> None:
    """deploy/compose.dev.env's key, copied into a production environment, must not start."""
    published = base64.b64encode(PUBLISHED_DEV_KEY).decode()
    assert f"TOKEN_ENCRYPTION_KEY={published}" in (ROOT / "deploy" / "compose.dev.env").read_text()
    with pytest.raises(ConfigError) as info:
        AuthConfig.from_env(Env({**_ALL_SET, "TOKEN_ENCRYPTION_KEY": published}))
    assert str(info.value).startswith("TOKEN_ENCRYPTION_KEY is the published local default")
    assert published not in str(info.value)
    dev = AuthConfig.from_env(Env({**_ALL_SET, "TOKEN_ENCRYPTION_KEY": published,
                                     "TANDEM_ENV": "development"}))
    assert dev.encryption_key == PUBLISHED_DEV_KEY
