"""A private platform for one soak run: the benchmark's, on a database of its own, removed after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bench.local import BenchError, private_platform
from scripts.platform import LocalPlatform


class SoakError(RuntimeError):
    """A one-line reason the soak cannot run."""


@contextlib.contextmanager
def soak_platform() -> Iterator[LocalPlatform]:
    """Every process on a fresh database (tandem_soak_<id>); stopped and dropped however we leave.

    The bench's environment applies: the developer's GitHub/LLM settings never leak in, and
    the per-user limits are out of the way (the soak's people share one IP).
    """
    try:
        with private_platform(label="soak") as platform:
            yield platform
    except BenchError as exc:
        raise SoakError(str(exc)) from None
