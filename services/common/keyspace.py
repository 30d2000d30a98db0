"""Redis key names under the service's prefix (no Redis client here: domain code may build keys)."""

from __future__ import annotations


class KeySpace:
    """Builds keys under `<REDIS_PREFIX><service>:` so services and test runs never collide."""

    __slots__ = ("prefix",)

    def __init__(self, global_prefix: str, service: str) -> None:
        self.prefix = f"{global_prefix}{service}:"

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)
