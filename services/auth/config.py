"""AuthConfig: the auth service's settings, read from the environment and validated at start-up."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.common.config import ConfigError, Env, MissingSecret

# The key deploy/compose.dev.env and the Kubernetes dev overlay publish (base64 of these
# bytes): fine on a laptop, refused outside development mode like every published secret.
PUBLISHED_DEV_KEY = b"local-dev-only-not-a-real-key!!!"

# Where GitHub may send a browser back: the API's callback (API clients, scripts) and the
# web app's landing page, which then calls the API's callback itself.
API_CALLBACK_PATH = "/api/v1/auth/github/callback"
APP_CALLBACK_PATH = "/auth/callback"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def _loopback_spellings(url: str) -> list[str]:
    """`url`, and when its host is 127.0.0.1 or localhost, the same URL under the other name:
    a person may open either, and the sign-in must come back to the one they opened (the
    browser keeps the sign-in cookie per host)."""
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in _LOOPBACK_NAMES:
        return [url]
    port = f":{parts.port}" if parts.port is not None else ""
    spellings = [url]
    for name in _LOOPBACK_NAMES:
        spelling = parts._replace(netloc=f"{name}{port}").geturl()
        if spelling not in spellings:
            spellings.append(spelling)
    return spellings


def default_redirects(public_url: str) -> tuple[str, ...]:
    """OAUTH_REDIRECT_ALLOWLIST's default: both callbacks under PUBLIC_URL (either loopback
    spelling), the API's first."""
    base = public_url.rstrip("/")
    return tuple(dict.fromkeys(spelling for path in (API_CALLBACK_PATH, APP_CALLBACK_PATH)
                               for spelling in _loopback_spellings(base + path)))


@dataclass(frozen=True, slots=True)
class AuthConfig:
    github_client_id: str
    github_client_secret: str
    github_oauth_url: str
    github_api_url: str
    github_scope: str
    redirect_allowlist: tuple[str, ...]
    default_redirect: str
    encryption_key: bytes
    access_ttl: int
    refresh_ttl: int
    state_ttl: int
    http_timeout: float

    @classmethod
    def from_env(cls, env: Env) -> AuthConfig:
        public = env.url("PUBLIC_URL", "http://127.0.0.1:8080", ("http", "https"))
        default_redirect = public.rstrip("/") + API_CALLBACK_PATH
        raw_key = env.str("TOKEN_ENCRYPTION_KEY", "")
        if not raw_key:
            raise ConfigError("TOKEN_ENCRYPTION_KEY",
                              "a base64 32-byte key (make run generates one in .data/secrets.env)")
        try:
            key = base64.b64decode(raw_key, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("TOKEN_ENCRYPTION_KEY", "base64 of 32 random bytes", raw_key) from None
        if len(key) != 32:
            raise ConfigError("TOKEN_ENCRYPTION_KEY", "base64 of exactly 32 bytes", raw_key)
        if key == PUBLISHED_DEV_KEY and not env.development:
            raise MissingSecret("TOKEN_ENCRYPTION_KEY", "base64 of 32 random bytes", published=True)
        return cls(
            # The stand-in's local pair only in development mode; elsewhere both are required.
            github_client_id=env.str("GITHUB_CLIENT_ID",
                                     "tandem-local" if env.development else None),
            github_client_secret=env.secret("GITHUB_CLIENT_SECRET", "tandem-local-secret",
                                            "the client secret of your GitHub OAuth app"),
            github_oauth_url=env.url("GITHUB_OAUTH_URL", "https://github.com", ("http", "https")),
            github_api_url=env.url("GITHUB_API_URL", "https://api.github.com", ("http", "https")),
            github_scope=env.str("GITHUB_SCOPE", "read:user user:email repo"),
            redirect_allowlist=env.csv("OAUTH_REDIRECT_ALLOWLIST", default_redirects(public)),
            default_redirect=default_redirect,
            encryption_key=key,
            # The contract caps access tokens at 15 minutes.
            access_ttl=env.int("ACCESS_TOKEN_TTL_SECONDS", 900, minimum=30, maximum=900),
            refresh_ttl=env.int("REFRESH_TOKEN_TTL_SECONDS", 30 * 86400, minimum=300,
                                maximum=365 * 86400),
            state_ttl=600,
            http_timeout=env.float("GITHUB_TIMEOUT_SECONDS", 10.0, minimum=0.1),
        )
