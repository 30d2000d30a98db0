"""Running wrk: finding or installing it, building its Lua script, parsing its report line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.registry import Measurement, WrkLoad

LUA_DIR = Path(__file__).resolve().parent / "lua"
REPORT_LUA = LUA_DIR / "report.lua"
REPORT_PREFIX = "BENCH_REPORT "
THREADS = 2  # fixed: one per core of the reference machine; results stay comparable
INSTALL_HINT = "wrk is not installed: run `sudo apt-get install -y wrk` (Debian/Ubuntu)"


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no report line."""


@dataclass(frozen=True)
class WrkReport:
    """The numbers report.lua prints, latencies in microseconds as wrk keeps them."""

    requests: int
    duration_us: int
    p50_us: float
    p90_us: float
    p99_us: float
    max_us: float
    connect: int
    read: int
    write: int
    timeout: int
    status: int  # answers >= 400, counted by wrk itself
    other_status: int  # 1xx/3xx answers, counted by report.lua

    @property
    def errors(self) -> int:
        return (self.connect + self.read + self.write + self.timeout + self.status
                + self.other_status)

    def measurement(self) -> Measurement:
        return Measurement(requests=self.requests, seconds=self.duration_us / 1e6,
                           p50_ms=self.p50_us / 1000, p99_ms=self.p99_us / 1000,
                           errors=self.errors)


def parse_report(stdout: str) -> WrkReport:
    """The last report line in wrk's output; anything else wrk printed is ignored."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith(REPORT_PREFIX)]
    if not lines:
        tail = "\n".join(stdout.strip().splitlines()[-5:])
        raise WrkError(f"wrk printed no {REPORT_PREFIX.strip()} line; its output ended:\n{tail}")
    data = json.loads(lines[-1][len(REPORT_PREFIX):])
    return WrkReport(
        requests=int(data["requests"]), duration_us=int(data["duration_us"]),
        p50_us=float(data["p50_us"]), p90_us=float(data["p90_us"]),
        p99_us=float(data["p99_us"]), max_us=float(data["max_us"]),
        connect=int(data["connect"]), read=int(data["read"]), write=int(data["write"]),
        timeout=int(data["timeout"]), status=int(data["status"]),
        other_status=int(data.get("other_status", 0)),
    )


def find_wrk(*, install: bool = True) -> str:
    """wrk's path; as root on Debian it is installed on first use, otherwise a clear error."""
    path = shutil.which("wrk")
    if path:
        return path
    if install and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("==> wrk not found; installing it with apt-get", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")

        def apt(*args: str) -> int:
            return subprocess.run(["apt-get", *args], env=env, check=False,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode

        if apt("install", "-y", "wrk") != 0:
            # A fresh container often has no package lists yet.
            apt("update")
            apt("install", "-y", "wrk")
        path = shutil.which("wrk")
        if path:
            return path
    raise WrkError(INSTALL_HINT)


def lua_string(text: str) -> str:
    """A Lua string literal for any text: decimal escapes need no knowledge of the content."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        if 32 <= byte < 127 and char not in '"\\':
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def build_script(load: WrkLoad) -> str:
    """The request shape as Lua, then the scenario's own script, then the report hook."""
    parts = [f"wrk.method = {lua_string(load.method)}"]
    for name, value in load.headers.items():
        parts.append(f"wrk.headers[{lua_string(name)}] = {lua_string(value)}")
    if load.body is not None:
        parts.append(f"wrk.body = {lua_string(load.body)}")
    if load.script is not None:
        parts.append(load.script.read_text())
    parts.append(REPORT_LUA.read_text())
    return "\n".join(parts) + "\n"


def run(wrk: str, load: WrkLoad, *, seconds: int, connections: int) -> Measurement:
    """One wrk run; raises WrkError when wrk fails or prints no report."""
    threads = max(1, min(THREADS, connections))  # wrk refuses fewer connections than threads
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as script:
        script.write(build_script(load))
        script.flush()
        argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, seconds)}s",
                # A long timeout keeps slow answers in the latency histogram instead of
                # hiding them as timeout errors.
                "--timeout", "5s", "-s", script.name, load.url]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                                  timeout=seconds + 30)
        except subprocess.TimeoutExpired as exc:
            raise WrkError(f"wrk did not finish within {seconds + 30}s") from exc
    if proc.returncode != 0:
        raise WrkError(f"wrk exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}")
    return parse_report(proc.stdout).measurement()
