"""The gateway's short-lived user profile cache."""

from __future__ import annotations

import time

from gateway.usercache import UserCache


def test_cached_profiles_are_served_until_they_expire(monkeypatch: object) -> None:
    cache = UserCache(ttl=30, size=10)
    cache.put("a", {"id": "a"})
    found, missing = cache.get_many(["a", "b"])
    assert found == {"a": {"id": "a"}}
    assert missing == ["b"]
    later = time.monotonic() + 31
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(time, "monotonic", lambda: later)
        assert cache.get_many(["a"]) == ({}, ["a"])


def test_the_oldest_entries_are_evicted_beyond_the_size() -> None:
    cache = UserCache(ttl=30, size=2)
    for name in ("a", "b", "c"):
        cache.put(name, {"id": name})
    found, missing = cache.get_many(["a", "b", "c"])
    assert set(found) == {"b", "c"}
    assert missing == ["a"]
