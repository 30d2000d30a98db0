"""CPU per operation: read from /proc for real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import cpu

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def test_a_busy_process_is_charged_and_an_idle_one_is_left_out() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.3)  # both started; the idle one has done its imports
        pids = {"busy": busy.pid, "idle": idle.pid}
        before = cpu.snapshot(pids)
        time.sleep(0.5)
        after = cpu.snapshot(pids)
    finally:
        for proc in (busy, idle):
            proc.kill()
            proc.wait()
    costs = cpu.per_op_us(before, after, operations=1000)
    assert set(costs) == {"busy"}
    # Half a second of a spinning process, over 1,000 operations: up to ~500 us each.
    assert 50 < costs["busy"] < 700


def test_gone_processes_and_empty_runs_are_not_costed(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text("42 (odd) name) S " + " ".join(["0"] * 10) + " 300 100 0")
    assert cpu.cpu_seconds(42, tmp_path) == pytest.approx(400 / cpu.os.sysconf("SC_CLK_TCK"))
    assert cpu.snapshot({"gone": 43}, tmp_path) == {}
    assert cpu.per_op_us({"a": 1.0}, {"a": 2.0}, operations=0) == {}
    assert cpu.per_op_us({"a": 1.0}, {}, operations=10) == {}
    # A poller's own background work is left out next to the process doing the real work.
    assert cpu.per_op_us({"gateway": 0.0, "ai": 0.0}, {"gateway": 10.0, "ai": 0.05},
                         operations=10_000) == {"gateway": 1000.0}
