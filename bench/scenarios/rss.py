"""Idle resident memory of every platform process, read before any load runs."""

from __future__ import annotations

from pathlib import Path

from bench.registry import Context, Load, Skip, Values, scenario

# Stand-ins imitate GitHub and an LLM provider: they are test equipment, not Tandem.
STANDINS = frozenset({"github", "openai"})


def rss_mb(pid: int) -> float:
    """VmRSS of a live process in MB (the kernel reports kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for pid {pid}")


@scenario("rss", idle=True)
def rss(ctx: Context) -> Load:
    """One `rss_<process>` row per platform process, in MB."""
    if ctx.platform is None:
        raise Skip("the platform was not started by the benchmark (--url)")
    if not Path("/proc/self/status").exists():
        raise Skip("no /proc on this system")
    return Values([(f"rss_{name}", rss_mb(proc.pid), "MB")
                   for name, proc in ctx.platform.procs.items() if name not in STANDINS])
