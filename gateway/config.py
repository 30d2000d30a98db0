"""Gateway settings from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.clientaddr import TrustedProxies, parse_networks
from services.common.config import CommonConfig, ConfigError, Env

# The web client's build (web/ builds into it; committed, so running Tandem needs no Node).
DEFAULT_WEB_DIST = Path(__file__).resolve().parent / "web" / "dist"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    common: CommonConfig
    host: str
    port: int
    max_body_bytes: int
    ready_timeout: float
    access_log: bool
    cors_origins: tuple[str, ...]
    public_url: str
    hsts: bool
    rate_auth_per_minute: int
    rate_user_per_minute: int
    trusted_proxies: TrustedProxies
    web_dist: Path
    github_oauth_url: str

    @classmethod
    def from_env(cls, env: Env) -> GatewayConfig:
        common = CommonConfig.from_env(env)
        port = env.port("GATEWAY_PORT", 8080)
        return cls(
            common=common,
            host=env.str("GATEWAY_HOST", common.bind_host),
            port=port,
            max_body_bytes=env.int("MAX_BODY_BYTES", 1024 * 1024, minimum=1024,
                                   maximum=64 * 1024 * 1024),
            ready_timeout=env.float("READY_CHECK_TIMEOUT_SECONDS", 1.0, minimum=0.05),
            access_log=env.bool("ACCESS_LOG", True),
            cors_origins=env.csv("CORS_ORIGINS"),
            public_url=env.url("PUBLIC_URL", f"http://127.0.0.1:{port}", ("http", "https")),
            hsts=env.bool("HSTS", False),
            # 0 disables a limit (benchmarks); defaults suit interactive use.
            rate_auth_per_minute=env.int("RATE_LIMIT_AUTH_PER_MINUTE", 60, minimum=0),
            rate_user_per_minute=env.int("RATE_LIMIT_USER_PER_MINUTE", 1200, minimum=0),
            trusted_proxies=_trusted_proxies(env),
            web_dist=Path(env.str("GATEWAY_WEB_DIST", str(DEFAULT_WEB_DIST))).resolve(),
            # GitHub's web origin: the app's pages show avatars from it and sign-in goes there.
            github_oauth_url=env.url("GITHUB_OAUTH_URL", "https://github.com", ("http", "https")),
        )


def _trusted_proxies(env: Env) -> TrustedProxies:
    """TRUSTED_PROXIES: the proxies (e.g. the ingress) whose X-Forwarded-For is believed."""
    items = env.csv("TRUSTED_PROXIES")
    try:
        return TrustedProxies(parse_networks(items))
    except ValueError as exc:
        raise ConfigError("TRUSTED_PROXIES", "comma-separated IP addresses or CIDR networks "
                          "(e.g. 10.0.0.0/8)", str(exc)) from None
