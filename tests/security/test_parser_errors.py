"""Requests aiohttp's own parser refuses still get the contract: standard body, headers, no echo.

Raw sockets: no HTTP library would send these bytes. And whatever such a request carried
(an Authorization header, a cookie, a token in the query) appears in no log line.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.platform import ProcSpec, free_port, wait_ready
from tests.reliability.support import FaultyWorld, poll
from tests.security.test_headers import BANNER

pytestmark = pytest.mark.e2e

# A word each hostile request carries; an answer that holds it echoed the request.
MARK = "zqxmarkzqx"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, str]:
        error: dict[str, str] = json.loads(self.body)["error"]
        return error


def raw_exchange(port: int, *parts: bytes, pause: float = 0.0, timeout: float = 10.0) -> Answer:
    """Send `parts` (waiting `pause` seconds between them), read the whole answer.

    The server closes the connection after refusing a request it cannot parse; the answer
    is read until then, or until `timeout` passes (which fails the test: a refusal that
    never comes is a hung handler).
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for i, part in enumerate(parts):
            if i and pause:
                time.sleep(pause)  # the point of the case: the second part comes later
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break  # refused before the rest arrived: the answer is what counts
        data = b""
        while time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if length and len(rest) >= int(length.group(1)):
                    break
    assert data, "no answer at all"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(status, headers, body)


