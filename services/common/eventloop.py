"""Event loop set-up shared by every process (kept apart from `entry`, which loads the gRPC kit)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when uvloop is installed (it makes the event loop cheaper), else None."""
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up, absent on some platforms
    except ImportError:
        return None
    return uvloop.new_event_loop


def install_uvloop() -> None:
    """Use uvloop when available: it makes the event loop itself cheaper."""
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up, absent on some platforms
    except ImportError:
        return
    uvloop.install()
