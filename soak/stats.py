"""What a soak run measures: errors, latencies per minute, and each process's memory."""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The latency kinds, in the order the report shows them.
KINDS = ("rest", "chat.ack", "chat.delivery", "doc.delivery", "ai.job")


def percentile(samples: list[float], p: float) -> float | None:
    """Nearest-rank percentile (the value a `p`% share of samples do not exceed), or None."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


@dataclass
class Recorder:
    """Latencies bucketed by minute since the start, and every error by kind."""

    start: float = field(default_factory=time.monotonic)
    latencies: dict[tuple[int, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def minute(self) -> int:
        return int((time.monotonic() - self.start) // 60)

    def observe(self, kind: str, seconds: float) -> None:
        self.latencies[(self.minute(), kind)].append(seconds)
        self.counts[kind] += 1

    def error(self, kind: str, example: str = "") -> None:
        self.errors[kind] += 1
        if kind not in self.examples and example:
            self.examples[kind] = example[:300]

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def minutes(self) -> list[int]:
        return sorted({minute for minute, _ in self.latencies})

    def table(self) -> list[dict[str, Any]]:
        """One row per minute: count and p50/p99 (ms) per kind."""
        rows = []
        for minute in self.minutes():
            row: dict[str, Any] = {"minute": minute + 1}
            for kind in KINDS:
                samples = self.latencies.get((minute, kind), [])
                p50, p99 = percentile(samples, 50), percentile(samples, 99)
                row[kind] = {"count": len(samples),
                             "p50_ms": None if p50 is None else round(p50 * 1000, 1),
                             "p99_ms": None if p99 is None else round(p99 * 1000, 1)}
            rows.append(row)
        return rows


def rss_kib(pid: int) -> int | None:
    """Resident set size of a process in KiB (Linux /proc, else `ps`); None when it is gone."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None
    ps = shutil.which("ps")
    if ps is None:
        return None
    # Our own child's pid, given to `ps` found on PATH: no untrusted input.
    done = subprocess.run([ps, "-o", "rss=", "-p", str(pid)],
                          capture_output=True, text=True, check=False)
    text = done.stdout.strip()
    return int(text) if text.isdigit() else None


@dataclass
class Memory:
    """RSS samples per process: the baseline once warm, the last one, and the peak."""

    pids: dict[str, int]
    warm: dict[str, int] = field(default_factory=dict)
    last: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    cold: dict[str, int] = field(default_factory=dict)

    def sample(self, *, warm: bool) -> None:
        for name, pid in self.pids.items():
            value = rss_kib(pid)
            if value is None:
                continue
            self.cold.setdefault(name, value)
            if warm:
                self.warm.setdefault(name, value)
                self.last[name] = value
                self.peak[name] = max(self.peak.get(name, 0), value)

    def growth(self, name: str) -> float | None:
        if name not in self.warm or name not in self.last:
            return None
        return (self.last[name] - self.warm[name]) / self.warm[name] * 100

    def rows(self) -> list[dict[str, Any]]:
        return [{"process": name, "rss_cold_kib": self.cold.get(name),
                 "rss_start_kib": self.warm.get(name), "rss_end_kib": self.last.get(name),
                 "rss_peak_kib": self.peak.get(name),
                 "growth_pct": None if self.growth(name) is None else round(self.growth(name) or 0.0, 1)}
                for name in self.pids]


def render(recorder: Recorder, memory: Memory, *, seconds: float, max_growth: float,
           checks: dict[str, Any]) -> str:
    """The report printed at the end of a run."""
    out = [f"soak: {seconds / 60:.1f} min, {sum(recorder.counts.values())} timed operations "
           f"({', '.join(f'{k} {recorder.counts[k]}' for k in KINDS if recorder.counts[k])})", ""]
    out.append("errors: " + (str(recorder.error_count) if recorder.error_count else "0"))
    for kind, count in recorder.errors.most_common():
        out.append(f"  {count:6d}  {kind}" + (f"  e.g. {recorder.examples[kind]}"
                                               if kind in recorder.examples else ""))
    out += ["", "latency per minute, p50 / p99 in ms (count):"]
    header = f"  {'min':>3}" + "".join(f"  {kind:>24}" for kind in KINDS)
    out.append(header)
    for row in recorder.table():
        cells = []
        for kind in KINDS:
            cell = row[kind]
            cells.append("-" if not cell["count"] else
                         f"{cell['p50_ms']:.0f} / {cell['p99_ms']:.0f} ({cell['count']})")
        out.append(f"  {row['minute']:>3}" + "".join(f"  {c:>24}" for c in cells))
    out += ["", f"memory (RSS, MiB): start = once warm, end = last sample; growth limit {max_growth:g} %"]
    out.append(f"  {'process':<10} {'cold':>8} {'start':>8} {'end':>8} {'peak':>8} {'growth':>8}")
    for row in memory.rows():
        def mib(value: int | None) -> str:
            return "-" if value is None else f"{value / 1024:.1f}"
        growth = "-" if row["growth_pct"] is None else f"{row['growth_pct']:+.1f}%"
        out.append(f"  {row['process']:<10} {mib(row['rss_cold_kib']):>8} {mib(row['rss_start_kib']):>8} "
                   f"{mib(row['rss_end_kib']):>8} {mib(row['rss_peak_kib']):>8} {growth:>8}")
    out += ["", "end-of-run checks:"]
    out += [f"  {name}: {value}" for name, value in checks.items()]
    return "\n".join(out)
