"""The committed web client matches its sources.

`gateway/web/dist` (what the gateway serves, committed so `make run` needs no Node) must be
what `vite build` makes of `web/` today, and `web/src/api/schema.d.ts` what openapi-typescript
makes of `web/src/api/openapi.json`, which must be the gateway's own OpenAPI document. The
OpenAPI check needs only Python; the others run where Node is (CI has it; `make test`
installs the npm packages first) and skip, saying why, where it is not.
"""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.app import API_VERSION, build_routes

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
DIST = ROOT / "gateway" / "web" / "dist"
OPENAPI = WEB / "src" / "api" / "openapi.json"
SCHEMA = WEB / "src" / "api" / "schema.d.ts"
FIX = "run `make web-api && make web` and commit the result"


def _npx() -> list[str]:
    if shutil.which("npx") is None:
        pytest.skip("no Node/npm here: the web client's build checks need Node 20.19+")
    if not (WEB / "node_modules" / ".installed").exists():
        pytest.skip("web/node_modules is not installed: `make web-deps` (make test runs it)")
    return ["npx", "--no-install"]


def _tree(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_committed_openapi_document_is_the_gateways() -> None:
    served = build_routes().document("Tandem API", API_VERSION, "http://127.0.0.1:8080")
    committed = json.loads(OPENAPI.read_text())
    assert committed == json.loads(json.dumps(served)), f"web/src/api/openapi.json is stale: {FIX}"


def test_the_committed_api_types_are_generated_from_it(tmp_path: Path) -> None:
    npx = _npx()
    out = tmp_path / "schema.d.ts"
    subprocess.run([*npx, "openapi-typescript", str(OPENAPI), "--default-non-nullable", "false",
                    "-o", str(out)], cwd=WEB, check=True, capture_output=True, timeout=120)
    assert out.read_text() == SCHEMA.read_text(), f"web/src/api/schema.d.ts is stale: {FIX}"


def test_the_committed_build_is_a_fresh_build_of_the_sources(tmp_path: Path) -> None:
    npx = _npx()
    fresh = tmp_path / "dist"
    subprocess.run([*npx, "vite", "build", "--outDir", str(fresh), "--emptyOutDir", "--logLevel", "error"],
                   cwd=WEB, check=True, capture_output=True, timeout=300)
    built, committed = _tree(fresh), _tree(DIST)
    assert sorted(built) == sorted(committed), (
        f"gateway/web/dist differs from a fresh build in its files "
        f"(only fresh: {sorted(set(built) - set(committed))[:5]}, "
        f"only committed: {sorted(set(committed) - set(built))[:5]}): {FIX}")
    differing = [name for name in built if not filecmp.cmp(built[name], committed[name], shallow=False)]
    assert differing == [], f"gateway/web/dist differs from a fresh build in {differing[:5]}: {FIX}"


def test_the_web_clients_unit_tests_pass() -> None:
    npx = _npx()
    run = subprocess.run([*npx, "vitest", "run", "--reporter=dot"], cwd=WEB, capture_output=True, check=False,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
