"""Security headers on every HTTP response, HSTS behind TLS, the CORS allow-list, no version banner."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.reliability.support import FaultyWorld
from tests.security.conftest import ALLOWED_ORIGIN, Stage

pytestmark = pytest.mark.e2e

STRICT_REFERRER = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}
HSTS_MIN_AGE = 365 * 24 * 3600
# A banner is a product with a version ("aiohttp/3.11", "Python/3.11"): a bare name is fine.
BANNER = re.compile(r"\d|python|aiohttp", re.IGNORECASE)


def responses(stage: Stage, openapi: dict[str, Any], **headers: str) -> Iterator[tuple[str, httpx.Response]]:
    """A response of every route of the OpenAPI document, successes and errors alike.

    Reads as the owner; every other method without a token (401) or with a body that is
    not JSON (400) — nothing is changed. Plus the answers no route gives: 404, 405, 413.
    """
    owner = stage.crew.owner.headers
    with httpx.Client(base_url=stage.url, timeout=10, follow_redirects=False) as api:
        for template, operations in openapi["paths"].items():
            path = stage.fill(template)
            for method in operations:
                name = f"{method.upper()} {template}"
                yield f"{name} (no token)", api.request(method, path, headers=headers)
                if method == "get":
                    yield f"{name} (owner)", api.get(path, headers={**owner, **headers})
                elif "requestBody" in operations[method]:
                    yield f"{name} (not JSON)", api.request(
                        method, path, content=b"{not json",
                        headers={**owner, **headers, "Content-Type": "application/json"})
        yield "unknown path", api.get("/no/such/route", headers=headers)
        yield "method not allowed", api.put("/api/v1/sessions", headers={**owner, **headers})
        yield "body too large", api.post("/api/v1/sessions", content=b"x" * (2 * 1024 * 1024),
                                         headers={**owner, **headers, "Content-Type": "application/json"})
        yield "swagger asset", api.get("/docs/static/swagger-ui.css", headers=headers)
        yield "cors preflight", api.options("/api/v1/sessions", headers={
            **headers, "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"})


def test_every_response_carries_the_security_headers_and_no_banner(
        stage: Stage, openapi: dict[str, Any]) -> None:
    seen = 0
    statuses: set[int] = set()
    for name, reply in responses(stage, openapi):
        seen += 1
        statuses.add(reply.status_code)
        assert reply.status_code < 500, (name, reply.text)
        assert reply.headers.get("X-Content-Type-Options") == "nosniff", name
        assert reply.headers.get("X-Frame-Options") == "DENY", name
        assert reply.headers.get("Referrer-Policy") in STRICT_REFERRER, name
        assert reply.headers.get("X-Request-Id"), name
        assert not BANNER.search(reply.headers.get("Server", "")), (name, reply.headers["Server"])
        assert "X-Powered-By" not in reply.headers, name
        # Plain HTTP: HSTS would be ignored by browsers and is not sent.
        assert "Strict-Transport-Security" not in reply.headers, name
    # The sweep covered successes, redirects and the error statuses it aimed at.
    assert {200, 204, 302, 400, 401, 404, 405, 413, 426} <= statuses, statuses
    assert seen > 2 * len(openapi["paths"])


def test_hsts_is_sent_behind_a_tls_proxy(stage: Stage, openapi: dict[str, Any]) -> None:
    for name, reply in responses(stage, openapi, **{"X-Forwarded-Proto": "https"}):
        hsts = reply.headers.get("Strict-Transport-Security", "")
        match = re.search(r"max-age=(\d+)", hsts)
        assert match, (name, hsts)
        assert int(match.group(1)) >= HSTS_MIN_AGE, (name, hsts)


def _raw(port: int, data: bytes) -> bytes:
    """Bytes a client sends as-is (no HTTP library would send them), and the answer's head."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


@pytest.mark.parametrize("request_bytes", [
    pytest.param(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n", id="nul-in-header"),
    pytest.param(b"GARBAGE\r\n\r\n", id="not-http"),
    pytest.param(b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", id="unknown-version"),
])
def test_requests_the_server_cannot_parse_get_no_version_banner(
        secure: FaultyWorld, request_bytes: bytes) -> None:
    head = _raw(secure.platform.ports.gateway, request_bytes).decode(errors="replace")
    assert head.startswith("HTTP/"), head
    server = next((line.split(":", 1)[1].strip() for line in head.split("\r\n")
                   if line.lower().startswith("server:")), "")
    assert not BANNER.search(server), head


def test_cors_answers_allowed_origins_only(stage: Stage) -> None:
    owner = stage.crew.owner.headers
    with httpx.Client(base_url=stage.url, timeout=10) as api:
        allowed = api.get("/api/v1/me", headers={**owner, "Origin": ALLOWED_ORIGIN})
        assert allowed.status_code == 200
        assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
        assert "Origin" in allowed.headers["Vary"]
        assert "X-Request-Id" in allowed.headers["Access-Control-Expose-Headers"]
        # Credentials never ride along: the API takes bearer tokens, not cookies.
        assert "Access-Control-Allow-Credentials" not in allowed.headers

        for origin in ("https://evil.example", "null", ALLOWED_ORIGIN + ".evil.example",
                       ALLOWED_ORIGIN.replace("https", "http")):
            refused = api.get("/api/v1/me", headers={**owner, "Origin": origin})
            assert refused.status_code == 200  # answered, but the browser withholds it
            assert "Access-Control-Allow-Origin" not in refused.headers, origin

        preflight = {"Access-Control-Request-Method": "PATCH",
                     "Access-Control-Request-Headers": "authorization, content-type, if-match"}
        ok = api.options("/api/v1/sessions/x", headers={**preflight, "Origin": ALLOWED_ORIGIN})
        assert ok.status_code == 204
        assert ok.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
        assert "PATCH" in ok.headers["Access-Control-Allow-Methods"]
        allowed_headers = ok.headers["Access-Control-Allow-Headers"].lower()
        assert {"authorization", "content-type", "if-match"} <= {
            h.strip() for h in allowed_headers.split(",")}
        assert ok.headers.get("X-Content-Type-Options") == "nosniff"

        evil = api.options("/api/v1/sessions/x", headers={**preflight, "Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in evil.headers
        assert evil.status_code >= 400
        assert evil.headers.get("X-Content-Type-Options") == "nosniff"
