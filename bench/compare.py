"""`python -m bench.compare A B`: the change in throughput and p99 between two benchmark runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.registry import Result
from bench.report import LATEST, RESULTS_DIR, table

USAGE = "usage: python -m bench.compare A B  (each a result JSON path, a commit prefix or 'latest')"


class NotFoundError(LookupError):
    """No result file matches what was asked for."""


def resolve(ref: str, results_dir: Path = RESULTS_DIR) -> Path:
    """A path as given, `latest`, or the newest result file whose commit starts with `ref`."""
    path = Path(ref)
    if path.is_file():
        return path
    if ref == "latest" and (results_dir / LATEST).is_file():
        return results_dir / LATEST
    matches = []
    # File names are <YYYYMMDD-HHMMSS>-<commit>.json: sorting by name sorts by date.
    for candidate in sorted(results_dir.glob("*.json")):
        if candidate.name == LATEST:
            continue
        parts = candidate.stem.split("-", 2)
        if len(parts) == 3 and parts[2].startswith(ref):
            matches.append(candidate)
    if not matches:
        raise NotFoundError(f"no result matches {ref!r} (not a file, nor a commit prefix of a "
                            f"file in {results_dir})")
    return matches[-1]


def load(path: Path) -> tuple[str, list[Result]]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return str(doc.get("commit", "?")), [Result.from_json(s) for s in doc.get("scenarios", [])]


def change(old: float | None, new: float | None) -> str:
    if old is None or new is None or old == 0:
        return "-"
    return f"{(new - old) / old * 100:+.1f}%"


def _rate(r: Result | None) -> tuple[float | None, str]:
    if r is None:
        return None, "absent"
    if r.skipped is not None:
        return None, "skipped"
    if r.failed is not None:
        return None, "FAILED"
    if r.value is not None:
        return r.value, f"{r.value:,.1f} {r.unit}"
    if r.rps is None:
        return None, "-"
    return r.rps, f"{r.rps:,.1f}"


def _p99(r: Result | None) -> tuple[float | None, str]:
    if r is None or r.p99_ms is None or r.skipped is not None or r.failed is not None:
        return None, "-"
    return r.p99_ms, f"{r.p99_ms:.2f}"


def _cpu(r: Result | None) -> tuple[float | None, str]:
    total = None if r is None else r.cpu_total_us
    return (None, "-") if total is None else (total, f"{total:,.0f}")


def render(a: list[Result], b: list[Result]) -> str:
    """One row per scenario of either run, in A's order then B's new ones."""
    by_a, by_b = {r.name: r for r in a}, {r.name: r for r in b}
    names = list(by_a) + [n for n in by_b if n not in by_a]
    rows = [["scenario", "A rate", "B rate", "change", "A p99 ms", "B p99 ms", "change",
             "A CPU us/op", "B CPU us/op", "change"]]
    for name in names:
        (ra, ta), (rb, tb) = _rate(by_a.get(name)), _rate(by_b.get(name))
        (pa, sa), (pb, sb) = _p99(by_a.get(name)), _p99(by_b.get(name))
        (ca, sca), (cb, scb) = _cpu(by_a.get(name)), _cpu(by_b.get(name))
        rows.append([name, ta, tb, change(ra, rb), sa, sb, change(pa, pb), sca, scb,
                     change(ca, cb)])
    return table(rows, left=1)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or any(a in ("-h", "--help") for a in args):
        print(USAGE, file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    try:
        path_a, path_b = resolve(args[0]), resolve(args[1])
    except NotFoundError as exc:
        print(f"bench.compare: {exc}", file=sys.stderr)
        return 2
    commit_a, results_a = load(path_a)
    commit_b, results_b = load(path_b)
    print(f"A: {path_a} (commit {commit_a})")
    print(f"B: {path_b} (commit {commit_b})")
    print(render(results_a, results_b))
    print("change is B against A: higher is better for rates, lower for p99, MB and CPU per "
          "operation (the figure least moved by other load on the machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
