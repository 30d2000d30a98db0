"""Configuration: typed readers and one-line errors naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts.platform import ROOT, python_env
from services.common.config import CommonConfig, ConfigError, Env


def test_defaults_are_valid_without_any_variable() -> None:
    config = CommonConfig.from_env(Env({}))
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
