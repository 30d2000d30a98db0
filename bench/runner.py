"""Running the selected scenarios: selection, warm-up, measurement, skips and failures."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench import cpu, wrk
from bench.local import BenchError, private_platform
from bench.registry import (
    REGISTRY,
    Context,
    Measurement,
    PyLoad,
    Result,
    RunSpec,
    Scenario,
    Skip,
    Values,
    WrkLoad,
    fill_ratios,
)
from scripts.platform import LocalPlatform, python_env

DEFAULT_SECONDS = 10
DEFAULT_CONNECTIONS = 50
NOT_BUILT = {404: "not found", 405: "method not allowed", 501: "not implemented"}


@dataclass(frozen=True)
class Options:
    url: str | None = None
    seconds: int | None = None  # overrides every scenario's own duration
    connections: int = DEFAULT_CONNECTIONS
    only: Sequence[str] | None = None


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def warmup_seconds(seconds: int) -> int:
    # Long enough to fill connection pools and caches, short enough not to double a quick run.
    return 1 if seconds <= 5 else 2


def select(only: Sequence[str] | None) -> tuple[list[Scenario], set[str] | None]:
    """Scenarios to run (baselines pulled in) and, for `rss_<process>` names, rows to keep."""
    # Importing the package registers every scenario module, in table order.
    import_module("bench.scenarios")
    if not only:
        return list(REGISTRY.values()), None
    wanted: set[str] = set()
    rows: set[str] = set()
    for name in only:
        if name in REGISTRY:
            wanted.add(name)
        elif name.startswith("rss_") and "rss" in REGISTRY:
            wanted.add("rss")
            rows.add(name)
        else:
            known = ", ".join(sorted([*REGISTRY, "rss_<process>"]))
            raise BenchError(f"unknown scenario {name!r}; known: {known}")
    # A ratio is only meaningful against a baseline measured in the same run.
    pending = list(wanted)
    while pending:
        base = REGISTRY[pending.pop()].baseline
        if base and base in REGISTRY and base not in wanted:
            wanted.add(base)
            pending.append(base)
    keep = None
    if rows and "rss" not in only:
        keep = rows | {n for n in wanted if n != "rss"}
    return [s for s in REGISTRY.values() if s.name in wanted], keep


def preflight(load: WrkLoad) -> None:
    """One plain request: a route that is not built yet makes the scenario a skip."""
    try:
        reply = httpx.request(load.method, load.url, headers=dict(load.headers),
                              content=load.body, timeout=10.0)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"{load.method} {load.url}: {type(exc).__name__}: {exc}") from exc
    if reply.status_code in NOT_BUILT:
        path = urlsplit(load.url).path or "/"
        raise Skip(f"{load.method} {path} answers {reply.status_code} "
                   f"({NOT_BUILT[reply.status_code]}): not built yet")


def measure(sc: Scenario, ctx: Context, wrk_path: str | None) -> list[Result]:
    """Set up, warm up and measure one scenario; its setup's resources are released after."""
    with ctx.stack:
        try:
            load = sc.setup(ctx)
            if isinstance(load, Values):
                return [Result(name, value=value, unit=unit) for name, value, unit in load.values]
            warm = RunSpec(warmup_seconds(ctx.seconds), ctx.connections, warmup=True)
            spec = RunSpec(ctx.seconds, ctx.connections)
            progress(f"==> {sc.name}: {ctx.seconds}s at c={ctx.connections} "
                     f"(after a {warm.seconds}s warm-up)")
            result, cpu_us = _load(load, warm, spec, wrk_path, ctx.processes)
        except Skip as exc:
            progress(f"    {sc.name}: skipped: {exc}")
            return [Result(sc.name, baseline=sc.baseline, skipped=str(exc))]
        except (KeyboardInterrupt, BenchError):
            raise
        except Exception as exc:  # one broken scenario must not lose the others' numbers
            reason = f"{type(exc).__name__}: {exc}".strip()
            progress(f"    {sc.name}: FAILED: {reason}")
            return [Result(sc.name, baseline=sc.baseline, failed=reason)]
    progress(f"    {sc.name}: {result.rate:,.1f} {result.unit}, p50 {result.p50_ms or 0:.2f} ms, "
             f"p99 {result.p99_ms or 0:.2f} ms, {result.errors} errors")
    if cpu_us:
        progress("      CPU per operation: " + ", ".join(f"{name} {us:,.0f} us"
                                                        for name, us in cpu_us.items()))
    row = Result.measured(sc.name, result, sc.baseline)
    row.cpu_us = cpu_us or None
    return [row]


def _load(load: WrkLoad | PyLoad, warm: RunSpec, spec: RunSpec, wrk_path: str | None,
          processes: Callable[[], dict[str, int]]) -> tuple[Measurement, dict[str, float]]:
    """Warm up, then measure; the CPU the serving processes spent is read around the real run."""
    if isinstance(load, PyLoad):
        load.run(warm)
        pids = processes()
        before = cpu.snapshot(pids)
        result = load.run(spec)
    else:
        if wrk_path is None:
            wrk_path = wrk.find_wrk()
        if load.preflight:
            preflight(load)
        wrk.run(wrk_path, load, seconds=warm.seconds, connections=warm.connections)
        pids = processes()
        before = cpu.snapshot(pids)
        result = wrk.run(wrk_path, load, seconds=spec.seconds, connections=spec.connections)
    return result, cpu.per_op_us(before, cpu.snapshot(pids), result.requests)


@contextlib.contextmanager
def _platform(opts: Options, needed: bool) -> Iterator[tuple[str | None, LocalPlatform | None,
                                                             dict[str, str]]]:
    if opts.url is not None:
        yield opts.url.rstrip("/"), None, python_env()
    elif needed:
        with private_platform() as platform:
            yield platform.url, platform, dict(platform.env)
    else:
        yield None, None, python_env()


def run(opts: Options) -> list[Result]:
    """Every selected scenario, idle ones first; results in registration order."""
    chosen, keep = select(opts.only)
    # wrk is looked up (or installed) before anything starts, so a missing tool fails fast.
    wrk_path = wrk.find_wrk()
    needs_platform = any(s.needs_platform for s in chosen)
    by_name: dict[str, list[Result]] = {}
    with (tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp,
          _platform(opts, needs_platform) as (url, platform, env)):
        for sc in sorted(chosen, key=lambda s: not s.idle):
            seconds = opts.seconds or sc.seconds or DEFAULT_SECONDS
            ctx = Context(url=url, env=env, platform=platform, workdir=Path(tmp),
                          connections=sc.connections or opts.connections, seconds=seconds)
            by_name[sc.name] = measure(sc, ctx, wrk_path)
    results = [r for s in chosen for r in by_name[s.name]]
    if keep is not None:
        results = [r for r in results if r.name in keep]
    fill_ratios(results)
    return results
