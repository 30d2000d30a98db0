"""Configuration from environment variables, validated at start-up with one-line errors."""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A variable is missing or malformed; the message names it and what is expected."""

    def __init__(self, name: str, expected: str, got: str | None = None) -> None:
        self.name = name
        detail = f"{name}: expected {expected}"
        if got is not None:
            # Values can be secrets: show only their length, never the text.
            detail += f" (got a value of {len(got)} characters)" if _secret(name) else f" (got {got!r})"
        super().__init__(detail)


class MissingSecret(ConfigError):
    """A secret is unset (or still the published local value) outside development mode."""

    def __init__(self, name: str, how: str, *, published: bool = False) -> None:
        self.name = name
        problem = ("is the published local default, which only development mode accepts"
                   if published else "is not set, and it has no default outside development")
        Exception.__init__(self, f"{name} {problem}: set it to {how}, or set "
                                 f"{TANDEM_ENV}={DEVELOPMENT} on a laptop to use the local one")


# Development mode: `make run` and the test fixtures set it; anything else (or unset) is
# production, where no secret has a usable default.
TANDEM_ENV = "TANDEM_ENV"
DEVELOPMENT = "development"
LOCAL_SERVICE_TOKEN = "tandem-local-service-token"  # noqa: S105 - the published local-only value
RANDOM_VALUE_HINT = ("a long random value (e.g. the output of "
                     "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)")


def _secret(name: str) -> bool:
    return any(word in name for word in ("SECRET", "TOKEN", "KEY", "PASSWORD"))


class Env:
    """Typed readers over a mapping of environment variables."""

    def __init__(self, environ: Mapping[str, builtins.str] | None = None) -> None:
        self._env = dict(os.environ if environ is None else environ)

    def raw(self, name: builtins.str) -> builtins.str | None:
        value = self._env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def str(self, name: builtins.str, default: builtins.str | None = None) -> builtins.str:
        value = self.raw(name)
        if value is None:
            if default is None:
                raise ConfigError(name, "a non-empty value (it is required)")
            return default
        return value

    @property
    def development(self) -> builtins.bool:
        """True only for TANDEM_ENV=development (exactly); unset or anything else is production."""
        return self.raw("TANDEM_ENV") == DEVELOPMENT

    def secret(self, name: builtins.str, local_default: builtins.str,
               how: builtins.str = RANDOM_VALUE_HINT) -> builtins.str:
        """A secret: required outside development, where its published local value is refused
        too; in development mode `local_default` stands in when it is unset."""
        value = self.raw(name)
        if self.development:
            return local_default if value is None else value
        if value is None:
            raise MissingSecret(name, how)
        if value == local_default:
            raise MissingSecret(name, how, published=True)
        return value

    def optional_str(self, name: builtins.str) -> builtins.str | None:
        return self.raw(name)

    def int(self, name: builtins.str, default: builtins.int, *, minimum: builtins.int | None = None,
            maximum: builtins.int | None = None) -> builtins.int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(name, "an integer", value) from None
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            raise ConfigError(name, f"an integer between {minimum} and {maximum}", value)
        return number

    def port(self, name: builtins.str, default: builtins.int) -> builtins.int:
        # 0 asks the OS for a free port: tests run many processes side by side.
        return self.int(name, default, minimum=0, maximum=65535)

    def float(self, name: builtins.str, default: builtins.float, *, minimum: builtins.float = 0.0) -> builtins.float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(name, "a number", value) from None
        if number < minimum:
            raise ConfigError(name, f"a number of at least {minimum}", value)
        return number

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, "true or false", value)

    def choice(self, name: builtins.str, default: builtins.str, choices: tuple[builtins.str, ...]) -> builtins.str:
        value = self.str(name, default).lower()
        if value not in choices:
            raise ConfigError(name, "one of " + ", ".join(choices), value)
        return value

    def url(self, name: builtins.str, default: builtins.str | None, schemes: tuple[builtins.str, ...]) -> builtins.str:
        value = self.str(name, default)
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            shown = parts._replace(netloc=parts.hostname or "").geturl() if parts.password else value
            raise ConfigError(name, "a URL starting with " + " or ".join(f"{s}://" for s in schemes),
                              shown)
        return value.rstrip("/") if parts.path in ("", "/") else value

    def address(self, name: builtins.str, default: builtins.str) -> builtins.str:
        value = self.str(name, default)
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(name, "HOST:PORT", value)
        return value

    def csv(self, name: builtins.str, default: tuple[builtins.str, ...] = ()) -> tuple[builtins.str, ...]:
        value = self.raw(name)
        if value is None:
            return default
        return tuple(item.strip() for item in value.split(",") if item.strip())


# A session's shared document: bytes of its encoded Yjs state (docs/reliability.md). Source
# files are rarely over a few hundred KiB; 4 MiB leaves room for generated code and history.
DOCUMENT_MAX_BYTES = 4 * 1024 * 1024
# Floor of every gRPC message limit: what the services answered before documents had a limit.
GRPC_MESSAGE_FLOOR = 16 * 1024 * 1024


def document_max_bytes(env: Env) -> int:
    """DOCUMENT_MAX_BYTES, read the same way by the sessions service and the gateway."""
    return env.int("DOCUMENT_MAX_BYTES", DOCUMENT_MAX_BYTES, minimum=1024,
                   maximum=256 * 1024 * 1024)


def grpc_message_limit(document_bytes: int) -> int:
    """The send and receive limit of every gRPC server and channel, given the document limit.

    The largest message is a SyncDocument answer for a fresh client: the whole state as an
    update plus the state vector, each at most the state's size; the rest is framing. Twice
    the limit plus 1 MiB also keeps a document stored under a higher limit readable after
    an operator lowers it.
    """
    return max(GRPC_MESSAGE_FLOOR, 2 * document_bytes + 1024 * 1024)


def message_options(max_bytes: int) -> list[tuple[str, int]]:
    """Send and receive limits for a gRPC server or channel (see grpc_message_limit).

    Both directions, on both ends: gRPC's own defaults (4 MiB received, sends unlimited)
    would otherwise fail a call whose message fits the document limit.
    """
    return [("grpc.max_receive_message_length", max_bytes),
            ("grpc.max_send_message_length", max_bytes)]


@dataclass(frozen=True, slots=True)
class CommonConfig:
    """Settings every process shares."""

    database_url: str
    redis_url: str
    redis_prefix: str
    log_level: str
    log_format: str
    bind_host: str
    health_interval: float
    shutdown_grace: float
    db_pool_min: int
    db_pool_max: int
    grpc_deadline: float
    auth_addr: str
    sessions_addr: str
    review_addr: str
    ai_addr: str
    jwt_issuer: str
    jwt_audience: str
    service_token: str
    # TANDEM_ENV=development: local defaults for secrets, gRPC reflection on.
    development: bool
    document_max_bytes: int

    @property
    def grpc_max_message_bytes(self) -> int:
        return grpc_message_limit(self.document_max_bytes)

    @classmethod
    def from_env(cls, env: Env) -> CommonConfig:
        pool_min = env.int("DB_POOL_MIN", 1, minimum=0, maximum=100)
        return cls(
            database_url=env.url(
                "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/tandem",
                ("postgresql", "postgres"),
            ),
            redis_url=env.url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "unix")),
            redis_prefix=env.str("REDIS_PREFIX", "tandem:"),
            log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            log_format=env.choice("LOG_FORMAT", "json", ("json", "console")),
            bind_host=env.str("BIND_HOST", "127.0.0.1"),
            health_interval=env.float("HEALTH_INTERVAL_SECONDS", 1.0, minimum=0.1),
            shutdown_grace=env.float("SHUTDOWN_GRACE_SECONDS", 10.0),
            db_pool_min=pool_min,
            db_pool_max=env.int("DB_POOL_MAX", 10, minimum=max(1, pool_min), maximum=500),
            grpc_deadline=env.float("GRPC_DEADLINE_SECONDS", 5.0, minimum=0.05),
            auth_addr=env.address("AUTH_ADDR", "127.0.0.1:50051"),
            sessions_addr=env.address("SESSIONS_ADDR", "127.0.0.1:50052"),
            review_addr=env.address("REVIEW_ADDR", "127.0.0.1:50053"),
            ai_addr=env.address("AI_ADDR", "127.0.0.1:50054"),
            jwt_issuer=env.str("JWT_ISSUER", "tandem-auth"),
            jwt_audience=env.str("JWT_AUDIENCE", "tandem"),
            # The credential every process presents on every RPC to a service: the same
            # value everywhere (deploy/ takes it from a Secret; make run generates one).
            service_token=env.secret("SERVICE_TOKEN", LOCAL_SERVICE_TOKEN,
                                     RANDOM_VALUE_HINT + ", the same in every process"),
            development=env.development,
            document_max_bytes=document_max_bytes(env),
        )


def fail(error: ConfigError, process: str) -> NoReturn:
    """Stop the process with one line naming the bad variable."""
    print(f"{process}: configuration error: {error}", file=sys.stderr)
    raise SystemExit(2)
