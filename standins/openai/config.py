"""Configuration of the OpenAI stand-in, and reading it from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_API_KEY = "sk-tandem-local"
DEFAULT_MODEL = "tandem-review-1"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9901
DEFAULT_CONTEXT_LIMIT_TOKENS = 32_000
DEFAULT_CHUNK_CHARS = 24
DEFAULT_SLOW_MS = 3_000
MAX_SLOW_MS = 600_000


class ConfigError(ValueError):
    """An environment variable with a bad value; the message names the variable."""


@dataclass(frozen=True, slots=True)
class OpenAIStandinConfig:
    """What the stand-in accepts and how it answers."""

    api_key: str = DEFAULT_API_KEY
    model: str = DEFAULT_MODEL
    context_limit_tokens: int = DEFAULT_CONTEXT_LIMIT_TOKENS
    # Small on purpose: a finding line (~150 chars) then spans several chunks, which is
    # what exercises a client's incremental line parser.
    chunk_chars: int = DEFAULT_CHUNK_CHARS
    # Used by the "slow" fault when neither the control route nor the header sets a delay.
    slow_ms: int = DEFAULT_SLOW_MS
    # Request log entries kept for GET /_standin/requests; bounded for long `make run`s.
    request_log_size: int = 1_000

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("api_key must not be empty")
        if not self.model:
            raise ValueError("model must not be empty")
        for name in ("context_limit_tokens", "chunk_chars", "request_log_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0 <= self.slow_ms <= MAX_SLOW_MS:
            raise ValueError(f"slow_ms must be between 0 and {MAX_SLOW_MS}")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Where ``python -m standins.openai`` listens, and the app config."""

    host: str
    port: int
    app: OpenAIStandinConfig


def _int_var(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _str_var(env: Mapping[str, str], name: str, default: str) -> str:
    # Empty counts as unset: `.env` files and compose often carry `NAME=` placeholders.
    value = env.get(name, "").strip()
    if any(ch.isspace() for ch in value):
        raise ConfigError(f"{name} must not contain whitespace")
    return value or default


def settings_from_env(env: Mapping[str, str]) -> ServerSettings:
    """Read and validate every variable (empty means default); a bad one raises ConfigError."""
    host = _str_var(env, "OPENAI_STANDIN_HOST", DEFAULT_HOST)
    port = _int_var(env, "OPENAI_STANDIN_PORT", DEFAULT_PORT, 1, 65_535)
    api_key = _str_var(env, "OPENAI_API_KEY", DEFAULT_API_KEY)
    model = _str_var(env, "OPENAI_MODEL", DEFAULT_MODEL)
    context = _int_var(
        env, "OPENAI_STANDIN_CONTEXT_LIMIT_TOKENS", DEFAULT_CONTEXT_LIMIT_TOKENS, 1, 10_000_000
    )
    chunk = _int_var(env, "OPENAI_STANDIN_CHUNK_CHARS", DEFAULT_CHUNK_CHARS, 1, 1_000_000)
    slow_ms = _int_var(env, "OPENAI_STANDIN_SLOW_MS", DEFAULT_SLOW_MS, 0, MAX_SLOW_MS)
    return ServerSettings(
        host=host,
        port=port,
        app=OpenAIStandinConfig(
            api_key=api_key,
            model=model,
            context_limit_tokens=context,
            chunk_chars=chunk,
            slow_ms=slow_ms,
        ),
    )
