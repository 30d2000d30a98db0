"""`python -m gateway.openapi_dump`: the document a running gateway serves, written with no
backend, Redis or settings, in bytes that do not depend on the machine or the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from gateway import openapi_dump
from scripts.platform import ROOT
from tests.gateway.conftest import Gateway


def _without_servers(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "servers"}


def _dump(*args: str, hash_seed: str = "0") -> subprocess.CompletedProcess[bytes]:
    # Nothing of this machine's settings: no DATABASE_URL, REDIS_URL, PUBLIC_URL, secrets.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONHASHSEED": hash_seed,
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "gen")]),
           "PUBLIC_URL": "https://not-this.example"}
    return subprocess.run([sys.executable, "-m", "gateway.openapi_dump", *args], env=env,
                          cwd="/", capture_output=True, timeout=60, check=False)


async def test_the_dump_is_the_document_a_running_gateway_serves(gateway: Gateway,
                                                                  tmp_path: Path) -> None:
    target = tmp_path / "api" / "openapi.json"
    done = _dump(str(target))
    assert done.returncode == 0, done.stderr.decode()
    dumped = orjson.loads(target.read_bytes())
    async with gateway() as client:
        reply = await client.get("/openapi.json")
        assert reply.status == 200
        served = orjson.loads(await reply.read())
    assert _without_servers(dumped) == _without_servers(served)
    # The committed copy names PUBLIC_URL's default, whatever the machine's PUBLIC_URL.
    assert dumped["servers"] == [{"url": "http://127.0.0.1:8080"}]
    assert "/api/v1/auth/refresh" in dumped["paths"]


def test_the_dump_is_stable_bytes_with_sorted_keys(tmp_path: Path) -> None:
    first, second = _dump(hash_seed="1"), _dump(hash_seed="2")
    assert first.returncode == 0, first.stderr.decode()
    assert first.stdout == second.stdout
    assert first.stdout.endswith(b"}\n")
    assert first.stdout == openapi_dump.render(openapi_dump.document())
    doc = orjson.loads(first.stdout)
    assert list(doc) == sorted(doc)
    assert list(doc["paths"]) == sorted(doc["paths"])


def test_check_says_whether_a_committed_copy_is_current(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    assert _dump(str(target), "--check").returncode == 1  # missing
    assert _dump(str(target)).returncode == 0
    assert _dump(str(target), "--check").returncode == 0
    target.write_bytes(target.read_bytes().replace(b'"Tandem API"', b'"Old API"'))
    stale = _dump(str(target), "--check")
    assert stale.returncode == 1
    assert b"python -m gateway.openapi_dump" in stale.stderr
