"""Configuration of the GitHub stand-in, from arguments or environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9900
# Tandem's OAuth app is registered with its site root as the callback URL: GitHub accepts
# a redirect_uri at or below it, so both the web app's /auth/callback and the API's
# /api/v1/auth/github/callback fit (docs/operations.md).
CALLBACK_PATH = "/"


class ConfigError(ValueError):
    """An environment variable holds a value the stand-in cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class StandinConfig:
    """Everything the stand-in needs; defaults match Tandem's local defaults."""

    client_id: str = "tandem-local"
    client_secret: str = "tandem-local-secret"  # noqa: S105 - a published local-only default
    # Where `synchronize` webhooks go; None disables delivery.
    webhook_url: str | None = None
    webhook_secret: str = "tandem-local-webhook-secret"  # noqa: S105 - local-only default
    code_ttl: float = 600.0
    # The stand-in's own base URL, used for every url/html_url field it renders.
    public_url: str = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    # The OAuth app's registered callback: used when the authorize request has
    # no redirect_uri, and a given redirect_uri must fit it (GitHub's rule).
    callback_url: str = f"http://127.0.0.1:8080{CALLBACK_PATH}"
    # Requests per hour per token, like GitHub's 5000 for OAuth apps.
    rate_limit: int = 5000
    # Unauthenticated requests per hour per client address, like GitHub's 60.
    anonymous_rate_limit: int = 60
    # GitHub gives a webhook receiver 10 seconds before it records a timeout.
    webhook_timeout: float = 10.0

    def __post_init__(self) -> None:
        # Fail at construction, not on the first request that needs the value.
        _check_url("public_url", self.public_url)
        _check_url("callback_url", self.callback_url)
        if self.webhook_url is not None:
            _check_url("webhook_url", self.webhook_url)
        for name in ("code_ttl", "webhook_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("rate_limit", "anonymous_rate_limit"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not self.client_id or not self.client_secret or not self.webhook_secret:
            raise ValueError("client_id, client_secret and webhook_secret must not be empty")

    @property
    def base_url(self) -> str:
        """public_url without a trailing slash, ready for joining paths."""
        return self.public_url.rstrip("/")


@dataclass(frozen=True)
class ServerSettings:
    """Where `python -m standins.github` listens, and what it serves."""

    host: str
    port: int
    standin: StandinConfig


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _check_url(name: str, value: str) -> None:
    if not _is_http_url(value):
        raise ValueError(f"{name} must be an absolute http(s) URL, got {value!r}")


def settings_from_env(env: Mapping[str, str]) -> ServerSettings:
    """Read GITHUB_STANDIN_* and GITHUB_* variables; raise ConfigError naming a bad one."""
    host = env.get("GITHUB_STANDIN_HOST", DEFAULT_HOST).strip() or DEFAULT_HOST
    raw_port = env.get("GITHUB_STANDIN_PORT", str(DEFAULT_PORT)).strip()
    try:
        port = int(raw_port)
    except ValueError:
        raise ConfigError("GITHUB_STANDIN_PORT", f"not a port number: {raw_port!r}") from None
    # Port 0 would leave public_url (rendered into every html_url) unknown.
    if not 1 <= port <= 65535:
        raise ConfigError("GITHUB_STANDIN_PORT", f"out of range 1-65535: {port}")

    # 0.0.0.0 is a bind address, not one a browser can be sent to.
    visible_host = DEFAULT_HOST if host in ("0.0.0.0", "::") else host
    if ":" in visible_host:
        visible_host = f"[{visible_host}]"

    urls: dict[str, str | None] = {
        "GITHUB_WEBHOOK_URL": env.get("GITHUB_WEBHOOK_URL") or None,
        "GITHUB_CALLBACK_URL": env.get("GITHUB_CALLBACK_URL") or None,
        "PUBLIC_URL": env.get("PUBLIC_URL") or None,
        "GITHUB_STANDIN_PUBLIC_URL": env.get("GITHUB_STANDIN_PUBLIC_URL") or None,
    }
    for variable, value in urls.items():
        if value is not None and not _is_http_url(value):
            raise ConfigError(variable, f"not an absolute http(s) URL: {value!r}")

    defaults = StandinConfig()
    standin = StandinConfig(
        client_id=env.get("GITHUB_CLIENT_ID") or defaults.client_id,
        client_secret=env.get("GITHUB_CLIENT_SECRET") or defaults.client_secret,
        webhook_url=urls["GITHUB_WEBHOOK_URL"],
        webhook_secret=env.get("GITHUB_WEBHOOK_SECRET") or defaults.webhook_secret,
        public_url=urls["GITHUB_STANDIN_PUBLIC_URL"] or f"http://{visible_host}:{port}",
        callback_url=urls["GITHUB_CALLBACK_URL"]
        or _gateway_callback(urls["PUBLIC_URL"])
        or defaults.callback_url,
    )
    return ServerSettings(host=host, port=port, standin=standin)


def _gateway_callback(public_url: str | None) -> str | None:
    """Tandem's registered callback: the root of its gateway's origin (PUBLIC_URL), which
    make run points at any port."""
    if public_url is None:
        return None
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{parts.netloc}{CALLBACK_PATH}"
