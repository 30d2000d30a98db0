"""`make run`: the whole platform on one machine, with private PostgreSQL/Redis when none answer.

Also `--deps-only` (used by `make test` and `make bench`): make sure PostgreSQL
and Redis answer and write the URLs to use, plus local secrets, to .data/local.env.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shlex
import sys
import threading
import time
from collections.abc import Callable

import httpx
from honcho.environ import parse as _honcho_parse
from honcho.manager import Manager
from honcho.printer import Printer

from scripts import devdeps
from scripts.platform import ROOT, Ports, platform_env, process_specs

DATA = ROOT / ".data"
LOCAL_ENV = DATA / "local.env"
SECRETS_ENV = DATA / "secrets.env"

BOLD, YELLOW, GREEN, RED, RESET = "\033[1m", "\033[33m", "\033[32m", "\033[31m", "\033[0m"


def parse_env(text: str) -> dict[str, str]:
    """KEY=value lines, parsed the way honcho parses .env files."""
    parsed: dict[str, str] = _honcho_parse(text)
    return parsed


def say(message: str, color: str = "") -> None:
    print(f"{color}{message}{RESET if color else ''}", file=sys.stderr, flush=True)


def load_env() -> dict[str, str]:
    """.env values, overridden by the real environment (so `VAR=x make run` wins)."""
    env: dict[str, str] = {}
    dotenv = ROOT / ".env"
    if dotenv.exists():
        env.update(parse_env(dotenv.read_text()))
    env.update(os.environ)
    return env


def local_secrets() -> dict[str, str]:
    """Secrets generated once per checkout for local use, kept in .data/ (git-ignored)."""
    DATA.mkdir(exist_ok=True)
    values = parse_env(SECRETS_ENV.read_text()) if SECRETS_ENV.exists() else {}
    wanted: dict[str, Callable[[], str]] = {
        "TOKEN_ENCRYPTION_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        "SERVICE_TOKEN": lambda: secrets.token_urlsafe(32),
    }
    changed = False
    for key, make in wanted.items():
        if not values.get(key):
            values[key] = make()
            changed = True
    if changed:
        SECRETS_ENV.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        SECRETS_ENV.chmod(0o600)
    return values


def with_secrets(env: dict[str, str]) -> dict[str, str]:
    for key, value in local_secrets().items():
        env.setdefault(key, value)
    return env


def write_local_env(values: dict[str, str]) -> None:
    DATA.mkdir(exist_ok=True)
    LOCAL_ENV.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items()))
    LOCAL_ENV.chmod(0o600)


def deps_only(env: dict[str, str]) -> None:
    """Ensure PostgreSQL and Redis answer (private detached ones otherwise) and record the URLs."""
    db_url = env.get("DATABASE_URL") or devdeps.DEFAULT_DATABASE_URL
    redis_url = env.get("REDIS_URL") or devdeps.DEFAULT_REDIS_URL
    try:
        pg = devdeps.ensure_postgres(db_url)
        rd = devdeps.ensure_redis(redis_url)
    except devdeps.DevDepsError as exc:
        say(f"error: {exc}", RED)
        raise SystemExit(1) from None
    values = {"DATABASE_URL": pg.url, "REDIS_URL": rd.url, **local_secrets()}
    write_local_env(values)
    if pg.started or rd.started:
        say("private servers keep running for the next command; stop them with "
            "`.venv/bin/python -m scripts.devdeps stop`")


def _watch_ready(url: str, timeout: float, standin: bool, stop: threading.Event) -> None:
    start = time.monotonic()
    last = ""
    with httpx.Client(timeout=2.0) as client:
        while not stop.is_set():
            try:
                reply = client.get(url + "/ready")
                if reply.status_code == 200:
                    took = time.monotonic() - start
                    say(f"\n{GREEN}{BOLD}Tandem is ready at {url}{RESET}  (started in {took:.1f}s)")
                    say(f"  web app       {url}/")
                    say(f"  API docs      {url}/docs")
                    say(f"  API sign-in   {url}/api/v1/auth/github/login")
                    if standin:
                        say("  (GitHub is the local stand-in: pick octocat, hubot or monalisa)")
                    say("  Ctrl-C stops everything\n")
                    return
                down = {k: v.get("reason", "") for k, v in reply.json().get("checks", {}).items()
                        if v.get("status") != "up"}
                last = ", ".join(f"{k}: {v}" for k, v in down.items())
            except (httpx.HTTPError, ValueError) as exc:
                last = f"gateway not answering yet ({type(exc).__name__})"
            if time.monotonic() - start > timeout:
                say(f"still not ready after {timeout:.0f}s — {last}. Check the process output "
                    "above; `make deps` checks PostgreSQL/Redis on their own.", RED)
                return
            stop.wait(0.5)


def run(env: dict[str, str]) -> int:
    env = with_secrets(env)
    env.setdefault("LOG_FORMAT", "console")
    manager = Manager(Printer(sys.stdout))
    db_url = env.get("DATABASE_URL") or devdeps.DEFAULT_DATABASE_URL
    redis_url = env.get("REDIS_URL") or devdeps.DEFAULT_REDIS_URL
    waits: list[tuple[str, str]] = []
    reason = devdeps.probe_postgres(db_url)
    if reason is not None:
        # The server may answer but lack the database: ensure_postgres creates it then.
        try:
            pg = devdeps.ensure_postgres(db_url) if "does not exist" in reason else None
        except devdeps.DevDepsError:
            pg = None
        if pg is not None:
            db_url = pg.url
        else:
            say(f"no PostgreSQL at {db_url.split('@')[-1]} ({reason}); starting a private one "
                "in .data/postgres", YELLOW)
            cmd = devdeps.postgres_command(db_url)
            manager.add_process("postgres", cmd.shell(), env={**env, **cmd.env})
            db_url = cmd.url
            waits.append(("postgres", cmd.url))
    else:
        say(f"using PostgreSQL at {db_url.split('@')[-1]}")
    if devdeps.probe_redis(redis_url) is not None:
        say(f"no Redis at {redis_url}; starting a private one in .data/redis", YELLOW)
        rcmd = devdeps.redis_command(redis_url)
        manager.add_process("redis", rcmd.shell(), env={**env, **rcmd.env})
        redis_url = rcmd.url
        waits.append(("redis", rcmd.url))
    else:
        say(f"using Redis at {redis_url}")
    env["DATABASE_URL"], env["REDIS_URL"] = db_url, redis_url

    github_standin = not env.get("GITHUB_CLIENT_ID")
    openai_standin = not env.get("OPENAI_BASE_URL")
    if github_standin:
        say("=" * 78, YELLOW)
        say("  GITHUB_CLIENT_ID is not set: using the LOCAL GITHUB STAND-IN.", YELLOW + BOLD)
        say("  It signs anyone in as any login. For local development only — set", YELLOW)
        say("  GITHUB_CLIENT_ID/GITHUB_CLIENT_SECRET (see .env.example) for real GitHub.", YELLOW)
        say("=" * 78, YELLOW)
    ports = Ports.defaults(env)
    penv = platform_env(env, ports, github_standin=github_standin, openai_standin=openai_standin)
    for spec in process_specs(penv, github_standin=github_standin, openai_standin=openai_standin):
        # exec: the process replaces the shell, so honcho's SIGTERM reaches it and it drains.
        manager.add_process(spec.name, "exec " + shlex.join(spec.argv), env=spec.env,
                            cwd=str(ROOT))

    stop = threading.Event()

    def after_deps() -> None:
        for name, url in waits:
            try:
                if name == "postgres":
                    devdeps.wait_for_postgres(url)
                else:
                    devdeps.wait_for_redis(url)
            except devdeps.DevDepsError as exc:
                say(f"private {name} did not come up: {exc}", RED)
                return
        _watch_ready(f"http://127.0.0.1:{ports.gateway}", 120.0, github_standin, stop)

    watcher = threading.Thread(target=after_deps, daemon=True)
    watcher.start()
    say(f"starting {len(manager._processes)} processes …")
    manager.loop()
    stop.set()
    return manager.returncode or 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--deps-only", action="store_true",
                        help="only make sure PostgreSQL and Redis answer; write .data/local.env")
    args = parser.parse_args()
    env = load_env()
    if args.deps_only:
        deps_only(env)
        return
    raise SystemExit(run(env))


if __name__ == "__main__":
    main()
