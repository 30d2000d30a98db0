"""Waiting for what is observable, with a deadline: the suite's one way to wait (never a bare sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

T = TypeVar("T")


def poll(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> tuple[T, float]:
    """Call `probe` until it answers something other than None; that answer and the time taken.

    An HTTP error counts as "not yet" (a process may be restarting); the last one is named in
    the failure."""
    start = time.monotonic()
    last: object = None
    while True:
        try:
            value = probe()
        except httpx.HTTPError as exc:
            value, last = None, exc
        if value is not None:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
        time.sleep(interval)


async def apoll(probe: Callable[[], Awaitable[T | None]], timeout: float, what: str,
                interval: float = 0.1) -> tuple[T, float]:
    """`poll` for coroutines."""
    start = time.monotonic()
    last: object = None
    while True:
        try:
            value = await probe()
        except httpx.HTTPError as exc:
            value, last = None, exc
        if value is not None:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 10.0) -> T:
    """Await `check` until it returns something truthy, within a deadline; that value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.05)


async def stopped_when_cancelled(task: asyncio.Task[None], timeout: float = 5.0) -> None:
    """Cancel a background loop and require it to end, cancelled, within `timeout`."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=timeout)
    assert done, f"the loop still ran {timeout}s after it was cancelled"
    assert task.cancelled(), "the loop ended otherwise than by the cancellation"
