"""Generate Python gRPC code from protos/ into gen/ (clean, then generate), and make it importable."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GEN = ROOT / "gen"


def main() -> None:
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    shutil.rmtree(GEN, ignore_errors=True)
    GEN.mkdir()
    bindir = str(Path(sys.executable).parent)
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}",
           f"--python_out={GEN}", f"--grpc_python_out={GEN}",
           f"--plugin=protoc-gen-mypy={bindir}/protoc-gen-mypy",
           f"--plugin=protoc-gen-mypy_grpc={bindir}/protoc-gen-mypy_grpc",
           f"--mypy_out={GEN}", f"--mypy_grpc_out={GEN}", *files]
    result = subprocess.run(cmd, cwd=PROTOS, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # protoc's own message names the file and line; pass it on unchanged.
        sys.stderr.write(result.stderr)
        raise SystemExit(result.returncode)
    # The proto tree *is* the package path (tandem/<svc>/v1), so generated
    # imports resolve with gen/ on sys.path and no file is edited. A .pth file
    # puts gen/ (and the repo root) on the virtualenv's path for every process.
    pth = Path(sysconfig.get_paths()["purelib"]) / "tandem_gen.pth"
    pth.write_text(f"{ROOT}\n{GEN}\n")
    (GEN / ".stamp").touch()
    print(f"generated {len(files)} proto files into {GEN.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
