"""Interop fixtures: yjs + y-websocket + ws installed once by npm."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.platform import ROOT

CACHE = ROOT / ".data" / "node-interop"
PACKAGES = {"yjs": "^13.6.0", "y-websocket": "^3.0.0", "ws": "^8.18.0"}


def _installed() -> bool:
    return all((CACHE / "node_modules" / name / "package.json").exists() for name in PACKAGES)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The npm packages of a real Yjs client, installed into a git-ignored cache once."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the JavaScript Yjs interop test needs them")
    if not _installed():
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "package.json").write_text(json.dumps(
            {"name": "tandem-node-interop", "private": True, "dependencies": PACKAGES}, indent=2))
        try:
            done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"],
                                  cwd=CACHE, capture_output=True, text=True, timeout=300,
                                  check=False)
        except subprocess.TimeoutExpired:
            pytest.skip("npm install of yjs, y-websocket and ws timed out (no network?)")
        if done.returncode != 0 or not _installed():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            pytest.skip("npm install of yjs, y-websocket and ws failed (no network?): "
                        + " / ".join(tail))
    return CACHE / "node_modules"
