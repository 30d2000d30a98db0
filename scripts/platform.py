"""The platform's process list, and a launcher that runs it as real local processes.

`make run` hands the same process list to honcho; tests and the benchmark use
`LocalPlatform` to start, kill and restart individual processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("auth", "sessions", "review", "ai")
DEFAULT_GRPC = {"auth": 50051, "sessions": 50052, "review": 50053, "ai": 50054}
DEFAULT_METRICS = {"auth": 9101, "sessions": 9102, "review": 9103, "ai": 9104}




def free_ports(count: int) -> list[int]:
    """`count` different free ports: every socket stays bound until all are picked.

    Picking them one by one (bind to 0, close, repeat) can hand out the same port twice,
    and a platform whose two processes were given one port fails to start.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port() -> int:
    return free_ports(1)[0]


def site_root(url: str) -> str:
    """scheme://host[:port]/ of a URL (PUBLIC_URL's origin, as a callback URL)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


@dataclass(frozen=True)
class Ports:
    gateway: int
    grpc: dict[str, int]
    metrics: dict[str, int]
    github: int
    openai: int

    @classmethod
    def defaults(cls, env: Mapping[str, str]) -> Ports:
        def port(name: str, default: int) -> int:
            return int(env.get(name) or default)
        return cls(
            gateway=port("GATEWAY_PORT", 8080),
            grpc={s: port(f"{s.upper()}_GRPC_PORT", p) for s, p in DEFAULT_GRPC.items()},
            metrics={s: port(f"{s.upper()}_METRICS_PORT", p) for s, p in DEFAULT_METRICS.items()},
            github=port("GITHUB_STANDIN_PORT", 9900),
            openai=port("OPENAI_STANDIN_PORT", 9901),
        )

    @classmethod
    def free(cls) -> Ports:
        ports = iter(free_ports(3 + 2 * len(SERVICES)))
        return cls(gateway=next(ports), grpc={s: next(ports) for s in SERVICES},
                   metrics={s: next(ports) for s in SERVICES}, github=next(ports),
                   openai=next(ports))


@dataclass(frozen=True)
class ProcSpec:
    name: str
    argv: list[str]
    env: dict[str, str]


def platform_env(base: Mapping[str, str], ports: Ports, *, github_standin: bool,
                 openai_standin: bool) -> dict[str, str]:
    """The environment every platform process gets: addresses and ports agree by construction."""
    env = dict(base)
    env["GATEWAY_PORT"] = str(ports.gateway)
    for svc in SERVICES:
        env[f"{svc.upper()}_GRPC_PORT"] = str(ports.grpc[svc])
        env[f"{svc.upper()}_METRICS_PORT"] = str(ports.metrics[svc])
        env[f"{svc.upper()}_ADDR"] = f"127.0.0.1:{ports.grpc[svc]}"
    env.setdefault("PUBLIC_URL", f"http://127.0.0.1:{ports.gateway}")
    # A local platform (make run, tests, benchmarks) is development: the processes accept
    # the local default secrets the stand-ins use. A caller may still say otherwise.
    env.setdefault("TANDEM_ENV", "development")
    if github_standin:
        standin = f"http://127.0.0.1:{ports.github}"
        env["GITHUB_STANDIN_PORT"] = str(ports.github)
        env["GITHUB_OAUTH_URL"] = standin
        env["GITHUB_API_URL"] = standin
        env.setdefault("GITHUB_CLIENT_ID", "tandem-local")
        env.setdefault("GITHUB_CLIENT_SECRET", "tandem-local-secret")
        env.setdefault("GITHUB_WEBHOOK_SECRET", "tandem-local-webhook-secret")
        # The OAuth app's registered callback is the site root, as docs/operations.md asks of
        # a real GitHub OAuth app: the web app's /auth/callback and the API's
        # /api/v1/auth/github/callback both fit under it.
        env.setdefault("GITHUB_CALLBACK_URL", site_root(env["PUBLIC_URL"]))
        env["GITHUB_WEBHOOK_URL"] = f"http://127.0.0.1:{ports.gateway}/api/v1/webhooks/github"
    if openai_standin:
        env["OPENAI_STANDIN_PORT"] = str(ports.openai)
        env.setdefault("OPENAI_BASE_URL", f"http://127.0.0.1:{ports.openai}/v1")
        env.setdefault("OPENAI_API_KEY", "sk-tandem-local")
        env.setdefault("OPENAI_MODEL", "tandem-review-1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def process_specs(env: Mapping[str, str], *, github_standin: bool, openai_standin: bool,
                  python: str = sys.executable) -> list[ProcSpec]:
    specs: list[ProcSpec] = []
    if github_standin:
        specs.append(ProcSpec("github", [python, "-m", "standins.github"], dict(env)))
    if openai_standin:
        specs.append(ProcSpec("openai", [python, "-m", "standins.openai"], dict(env)))
    specs += [ProcSpec(svc, [python, "-m", f"services.{svc}"], dict(env)) for svc in SERVICES]
    specs.append(ProcSpec("gateway", [python, "-m", "gateway"], dict(env)))
    return specs


def wait_ready(url: str, timeout: float, *, what: str = "/ready") -> None:
    """Poll `url` until it answers 200; raise with the last answer when the deadline passes."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            try:
                reply = client.get(url)
                if reply.status_code == 200:
                    return
                last = f"{reply.status_code} {reply.text[:300]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s: {last}")


