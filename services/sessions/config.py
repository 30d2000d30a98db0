"""Settings of the sessions service (beyond the kit's CommonConfig), from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import Env
from services.common.sessionevents import ConsumerSettings
from services.sessions.documents import DEFAULT_CACHE_BYTES


@dataclass(frozen=True, slots=True)
class SessionsConfig:
    """Sessions-only settings."""

    cache_ttl: float
    notifications: ConsumerSettings
    # Loaded documents of this replica, counted as documents.LoadedDocuments counts them.
    document_cache_bytes: int

    @classmethod
    def from_env(cls, env: Env) -> SessionsConfig:
        return cls(
            cache_ttl=env.float("SESSIONS_CACHE_TTL_SECONDS", 30.0, minimum=0.1),
            notifications=ConsumerSettings(
                claim_idle_ms=int(env.float("NOTIFICATIONS_CLAIM_IDLE_SECONDS", 30.0,
                                            minimum=0.01) * 1000)),
            document_cache_bytes=env.int("SESSIONS_DOCUMENT_CACHE_BYTES", DEFAULT_CACHE_BYTES,
                                         minimum=0),
        )
