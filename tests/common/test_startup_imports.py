"""What each process loads at start-up: packages it needs only on rare paths stay out of it.

Every package here costs an idle process megabytes of resident memory (docs/performance.md,
"Idle memory"); each is imported where it is first used instead. A fresh interpreter per
process, as `python -m services.<name>` and `python -m gateway` start.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts.platform import python_env

# Modules a process imports at start-up -> packages that must not be loaded by then.
NOT_AT_START = {
    "services.auth.server": {"aiohttp", "httpx", "pycrdt", "pydantic"},
    "services.sessions.server": {"aiohttp", "httpx", "jwt", "pydantic"},
    "services.review.server": {"aiohttp", "httpx", "jwt", "pycrdt", "pydantic"},
    "services.ai.server": {"aiohttp", "httpx", "jwt", "pycrdt", "pydantic", "lizard",
                           "detect_secrets"},
    "gateway.__main__ gateway.app": {"psycopg", "httpx", "jwt", "pycrdt"},
}

_PROBE = """
import importlib, sys
for name in sys.argv[1].split():
    importlib.import_module(name)
print(" ".join(sorted({m.split(".")[0] for m in sys.modules})))
"""


@pytest.mark.parametrize("modules", sorted(NOT_AT_START))
def test_process_does_not_load_what_it_needs_only_later(modules: str) -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE, modules], env=python_env(),
                            capture_output=True, text=True, timeout=60, check=True)
    loaded = set(result.stdout.split())
    assert "grpc" in loaded  # the probe did import the process's code
    assert loaded & NOT_AT_START[modules] == set()


def test_gateway_models_are_built_on_first_use() -> None:
    probe = """
import gateway.app
from gateway.http import Schema
from gateway.routes.sessions import MessageIn
def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)
models = list(subclasses(Schema))
print(len(models), sum(m.__pydantic_complete__ for m in models))
MessageIn.model_validate({"body": "hi"})
print(int(MessageIn.__pydantic_complete__))
"""
    result = subprocess.run([sys.executable, "-c", probe], env=python_env(),
                            capture_output=True, text=True, timeout=60, check=True)
    counts, built_after_use = result.stdout.split("\n")[:2]
    total, built = map(int, counts.split())
    assert total > 30
    assert built == 0
    assert built_after_use == "1"
