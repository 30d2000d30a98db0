"""`python -m bench`: run the scenarios, print one table, write the JSON result."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from bench import report, runner, scenarios
from bench.local import BenchError
from bench.wrk import WrkError


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark Tandem on this machine over loopback and print one table.",
        epilog=f"Scenarios: {', '.join(scenarios.names())}. BENCH_SECONDS=N shortens every "
               "scenario for a quick run.")
    parser.add_argument("--url", help="measure a running platform at this gateway URL instead "
                        "of starting a private one")
    env_seconds = os.environ.get("BENCH_SECONDS")
    parser.add_argument("--seconds", type=positive_int,
                        default=positive_int(env_seconds) if env_seconds else None,
                        help="duration of every scenario (default: BENCH_SECONDS, else each "
                        f"scenario's own, else {runner.DEFAULT_SECONDS})")
    parser.add_argument("--connections", type=positive_int, default=runner.DEFAULT_CONNECTIONS,
                        help="connections for scenarios that do not fix their own "
                        f"(default {runner.DEFAULT_CONNECTIONS})")
    parser.add_argument("--only", type=lambda s: [n.strip() for n in s.split(",") if n.strip()],
                        help="comma-separated scenario names (their baselines run too)")
    parser.add_argument("--json", type=Path, help="write the JSON here instead of "
                        "bench/results/<date>-<commit>.json and latest.json")
    return parser.parse_args(argv)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM takes the same path as Ctrl-C, so every `finally` stops what it started.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    opts = runner.Options(url=args.url, seconds=args.seconds, connections=args.connections,
                          only=args.only)
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    try:
        results = runner.run(opts)
    except (BenchError, WrkError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    doc = report.document(results, commit_id=report.commit(), machine_info=report.machine(load_avg))
    path = report.write(doc, args.json)
    print(report.render(results))
    progress_path = path.relative_to(report.ROOT) if path.is_relative_to(report.ROOT) else path
    print(f"==> wrote {progress_path}", file=sys.stderr)
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
