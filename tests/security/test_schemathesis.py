"""schemathesis against /openapi.json with a valid token: every operation, deep enough to reach
the services (real ids of a session the token owns), zero 5xx and zero schema violations."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.support import FaultyWorld
from tests.security.conftest import Stage, build_stage

pytestmark = pytest.mark.e2e

CHECKS = ("not_a_server_error", "response_schema_conformance", "status_code_conformance",
          "content_type_conformance",
          # Every operation that declares the bearer scheme refuses requests without it.
          "ignored_auth")
# Bounded so the run takes a minute or two here; raise it (and change the seed) to dig deeper:
#   TANDEM_SCHEMATHESIS_EXAMPLES=300 TANDEM_SCHEMATHESIS_SEED=7 make test ARGS=tests/security
EXAMPLES = int(os.environ.get("TANDEM_SCHEMATHESIS_EXAMPLES", "25"))
SEED = int(os.environ.get("TANDEM_SCHEMATHESIS_SEED", "1"))


def _cli() -> list[str]:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is not installed: it is a dev dependency (pip install -e '.[dev]')")
    return [found]


def parameters(stage: Stage, sacrifice: str, template: str, method: str) -> dict[str, str]:
    """Real ids for a path template; destructive operations get a session of their own."""
    path_params = {name.strip("{}") for name in template.split("/") if name.startswith("{")}
    if not path_params:
        return {}
    filled = stage.fill(template).split("/")
    values = {part.strip("{}"): filled[i] for i, part in enumerate(template.split("/"))
              if part.startswith("{")}
    destructive = template.startswith("/api/v1/sessions/{id}") and (
        (method == "delete" and template == "/api/v1/sessions/{id}")
        or template.endswith(("/end", "/transfer")))
    if destructive:
        values["id"] = sacrifice
    return {f"path.{name}": value for name, value in values.items()}


def config(stage: Stage, sacrifice: str, document: dict[str, Any]) -> str:
    """schemathesis.toml: one [[operations]] entry per operation that takes path ids."""
    lines: list[str] = []
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            values = parameters(stage, sacrifice, template, method)
            if not values:
                continue
            pairs = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items())
            lines += ["[[operations]]", f"include-operation-id = {json.dumps(operation['operationId'])}",
                      f"parameters = {{{pairs}}}", ""]
    return "\n".join(lines)


# A hang guard in step with the CLI's own 600 s limit below (the suite's 120 s default cut
# the run short on a loaded machine): a limit on hanging, not on speed.
@pytest.mark.timeout(660)
def test_schemathesis_finds_no_server_errors_and_no_schema_violations(
        secure: FaultyWorld, openapi: dict[str, Any], tmp_path: Path) -> None:
    stage = build_stage(secure.url)
    sacrifice = stage.crew.session(title="To be ended, transferred and deleted")
    config_file = tmp_path / "schemathesis.toml"
    config_file.write_text(config(stage, sacrifice, openapi))
    command = [
        *_cli(), "--config-file", str(config_file), "run", secure.url + "/openapi.json",
        "--header", f"Authorization: Bearer {stage.crew.owner.access_token}",
        "--checks", ",".join(CHECKS), "--max-examples", str(EXAMPLES), "--seed", str(SEED),
        "--workers", "2", "--request-timeout", "30", "--generation-database", "none",
        "--no-color", "--report", "junit", "--report-dir", str(tmp_path / "report"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False,
                          cwd=tmp_path)
    output = done.stdout + done.stderr
    # The summary names every failure with a curl line to reproduce it.
    assert done.returncode == 0, output[-20_000:]
    # Every operation of the document was exercised (schemathesis leaves out the one that
    # serves the document itself).
    report = next((tmp_path / "report").glob("*.xml")).read_text()
    tested = set(re.findall(r'<testcase name="([^"]+)"', report))
    everything = {f"{method.upper()} {path}" for path, operations in openapi["paths"].items()
                  for method in operations}
    assert everything - tested == {"GET /openapi.json"}, everything - tested
