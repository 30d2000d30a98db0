"""`python -m soak`: start a private platform, run mixed traffic for a while, report, judge."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import orjson

from scripts.platform import LocalPlatform
from soak.platform import SoakError, soak_platform
from soak.stats import Memory, Recorder, render
from soak.workload import Plan, Soak

SAMPLE_EVERY = 5.0


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
        return value
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m soak",
        description="Mixed traffic (REST, events and document sockets, AI jobs, reconnects) "
                    "against a private platform; fails on any error or memory growth.")
    parser.add_argument("--minutes", type=positive(float),
                        default=float(os.environ.get("SOAK_MINUTES") or 10),
                        help="how long the traffic runs (default: SOAK_MINUTES, else 10)")
    parser.add_argument("--users", type=positive(int), default=Plan.users)
    parser.add_argument("--sessions", type=positive(int), default=Plan.sessions)
    parser.add_argument("--think", type=positive(float), default=Plan.think,
                        help="mean seconds between one person's REST calls")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before the memory baseline (default: a quarter of the "
                             "run, at most 60)")
    parser.add_argument("--max-growth", type=float, default=10.0,
                        help="largest allowed RSS growth in %% from warm to the end (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the traffic")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    return parser.parse_args(argv)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


async def _soak(platform: LocalPlatform, args: argparse.Namespace) -> tuple[str, dict[str, object], bool]:
    seconds = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(60.0, seconds / 4)
    plan = Plan(users=args.users, sessions=args.sessions, think=args.think)
    memory = Memory({name: proc.pid for name, proc in platform.procs.items()
                     if name not in ("github", "openai")})
    memory.sample(warm=False)
    print(f"==> signing in {plan.users} people, opening {plan.sessions} sessions", file=sys.stderr)
    recorder = Recorder()
    soak = Soak(platform.url, plan, recorder, seed=args.seed)
    await soak.setup()
    recorder.start = time.monotonic()
    print(f"==> traffic for {args.minutes:g} min (memory baseline after {warmup:.0f} s)",
          file=sys.stderr)
    stop = asyncio.Event()
    traffic = asyncio.create_task(soak.run(stop))
    began = time.monotonic()
    last_note = began
    while (elapsed := time.monotonic() - began) < seconds:
        await asyncio.sleep(min(SAMPLE_EVERY, seconds - elapsed))
        memory.sample(warm=time.monotonic() - began >= warmup)
        if time.monotonic() - last_note >= 60:
            last_note = time.monotonic()
            print(f"    {int((last_note - began) // 60)} min: {recorder.error_count} errors",
                  file=sys.stderr)
    memory.sample(warm=True)
    ran = time.monotonic() - began
    stop.set()
    await traffic
    print("==> checking that nothing acknowledged was lost", file=sys.stderr)
    checks = await soak.check()
    await soak.close()
    grown = {row["process"]: row["growth_pct"] for row in memory.rows()
             if row["growth_pct"] is not None and row["growth_pct"] > args.max_growth}
    checks["errors"] = recorder.error_count
    checks["processes over the growth limit"] = ", ".join(grown) or "none"
    passed = recorder.error_count == 0 and not grown
    checks["verdict"] = "PASS" if passed else "FAIL"
    text = render(recorder, memory, seconds=ran, max_growth=args.max_growth, checks=checks)
    document = {"minutes": ran / 60, "plan": plan.__dict__, "errors": dict(recorder.errors),
                "error_examples": recorder.examples, "latency_per_minute": recorder.table(),
                "memory": memory.rows(), "checks": checks, "passed": passed}
    return text, document, passed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        with soak_platform() as platform:
            text, document, passed = asyncio.run(_soak(platform, args))
    except SoakError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("soak: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    print(text)
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        print(f"==> wrote {args.json}", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
