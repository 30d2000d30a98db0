"""The review service's settings (ReviewConfig), read from the environment at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import Env

# The stand-in's published local default, used only in development mode (TANDEM_ENV=
# development, as `make run` sets); elsewhere the variable is required (deploy/ reads it
# from a Secret).
LOCAL_WEBHOOK_SECRET = "tandem-local-webhook-secret"  # noqa: S105 - published local default


@dataclass(frozen=True, slots=True)
class ReviewConfig:
    github_api_url: str
    github_timeout: float
    github_connect_timeout: float
    github_retries: int
    webhook_secret: str
    membership_ttl: float
    token_ttl: float
    etag_ttl: int
    max_file_bytes: int
    max_files: int

    @classmethod
    def from_env(cls, env: Env) -> ReviewConfig:
        timeout = env.float("GITHUB_TIMEOUT_SECONDS", 10.0, minimum=0.05)
        return cls(
            github_api_url=env.url("GITHUB_API_URL", "https://api.github.com", ("http", "https")),
            github_timeout=timeout,
            # Connecting never needs long; a slow connect means GitHub is unreachable.
            github_connect_timeout=min(3.0, timeout),
            github_retries=env.int("GITHUB_RETRIES", 2, minimum=0, maximum=5),
            webhook_secret=env.secret("GITHUB_WEBHOOK_SECRET", LOCAL_WEBHOOK_SECRET,
                                      "the secret of the GitHub webhook that calls Tandem "
                                      "(a long random value you also enter at GitHub)"),
            membership_ttl=env.float("REVIEW_MEMBERSHIP_CACHE_SECONDS", 3.0),
            token_ttl=env.float("REVIEW_TOKEN_CACHE_SECONDS", 60.0),
            etag_ttl=env.int("REVIEW_ETAG_TTL_SECONDS", 86_400, minimum=60),
            max_file_bytes=env.int("REVIEW_MAX_FILE_BYTES", 2 * 1024 * 1024, minimum=1024,
                                   maximum=12 * 1024 * 1024),
            # GitHub lists at most 3000 files of a pull request.
            max_files=env.int("REVIEW_MAX_FILES", 3000, minimum=1, maximum=3000),
        )
