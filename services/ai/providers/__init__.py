"""Review providers behind one interface: the built-in analyzer and an OpenAI-compatible model."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

from services.ai.domain import FileDone, Finding, SourceFile

ProviderItem = Finding | FileDone


class ProviderError(Exception):
    """A provider could not review: the job fails with this message (people read it)."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


class Provider(Protocol):
    """Reviews files and yields findings as they are produced.

    After the last finding on a file the provider yields `FileDone(path)`, so
    the caller can cache that file's result even if a later file fails.
    Findings of a `scoped` provider already lie on lines in each file's scope
    (it only saw those lines); others review whole files and the caller
    applies the scope.
    """

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def scoped(self) -> bool: ...

    def review(self, files: Sequence[SourceFile]) -> AsyncGenerator[ProviderItem, None]: ...

    async def close(self) -> None: ...
