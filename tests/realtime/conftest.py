"""Realtime fixtures: the sessions service's `world` (auth + sessions over real gRPC) reused."""

from __future__ import annotations

from tests.sessions.conftest import world

__all__ = ["world"]
