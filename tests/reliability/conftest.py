"""Fault-test fixtures: one private world (PostgreSQL, Redis, every process) for the package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.support import FaultyWorld, private_world

# Short upstream timeouts and few retries keep each GitHub or LLM failure to a couple of
# seconds (test_upstream_faults.py); nothing else in the package depends on them.
WORLD_ENV = {
    "GITHUB_TIMEOUT_SECONDS": "1",
    "GITHUB_RETRIES": "1",
    "OPENAI_TIMEOUT_SECONDS": "1",
    "OPENAI_MAX_RETRIES": "1",
    "OPENAI_RETRY_BASE_SECONDS": "0.05",
    "OPENAI_RETRY_MAX_SECONDS": "0.2",
}


@pytest.fixture(scope="package")
def world(base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultyWorld]:
    """The fault tests' own platform on private servers that they stop and start.

    Shared by the package to save start-ups: every test that breaks something asserts
    that the platform recovered (ready again) before it ends.
    """
    with private_world(base_env, tmp_path_factory.mktemp("faults"), **WORLD_ENV) as world:
        yield world
