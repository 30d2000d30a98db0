"""Scenario modules; importing this package fills the registry in table order."""

from __future__ import annotations

from importlib import import_module

# Explicit, not alphabetical: registration order is the order of the table. A feature adds
# its module here (before "rss", which is listed last although it is measured first).
MODULES = ("system", "auth", "sessions", "mixed", "realtime", "review", "ai", "rss")

for _module in MODULES:
    import_module(f"{__name__}.{_module}")


def names() -> list[str]:
    """Registered scenario names, `rss` standing for its `rss_<process>` rows."""
    from bench.registry import REGISTRY  # noqa: PLC0415 - filled by the imports above

    return list(REGISTRY)