@dataclass
class LocalPlatform:
    """Runs the platform's processes as children; each can be stopped and restarted alone."""

    env: dict[str, str]
    ports: Ports
    github_standin: bool = True
    openai_standin: bool = True
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tandem-logs-")))
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    specs: dict[str, ProcSpec] = field(default_factory=dict)

    @classmethod
    def create(cls, base_env: Mapping[str, str], *, github_standin: bool = True,
               openai_standin: bool = True) -> LocalPlatform:
        ports = Ports.free()
        env = platform_env(base_env, ports, github_standin=github_standin,
                           openai_standin=openai_standin)
        platform = cls(env=env, ports=ports, github_standin=github_standin,
                       openai_standin=openai_standin)
        for spec in process_specs(env, github_standin=github_standin, openai_standin=openai_standin):
            platform.specs[spec.name] = spec
        return platform

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    def start(self, names: list[str] | None = None) -> None:
        for name in names or list(self.specs):
            spec = self.specs[name]
            log = (self.log_dir / f"{name}.log").open("ab")
            self.procs[name] = subprocess.Popen(
                spec.argv, env=spec.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()

    def add_gateway(self, name: str) -> int:
        """Another gateway replica on a new port, sharing services and Redis."""
        port = free_port()
        env = dict(self.specs["gateway"].env, GATEWAY_PORT=str(port))
        self.specs[name] = ProcSpec(name, [sys.executable, "-m", "gateway"], env)
        self.start([name])
        return port

    def wait_ready(self, timeout: float = 60.0) -> None:
        try:
            wait_ready(self.url + "/ready", timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.tail_logs()}") from None

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop_all(self) -> None:
        # Gateway first so clients see a clean close, then services, then stand-ins.
        order = sorted(self.procs, key=lambda n: (not n.startswith("gateway"), n in ("github", "openai")))
        for name in order:
            self.stop(name)

    def tail_logs(self, lines: int = 15) -> str:
        out = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def __enter__(self) -> LocalPlatform:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


@contextlib.contextmanager
def running(base_env: Mapping[str, str], timeout: float = 60.0, **kwargs: bool) -> Iterator[LocalPlatform]:
    platform = LocalPlatform.create(base_env, **kwargs)
    with platform:
        platform.wait_ready(timeout)
        yield platform


def python_env() -> dict[str, str]:
    """The current environment with gen/ importable, for child processes."""
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "gen")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env
