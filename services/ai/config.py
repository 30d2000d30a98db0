"""AiConfig (and its OpenAIConfig): the ai service's settings, read from the environment and validated at start-up."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from services.common.config import ConfigError, Env

PROVIDERS = ("builtin", "openai")


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    """How to reach an OpenAI-compatible chat-completions API."""

    base_url: str
    api_key: str | None
    model: str
    # No progress (connect, a chunk of the stream) for this long fails the request.
    timeout: float
    # Upper bound for one request from first byte sent to the end of the stream.
    request_deadline: float
    max_retries: int
    retry_base: float
    retry_max: float
    max_prompt_tokens: int
    max_completion_tokens: int

    @property
    def available(self) -> bool:
        return bool(self.api_key)

    @classmethod
    def from_env(cls, env: Env) -> OpenAIConfig:
        return cls(
            base_url=env.url("OPENAI_BASE_URL", "https://api.openai.com/v1", ("http", "https")),
            api_key=env.optional_str("OPENAI_API_KEY"),
            model=env.str("OPENAI_MODEL", "gpt-4o-mini"),
            timeout=env.float("OPENAI_TIMEOUT_SECONDS", 60.0, minimum=0.05),
            request_deadline=env.float("OPENAI_REQUEST_DEADLINE_SECONDS", 300.0, minimum=0.1),
            max_retries=env.int("OPENAI_MAX_RETRIES", 3, minimum=0, maximum=10),
            retry_base=env.float("OPENAI_RETRY_BASE_SECONDS", 0.5, minimum=0.0),
            retry_max=env.float("OPENAI_RETRY_MAX_SECONDS", 20.0, minimum=0.0),
            max_prompt_tokens=env.int("OPENAI_MAX_PROMPT_TOKENS", 6_000, minimum=200,
                                      maximum=2_000_000),
            max_completion_tokens=env.int("OPENAI_MAX_COMPLETION_TOKENS", 4_000, minimum=16,
                                          maximum=200_000),
        )


@dataclass(frozen=True, slots=True)
class AiConfig:
    """Job queue, limits and provider settings."""

    default_provider: str
    max_concurrency: int
    max_jobs_per_user: int
    max_jobs_per_session: int
    # Wall-clock budget of one job from its first start, over every attempt.
    job_deadline: float
    poll_interval: float
    heartbeat_interval: float
    stale_after: float
    max_attempts: int
    max_files: int
    max_file_bytes: int
    cache_ttl: float
    builtin_timeout: float
    analyzer_processes: int
    openai: OpenAIConfig

    @classmethod
    def from_env(cls, env: Env) -> AiConfig:
        openai = OpenAIConfig.from_env(env)
        provider = env.choice("AI_PROVIDER", "builtin", PROVIDERS)
        if provider == "openai" and not openai.available:
            raise ConfigError("OPENAI_API_KEY", "a non-empty value when AI_PROVIDER=openai")
        heartbeat = env.float("AI_HEARTBEAT_SECONDS", 2.0, minimum=0.05)
        stale = env.float("AI_STALE_SECONDS", 30.0, minimum=0.1)
        if stale <= heartbeat * 2:
            raise ConfigError("AI_STALE_SECONDS", "more than twice AI_HEARTBEAT_SECONDS",
                              str(stale))
        deadline = env.float("AI_JOB_DEADLINE_SECONDS", 600.0, minimum=0.5)
        if not math.isfinite(deadline):
            raise ConfigError("AI_JOB_DEADLINE_SECONDS", "a finite number of seconds",
                              str(deadline))
        return cls(
            default_provider=provider,
            # Workers mostly wait on a provider's stream; the built-in analyzer's CPU is
            # bounded separately by AI_ANALYZER_PROCESSES.
            max_concurrency=env.int("AI_MAX_CONCURRENCY", 4, minimum=1, maximum=64),
            max_jobs_per_user=env.int("AI_MAX_JOBS_PER_USER", 3, minimum=1, maximum=1_000),
            max_jobs_per_session=env.int("AI_MAX_JOBS_PER_SESSION", 8, minimum=1,
                                         maximum=10_000),
            job_deadline=deadline,
            poll_interval=env.float("AI_POLL_SECONDS", 1.0, minimum=0.01),
            heartbeat_interval=heartbeat,
            stale_after=stale,
            max_attempts=env.int("AI_MAX_ATTEMPTS", 2, minimum=1, maximum=10),
            max_files=env.int("AI_MAX_FILES", 200, minimum=1, maximum=3_000),
            max_file_bytes=env.int("AI_MAX_FILE_BYTES", 1_000_000, minimum=1_000,
                                   maximum=50_000_000),
            cache_ttl=env.float("AI_CACHE_TTL_SECONDS", 7 * 24 * 3600.0, minimum=1.0),
            builtin_timeout=env.float("AI_BUILTIN_TIMEOUT_SECONDS", 20.0, minimum=0.1),
            analyzer_processes=env.int("AI_ANALYZER_PROCESSES", min(2, os.cpu_count() or 1),
                                       minimum=1, maximum=64),
            openai=openai,
        )
