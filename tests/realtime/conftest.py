"""Realtime fixtures: the sessions service's `world` (auth + sessions over real gRPC) reused."""

from __future__ import annotations

from tests.sessions.conftest import github_standin, world

__all__ = ["github_standin", "world"]
