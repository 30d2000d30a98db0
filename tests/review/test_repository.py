"""ReviewRepository's driver errors leave it as domain errors (the use cases see no psycopg)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.common.errors import NotFound, Unavailable
from services.review.domain import Comment, Thread, new_id, now
from services.review.repository import ReviewRepository


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_database_is_unavailable_with_its_reason() -> None:
    pool = AsyncConnectionPool(f"postgresql://tandem@127.0.0.1:{_closed_port()}/tandem",
                               min_size=1, max_size=1, open=False, timeout=0.3,
                               kwargs={"row_factory": dict_row, "connect_timeout": 1},
                               connection_class=psycopg.AsyncConnection[dict[str, Any]])
    await pool.open(wait=False)
    try:
        with pytest.raises(Unavailable) as info:
            await ReviewRepository(pool).get_review(new_id())
    finally:
        await pool.close()
    assert info.value.reason == "database_unavailable"
    assert info.value.message == "database unavailable, try again shortly"


async def test_a_write_for_a_review_deleted_meanwhile_is_not_found(
        world: Callable[..., Any]) -> None:
    async with world() as w:
        repo = ReviewRepository(w.runtime.resources.pool)
        at, user = now(), new_id()
        thread = Thread(new_id(), new_id(), "app.py", "RIGHT", 1, None, "a" * 40, "x", False,
                        False, user, at, at)
        with pytest.raises(NotFound):
            await repo.insert_thread(thread, Comment(new_id(), thread.id, user, "body", at))
        assert await w.sql("SELECT count(*) AS n FROM threads WHERE id = %s",
                           thread.id) == [{"n": 0}]
