"""Rendering results: the text table, the JSON document, the machine and commit it ran on."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.registry import Result

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
LATEST = "latest.json"


def table(rows: Sequence[Sequence[str]], *, left: int = 1) -> str:
    """Columns padded to their widest cell; the first `left` columns left-aligned."""
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < left else cell.rjust(widths[i])
                 for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def fmt_num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def fmt_rate(result: Result) -> str:
    if result.value is not None:
        return f"{result.value:,.1f} {result.unit}"
    if result.rps is None:
        return "-"
    return f"{result.rps:,.1f} {result.unit}"


def render(results: Sequence[Result]) -> str:
    """The one table `python -m bench` prints."""
    rows = [["scenario", "throughput", "p50 ms", "p99 ms", "errors", "baseline", "ratio",
             "CPU us/op"]]
    notes = []
    for r in results:
        if r.skipped is not None or r.failed is not None:
            status = "skipped" if r.skipped is not None else "FAILED"
            rows.append([r.name, status, "-", "-", "-", r.baseline or "-", "-", "-"])
            notes.append(f"  {r.name}: {status}: {r.skipped or r.failed}")
            continue
        rows.append([
            r.name, fmt_rate(r), fmt_num(r.p50_ms, 2), fmt_num(r.p99_ms, 2),
            "-" if r.errors is None else f"{r.errors:,}", r.baseline or "-",
            "-" if r.ratio is None else f"{r.ratio:.2f}x", fmt_num(r.cpu_total_us, 0),
        ])
    text = table(rows, left=1)
    # Reasons can be long; below the table they do not stretch its columns.
    return text + ("\n" + "\n".join(notes) if notes else "")


def _run(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def commit() -> str:
    """Short HEAD, with `-dirty` when tracked files differ: the numbers are not that commit's."""
    head = _run(["git", "rev-parse", "--short", "HEAD"])
    if not head:
        return "unknown"
    changes = _run(["git", "status", "--porcelain", "--untracked-files=no"])
    return f"{head}-dirty" if changes else head


def machine(load_avg: float | None = None) -> dict[str, Any]:
    """Enough to tell whether two result files are comparable at all."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "memory_gb": None,
        "python": platform.python_version(),
        "kernel": f"{platform.system()} {platform.release()}",
    }
    if load_avg is not None:
        # Other work on the machine when the run began: a busy machine explains a slow run.
        info["load_avg_1m"] = round(load_avg, 2)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    wrk = shutil.which("wrk")
    if wrk:
        # `wrk -v` prints its version and exits non-zero, so read it regardless of status.
        try:
            out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False,
                                 timeout=5).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        if out.strip():
            info["wrk"] = out.split("Copyright")[0].strip()
    return info


def document(results: Sequence[Result], *, commit_id: str,
             machine_info: dict[str, Any] | str) -> dict[str, Any]:
    return {"commit": commit_id, "machine": machine_info,
            "scenarios": [r.to_json() for r in results]}


def write(doc: dict[str, Any], path: Path | None = None, now: datetime | None = None) -> Path:
    """Write to `path`, or to bench/results/<date>-<commit>.json and latest.json."""
    text = json.dumps(doc, indent=2) + "\n"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{stamp}-{doc['commit']}.json"
    out.write_text(text)
    (RESULTS_DIR / LATEST).write_text(text)
    return out
