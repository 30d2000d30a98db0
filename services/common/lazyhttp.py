"""An httpx client made on first use.

Importing httpx and building a client (which loads a TLS context) costs a service about
9 MB of resident memory. The services speak HTTP only off their hot paths (a GitHub
login, a pull-request import, an LLM review), so they pay for it when the first request
goes out instead of at start-up; that first request takes about 75 ms longer (mostly the
client's TLS context; about 150 ms where httpx's CLI dependencies are installed too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


class LazyHttpClient:
    """Calling it returns the client, made by `make` the first time; aclose() closes it if made."""

    def __init__(self, make: Callable[[], httpx.AsyncClient]) -> None:
        self._make = make
        self._client: httpx.AsyncClient | None = None

    def __call__(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._make()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
