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
    # The idle one says when its start-up (imports) is over: from then on it only sleeps.
    idle = subprocess.Popen([sys.executable, "-c", "import time; print('ready', flush=True); "
                             "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert idle.stdout is not None
        assert idle.stdout.readline() == "ready\n"
        pids = {"busy": busy.pid, "idle": idle.pid}
        before = cpu.snapshot(pids)
        started = time.monotonic()
        # Until the spinning process has been charged a measurable 0.2 s (however busy
        # the machine is, it gets there): the window is what it used, not a fixed sleep.
        deadline = started + 60
        while (after := cpu.snapshot(pids))["busy"] - before["busy"] < 0.2:
            assert time.monotonic() < deadline, "the busy process was never scheduled"
            time.sleep(0.05)
        wall = time.monotonic() - started
    finally:
        for proc in (busy, idle):
            proc.kill()
            proc.wait()
        if idle.stdout is not None:
            idle.stdout.close()
    costs = cpu.per_op_us(before, after, operations=1000)
    assert set(costs) == {"busy"}
    # At least the 0.2 s waited for; at most the whole window on one core (a single
    # thread cannot run faster than the clock), give or take one clock tick.
    tick = 1 / cpu.os.sysconf("SC_CLK_TCK")
    assert 200 <= costs["busy"] <= (wall + tick) / 1000 * 1e6


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
