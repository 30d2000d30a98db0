"""Redis through redis.asyncio, with every key under the service's prefix."""

from __future__ import annotations

import asyncio

import redis.exceptions
from redis.asyncio import Redis

__all__ = ["REDIS_ERRORS", "create_redis", "stop_if_cancelled"]

# What code around a Redis call catches to ride out an outage: the one tuple of the tree.
# All of RedisError, not only its ConnectionError and TimeoutError: while Redis is in
# trouble it also answers with errors (LOADING after a restart, READONLY during a failover,
# OOM at maxmemory, MISCONF when it cannot persist), and those are the dependency's failure,
# not the caller's. OSError: socket errors raised outside redis-py's wrapping; TimeoutError
# (an OSError too, listed for the reader): what asyncio.timeout() around a call raises.
REDIS_ERRORS = (redis.exceptions.RedisError, OSError, TimeoutError)


def stop_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop.

    redis-py can turn a cancellation that lands during a blocking read into its
    own TimeoutError; a loop that retries on Redis errors would then run on after
    shutdown asked it to stop. Loops call this wherever they swallow errors.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def create_redis(url: str) -> Redis:
    """A client with short timeouts, so an outage fails calls fast instead of hanging."""
    return Redis.from_url(
        url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        health_check_interval=15,
        max_connections=256,
        decode_responses=False,
    )
