"""A short-lived in-process cache of public user profiles (login, name, avatar).

Member lists, messages and invitations show user objects; fetching them from
auth on every request cost 41 % of a core at ~600 message posts/s (profiled
in docs/performance.md). Profiles change rarely and are public inside a
session, so a replica may serve one up to `ttl` seconds old.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from services.common import metrics


class UserCache:
    def __init__(self, ttl: float = 30.0, size: int = 20_000) -> None:
        self._ttl = ttl
        self._size = size
        self._items: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._hits = metrics.CACHE_REQUESTS.labels("gateway_users", "hit")
        self._misses = metrics.CACHE_REQUESTS.labels("gateway_users", "miss")

    def get_many(self, ids: list[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """(found profiles, ids still to fetch)."""
        now = time.monotonic()
        found: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for user_id in ids:
            entry = self._items.get(user_id)
            if entry is not None and entry[0] > now:
                found[user_id] = entry[1]
            else:
                missing.append(user_id)
        if found:
            self._hits.inc(len(found))
        if missing:
            self._misses.inc(len(missing))
        return found, missing

    def put(self, user_id: str, profile: dict[str, Any]) -> None:
        self._items[user_id] = (time.monotonic() + self._ttl, profile)
        self._items.move_to_end(user_id)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
