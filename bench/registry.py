"""The scenario registry: what a scenario declares, what it returns, and the result shape."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scripts.platform import LocalPlatform

DEFAULT_UNIT = "req/s"


class Skip(Exception):  # named like pytest.skip: `raise Skip("why")` reads as intended
    """Raised by a scenario's setup when its prerequisites are not there yet."""


@dataclass(frozen=True)
class RunSpec:
    """How long and how wide one run of a scenario is."""

    seconds: int
    connections: int
    warmup: bool = False


@dataclass(frozen=True)
class Measurement:
    """What one run produced; wrk runs and Python-measured runs both end up here."""

    requests: int
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    unit: str = DEFAULT_UNIT

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class WrkLoad:
    """A load wrk generates: one request shape, or a Lua script of the scenario's own.

    `script` may define `init`, `request` and `response`-free helpers; it must not define
    `setup` or `done`, which the report hook (bench/lua/report.lua) owns.
    """

    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    script: Path | None = None
    # One plain request is sent first: a 404/405/501 answer means "not built yet" (skipped).
    preflight: bool = True


@dataclass(frozen=True)
class PyLoad:
    """A load measured by Python code (WebSocket clients, timed operations).

    `run` is called once with `RunSpec(warmup=True)` (result discarded), then for real.
    """

    run: Callable[[RunSpec], Measurement]


@dataclass(frozen=True)
class Values:
    """Point values measured once, without load (idle RSS): one table row per entry."""

    values: Sequence[tuple[str, float, str]]  # (result name, value, unit)


Load = WrkLoad | PyLoad | Values


@dataclass
class Context:
    """What a scenario's setup gets: where the platform is and how to leave nothing behind."""

    url: str | None
    env: dict[str, str]
    platform: LocalPlatform | None
    workdir: Path
    connections: int
    seconds: int
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    helpers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        """The gateway's base URL; only scenarios with `needs_platform=True` may ask."""
        if self.url is None:
            raise RuntimeError("this scenario did not declare needs_platform=True")
        return self.url

    def defer(self, callback: Callable[[], Any]) -> None:
        """Run `callback` when this scenario is over (last registered runs first)."""
        self.stack.callback(callback)

    def start_process(self, argv: Sequence[str], *, name: str,
                      env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A helper process (e.g. a baseline server) that is stopped when the scenario ends."""
        log = (self.workdir / f"{name}.log").open("ab")
        with log:
            # Own session: a Ctrl-C on the terminal reaches us, and we stop it in order.
            proc = subprocess.Popen(list(argv), env=dict(env or self.env), stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.defer(lambda: stop_process(proc))
        self.helpers[name] = proc
        return proc

    def processes(self) -> dict[str, int]:
        """Pids of what serves this scenario: the platform's processes and its own helpers."""
        pids = {name: proc.pid for name, proc in (self.platform.procs if self.platform else {}).items()
                if proc.poll() is None}
        pids.update({name: proc.pid for name, proc in self.helpers.items() if proc.poll() is None})
        return pids


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


Setup = Callable[[Context], Load]


@dataclass(frozen=True)
class Scenario:
    name: str
    setup: Setup
    baseline: str | None = None
    needs_platform: bool = True
    connections: int | None = None  # None: the command line's --connections
    seconds: int | None = None  # None: --seconds / BENCH_SECONDS / the default
    idle: bool = False  # measured before any load runs (idle RSS)
    description: str = ""


REGISTRY: dict[str, Scenario] = {}


def scenario(name: str, *, baseline: str | None = None, needs_platform: bool = True,
             connections: int | None = None, seconds: int | None = None,
             idle: bool = False) -> Callable[[Setup], Setup]:
    """Register `setup` as scenario `name`; the table lists scenarios in registration order."""

    def register(setup: Setup) -> Setup:
        if name in REGISTRY:
            raise ValueError(f"scenario {name!r} registered twice")
        doc = (setup.__doc__ or "").strip().splitlines()
        REGISTRY[name] = Scenario(name, setup, baseline, needs_platform, connections, seconds,
                                  idle, doc[0] if doc else "")
        return setup

    return register


@dataclass
class Result:
    """One table row and one entry of the JSON `scenarios` list."""

    name: str
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int | None = None
    baseline: str | None = None
    ratio: float | None = None
    unit: str = DEFAULT_UNIT
    value: float | None = None
    skipped: str | None = None
    failed: str | None = None
    # CPU microseconds per operation by process (bench/cpu.py); None when not measured.
    cpu_us: dict[str, float] | None = None

    @property
    def cpu_total_us(self) -> float | None:
        return None if not self.cpu_us else sum(self.cpu_us.values())

    @classmethod
    def measured(cls, name: str, m: Measurement, baseline: str | None) -> Result:
        return cls(name, rps=m.rate, p50_ms=m.p50_ms, p99_ms=m.p99_ms, errors=m.errors,
                   baseline=baseline, unit=m.unit)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "rps": _round(self.rps, 1),
            "p50_ms": _round(self.p50_ms, 3),
            "p99_ms": _round(self.p99_ms, 3),
            "errors": self.errors,
            "baseline": self.baseline,
            "ratio": _round(self.ratio, 3),
        }
        if self.value is not None:
            out["value"] = _round(self.value, 1)
            out["unit"] = self.unit
        elif self.unit != DEFAULT_UNIT:
            out["unit"] = self.unit
        if self.cpu_us:
            out["cpu_us_per_op"] = {name: round(us, 1) for name, us in self.cpu_us.items()}
        if self.skipped is not None:
            out["skipped"] = self.skipped
        if self.failed is not None:
            out["failed"] = self.failed
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        return cls(name=str(data["name"]), rps=data.get("rps"), p50_ms=data.get("p50_ms"),
                   p99_ms=data.get("p99_ms"), errors=data.get("errors"),
                   baseline=data.get("baseline"), ratio=data.get("ratio"),
                   unit=str(data.get("unit") or DEFAULT_UNIT), value=data.get("value"),
                   skipped=data.get("skipped"), failed=data.get("failed"),
                   cpu_us=dict(data["cpu_us_per_op"]) if data.get("cpu_us_per_op") else None)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def fill_ratios(results: list[Result]) -> None:
    """Ratio = throughput / the baseline's throughput, both from this same run."""
    by_name = {r.name: r for r in results}
    for result in results:
        base = by_name.get(result.baseline or "")
        if result.rps is not None and base is not None and base.rps:
            result.ratio = result.rps / base.rps
