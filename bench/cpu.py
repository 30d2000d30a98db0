"""CPU time per operation, per platform process: the cost of a request, not its speed.

Throughput and latency on a 2-core machine move with whatever else runs on it;
the CPU a process spends per request hardly does. The runner reads each
platform process's user+system time (`/proc/<pid>/stat`) just before and just
after a scenario's measured run and divides by the operations it completed, so
a table row also says where a request's cost goes (gateway, sessions, auth...)
and two commits compare fairly even on a busy machine. The load generator
(wrk, or the benchmark's own clients) and PostgreSQL are not counted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

PROC = Path("/proc")
# Below this much CPU in the whole run, or this share of the row's total, a process's
# figure is its own background work (pollers, heartbeats), not the cost of the operation.
MIN_SECONDS = 0.02
MIN_SHARE = 0.01


def cpu_seconds(pid: int, proc: Path = PROC) -> float | None:
    """User + system CPU seconds of `pid` so far; None when it is gone or there is no /proc."""
    try:
        raw = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = raw.rsplit(")", 1)[-1].split()
    try:
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    except (IndexError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def snapshot(pids: Mapping[str, int], proc: Path = PROC) -> dict[str, float]:
    """CPU seconds of every named process that can be read."""
    out = {}
    for name, pid in pids.items():
        seconds = cpu_seconds(pid, proc)
        if seconds is not None:
            out[name] = seconds
    return out


def per_op_us(before: Mapping[str, float], after: Mapping[str, float],
              operations: int) -> dict[str, float]:
    """Microseconds of CPU per operation for each process that did measurable work."""
    if operations <= 0:
        return {}
    costs = {}
    for name, start in before.items():
        end = after.get(name)
        if end is None or end - start < MIN_SECONDS:
            continue
        costs[name] = (end - start) / operations * 1e6
    total = sum(costs.values())
    return {name: us for name, us in sorted(costs.items(), key=lambda item: -item[1])
            if us >= MIN_SHARE * total}
