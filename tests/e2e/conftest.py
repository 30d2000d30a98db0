"""End-to-end fixtures: the whole platform as real processes on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts.platform import LocalPlatform


@pytest.fixture(scope="session")
def platform(base_env: dict[str, str]) -> Iterator[LocalPlatform]:
    """One platform shared by the read-mostly end-to-end tests of a run."""
    plat = LocalPlatform.create(base_env)
    with plat:
        plat.wait_ready(90)
        yield plat
