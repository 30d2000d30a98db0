"""Event loop set-up shared by every process (kept apart from `entry`, which loads the gRPC kit)."""

from __future__ import annotations


def install_uvloop() -> None:
    """Use uvloop when available: it makes the event loop itself cheaper."""
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up, absent on some platforms
    except ImportError:
        return
    uvloop.install()