def long_url(secret: str) -> list[bytes]:
    path = f"/api/v1/sessions?{MARK}=" + "a" * 9000 + f"&access_token={secret}"
    return [f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n\r\n".encode()]


def long_header(secret: str) -> list[bytes]:
    return [f"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}{MARK}"
            .encode() + b"b" * 9000 + b"\r\n\r\n"]


def long_cookie(secret: str) -> list[bytes]:
    return [f"GET /health HTTP/1.1\r\nHost: x\r\nCookie: session={secret}; {MARK}="
            .encode() + b"c" * 9000 + b"\r\n\r\n"]


def many_headers(secret: str) -> list[bytes]:
    lines = "".join(f"X-{MARK}-{i}: {secret}\r\n" for i in range(200))
    return [f"GET /health HTTP/1.1\r\nHost: x\r\n{lines}\r\n".encode()]


def bad_request_line(secret: str) -> list[bytes]:
    return [f"GET /health?{MARK}={secret} HTTP/1.1 extra\r\nHost: x\r\n"
            f"Authorization: Bearer {secret}\r\n\r\n".encode()]


def bad_chunk_size(secret: str) -> list[bytes]:
    return [f"POST /api/v1/auth/refresh HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n{MARK}\r\nabc\r\n0\r\n\r\n".encode()]


def bad_chunk_later(secret: str) -> list[bytes]:
    """The head and a good chunk first (the handler is already reading), then a bad one."""
    return [f"POST /api/v1/auth/refresh HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n3\r\n{\"r\r\n".encode(),
            f"{MARK}\r\nxyz\r\n0\r\n\r\n".encode()]


CASES: dict[str, tuple[Callable[[str], list[bytes]], int, str]] = {
    "long-url": (long_url, 414, "uri_too_long"),
    "long-header": (long_header, 431, "headers_too_large"),
    "long-cookie": (long_cookie, 431, "headers_too_large"),
    "too-many-headers": (many_headers, 431, "headers_too_large"),
    "malformed-request-line": (bad_request_line, 400, "bad_request"),
    "bad-chunk-size": (bad_chunk_size, 400, "bad_request"),
    "bad-chunk-after-a-good-one": (bad_chunk_later, 400, "bad_request"),
}


def assert_contract(answer: Answer, status: int, code: str, secret: str) -> None:
    assert answer.status == status, answer
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    error = answer.error()
    assert error["code"] == code, error
    assert error["message"], error
    assert error["request_id"] == answer.headers["x-request-id"], (error, answer.headers)
    assert answer.headers.get("x-content-type-options") == "nosniff", answer.headers
    assert answer.headers.get("x-frame-options") == "DENY", answer.headers
    assert answer.headers.get("referrer-policy") == "no-referrer", answer.headers
    assert not BANNER.search(answer.headers.get("server", "")), answer.headers
    whole = json.dumps(answer.headers) + answer.body.decode(errors="replace")
    assert MARK not in whole, whole
    assert secret[:8] not in whole, whole


@pytest.mark.parametrize("case", list(CASES))
def test_requests_the_parser_refuses_get_the_standard_error(secure: FaultyWorld, case: str) -> None:
    build, status, code = CASES[case]
    secret = secrets.token_hex(16)
    answer = raw_exchange(secure.platform.ports.gateway, *build(secret), pause=0.5)
    assert_contract(answer, status, code, secret)


@dataclass
class LoggedGateway:
    port: int
    log: Path


@pytest.fixture(scope="module")
def logged_gateway(secure: FaultyWorld) -> Iterator[LoggedGateway]:
    """Another gateway replica on the security platform, logging everything: the access log
    (the test platforms turn it off) and DEBUG."""
    platform = secure.platform
    name = "gateway-logged"
    port = free_port()
    env = dict(platform.specs["gateway"].env, GATEWAY_PORT=str(port), ACCESS_LOG="true",
               LOG_LEVEL="debug")
    platform.specs[name] = ProcSpec(name, [sys.executable, "-m", "gateway"], env)
    platform.start([name])
    try:
        wait_ready(f"http://127.0.0.1:{port}/health", 30, what="/health")
        yield LoggedGateway(port, platform.log_dir / f"{name}.log")
    finally:
        platform.stop(name)


def _lines_with(path: Path, request_id: str) -> list[dict[str, object]]:
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if request_id in line:
            found.append(json.loads(line))
    return found


def test_no_log_line_carries_a_credential_of_a_refused_or_rejected_request(
        secure: FaultyWorld, logged_gateway: LoggedGateway) -> None:
    secret = "S3cr3t" + secrets.token_hex(16)
    port = logged_gateway.port
    request_ids = []
    for build, status, _ in CASES.values():
        answer = raw_exchange(port, *build(secret), pause=0.5)
        assert answer.status == status
        request_ids.append(answer.error()["request_id"])
    # Requests the parser accepts carry credentials in the query too (the socket routes
    # take ?access_token=): the access log names the path, never the query.
    for path in (f"/api/v1/sessions/{uuid.uuid4()}/events?access_token={secret}",
                 f"/api/v1/sessions/{uuid.uuid4()}/doc?access_token={secret}",
                 f"/api/v1/auth/github/callback?code={secret}&state={secret}"):
        answer = raw_exchange(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nCookie: s={secret}\r\n"
                                    f"Authorization: Bearer {secret}\r\nConnection: close\r\n\r\n".encode())
        assert answer.status >= 400, answer
        request_ids.append(answer.headers["x-request-id"])

    log = logged_gateway.log

    def all_logged() -> bool | None:
        return True if all(_lines_with(log, rid) for rid in request_ids) else None

    # Every one of these requests is in the log (the access log at least): nothing is
    # missing because it was not written yet, and the test is not vacuous.
    poll(all_logged, 10, "a log line for every request")
    # Every process's log: the gateway's, and those of the services a request reached.
    text = "\n".join(p.read_text(errors="replace")
                     for p in sorted(secure.platform.log_dir.glob("*.log")))
    windows = {secret[i:i + 8] for i in range(len(secret) - 7)}
    leaked = sorted(w for w in windows if w in text)
    assert not leaked, [line for line in text.splitlines() if any(w in line for w in leaked)][:3]
    for rid in request_ids[:len(CASES)]:
        for entry in _lines_with(log, rid):
            # A client's malformed request is the client's business: no ERROR, no traceback.
            assert entry["level"] not in ("error", "critical"), entry
            assert "exc" not in entry, entry
