"""The built-in analyzer's worker processes die with the ai service that started them,
also when the service is killed with SIGKILL (no shutdown code runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _children(pid: int) -> set[int]:
    """Processes whose parent is `pid` (from /proc: Linux, as the service's deployments)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("PPid:") and int(line.split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead child waits for its new parent to reap it)."""
    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return False
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")),
                 "")
    return state not in ("Z", "X")


def _wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_analyzer_workers_exit_when_the_service_is_killed(
        base_env: dict[str, str], tmp_path: Path) -> None:
    env = {**base_env, "AI_GRPC_PORT": "0", "AI_METRICS_PORT": "0", "AI_ANALYZER_PROCESSES": "2"}
    log = (tmp_path / "ai.log").open("wb")
    service = subprocess.Popen([sys.executable, "-m", "services.ai"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    started: set[int] = set()
    try:
        workers: set[int] = set()

        def warmed_up() -> bool:
            # The warm-up starts both workers (multiprocessing's spawn children).
            workers.update(p for p in _children(service.pid)
                           if "spawn_main" in _cmdline(p) and _running(p))
            assert service.poll() is None, (tmp_path / "ai.log").read_text()[-2000:]
            return len(workers) == 2

        _wait_for("two analyzer workers", warmed_up, 60)
        started.update(_children(service.pid))
        assert workers <= started
        service.send_signal(signal.SIGKILL)
        assert service.wait(10) == -signal.SIGKILL
        # Every process the service started (the workers, and multiprocessing's resource
        # tracker, which lives as long as a worker holds its pipe) ends on its own.
        _wait_for("the service's processes to exit",
                  lambda: not any(_running(p) for p in started), 10)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(10)
        for pid in started:
            # Do not leave a failed run's orphans behind (they are this test's own).
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()
