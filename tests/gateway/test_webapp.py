"""The gateway serves the web client: index.html on the client routes, immutable hashed
assets, top-level files, a Content-Security-Policy, and honest answers without a build.

In-process over the run's Redis with a small fake dist in a temporary folder; the last
test reads the committed build in gateway/web/dist when there is one.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from gateway.app import create_app
from gateway.config import DEFAULT_WEB_DIST, GatewayConfig
from gateway.grpc_clients import SERVICES
from scripts.platform import free_port
from services.common.config import Env

Client = TestClient[web.Request, web.Application]
Start = Callable[..., AbstractAsyncContextManager[Client]]

INDEX = (b'<!doctype html><html><head><script type="module" src="/assets/index-a1b2c3.js"></script>'
         b'<link rel="stylesheet" href="/assets/index-d4e5f6.css"></head><body><div id="app">'
         b"</div></body></html>")
JS = b"console.log('tandem')\n" * 200
PAGES = ["/", "/auth/callback", "/sessions/3f2b1a9c-1d2e-4f5a-8b7c-6d5e4f3a2b1c",
         "/sessions/not-a-uuid", "/invitations/tk_abc-DEF_123"]


def build(dist: Path) -> Path:
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_bytes(INDEX)
    (dist / "assets" / "index-a1b2c3.js").write_bytes(JS)
    (dist / "assets" / "index-d4e5f6.css").write_bytes(b"body{margin:0}")
    (dist / "assets" / "logo-0f0f0f.svg").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    (dist / "assets" / "zipped-777777.js").write_bytes(JS)
    (dist / "assets" / "zipped-777777.js.gz").write_bytes(gzip.compress(JS))
    (dist / "favicon.svg").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    return dist


@pytest.fixture
def start(base_env: dict[str, str]) -> Start:
    @asynccontextmanager
    async def run(dist: Path, **overrides: str) -> AsyncIterator[Client]:
        closed = f"127.0.0.1:{free_port()}"
        env = {**base_env, "GATEWAY_PORT": "0", "GATEWAY_WEB_DIST": str(dist),
               **{f"{s.upper()}_ADDR": closed for s in SERVICES}, **overrides}
        app = create_app(GatewayConfig.from_env(Env(env)))
        async with TestClient(TestServer(app)) as client:
            yield client

    return run


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    return build(tmp_path / "dist")


def csp(reply: object) -> dict[str, list[str]]:
    header = reply.headers["Content-Security-Policy"]  # type: ignore[attr-defined]
    out = {}
    for directive in header.split(";"):
        name, *values = directive.split()
        out[name] = values
    return out


def assert_page_headers(reply: object) -> None:
    headers = reply.headers  # type: ignore[attr-defined]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] in ("no-referrer", "same-origin", "strict-origin")
    policy = csp(reply)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["form-action"][0] == "'self'"
    assert policy["img-src"][:2] == ["'self'", "data:"]
    assert policy["connect-src"][0] == "'self'"


async def test_every_client_route_answers_the_app(start: Start, dist: Path) -> None:
    async with start(dist) as client:
        for path in PAGES:
            reply = await client.get(path)
            assert reply.status == 200, path
            assert await reply.read() == INDEX
            assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
            assert reply.headers["Cache-Control"] == "no-cache"
            assert_page_headers(reply)
            head = await client.head(path)
            assert head.status == 200
            assert head.headers["Cache-Control"] == "no-cache"
        # no-cache means revalidate: a reload with the ETag costs a 304.
        first = await client.get("/")
        again = await client.get("/", headers={"If-None-Match": first.headers["ETag"]})
        assert again.status == 304


async def test_other_paths_keep_the_standard_json_404(start: Start, dist: Path) -> None:
    async with start(dist) as client:
        for method, path in [("GET", "/nope"), ("POST", "/nope"), ("GET", "/sessions/"),
                             ("GET", "/sessions/a/b"), ("GET", "/sessions"), ("GET", "/assets"),
                             ("GET", "/assets/"), ("GET", "/invitations"), ("GET", "/index.html"),
                             ("GET", "/api/v1/nope"), ("GET", "/auth/callback/x"),
                             ("DELETE", "/favicon.ico")]:
            reply = await client.request(method, path)
            assert reply.status == 404, (method, path)
            body = await reply.json()
            assert body["error"]["code"] == "not_found"
            assert body["error"]["request_id"] == reply.headers["X-Request-Id"]
        # A page is a GET: other methods on it are 405, with the standard body.
        posted = await client.post("/sessions/abc")
        assert posted.status == 405
        assert (await posted.json())["error"]["code"] == "method_not_allowed"


async def test_the_api_and_operational_routes_keep_their_meaning(start: Start, dist: Path) -> None:
    async with start(dist) as client:
        health = await client.get("/health")
        assert await health.json() == {"status": "ok"}
        assert "Content-Security-Policy" not in health.headers
        me = await client.get("/api/v1/me")
        assert me.status == 401
        docs = await client.get("/docs")
        assert docs.status == 200
        assert "swagger-ui" in await docs.text()
        assert (await client.get("/docs/static/swagger-ui.css")).status == 200
        metrics = await client.get("/metrics")
        assert metrics.status == 200
        document = await (await client.get("/openapi.json")).json()
        # Pages and files are not API.
        assert not {"/", "/auth/callback", "/sessions/{id}", "/assets/{name}"} & set(document["paths"])


async def test_assets_are_immutable_and_typed(start: Start, dist: Path) -> None:
    async with start(dist) as client:
        for name, kind in [("index-a1b2c3.js", "text/javascript; charset=utf-8"),
                           ("index-d4e5f6.css", "text/css; charset=utf-8"),
                           ("logo-0f0f0f.svg", "image/svg+xml")]:
            reply = await client.get(f"/assets/{name}")
            assert reply.status == 200, name
            assert reply.headers["Content-Type"] == kind
            assert reply.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert reply.headers["X-Content-Type-Options"] == "nosniff"
            assert "Content-Security-Policy" in reply.headers
            assert await reply.read() == (dist / "assets" / name).read_bytes()
        head = await client.head("/assets/index-a1b2c3.js")
        assert head.status == 200
        favicon = await client.get("/favicon.svg")
        assert favicon.status == 200
        assert favicon.headers["Content-Type"] == "image/svg+xml"
        assert favicon.headers["Cache-Control"] == "no-cache"
        assert (await client.post("/favicon.svg")).status == 405


async def test_a_precompressed_sibling_is_served_to_clients_that_accept_it(start: Start,
                                                                           dist: Path) -> None:
    async with start(dist) as client:
        zipped = await client.get("/assets/zipped-777777.js", headers={"Accept-Encoding": "gzip"},
                                  auto_decompress=False)
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert zipped.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert gzip.decompress(await zipped.read()) == JS
        plain = await client.get("/assets/zipped-777777.js", headers={"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in plain.headers
        assert await plain.read() == JS


@pytest.mark.parametrize("raw", [
    "/assets/missing-000000.js", "/assets/..%2Findex.html", "/assets/..%2F..%2Fsecret.txt",
    "/assets/%2e%2e%2fsecret.txt", "/assets/.hidden", "/assets/link-out.js",
    "/assets/index-a1b2c3.js%00", "/assets/%2e%2e", "/..%2Fsecret.txt",
    "/assets/sub%2Fdeep.js", "/secret.txt", "/assets/zipped-777777.js.gz.gz",
])
async def test_no_path_leaves_the_assets_or_reaches_a_missing_file(start: Start, dist: Path,
                                                                  raw: str) -> None:
    (dist.parent / "secret.txt").write_text("not for you")
    (dist / "assets" / ".hidden").write_text("dotfile")
    (dist / "assets" / "link-out.js").symlink_to(dist.parent / "secret.txt")
    (dist / "assets" / "sub").mkdir()
    (dist / "assets" / "sub" / "deep.js").write_text("nested")
    async with start(dist) as client:
        reply = await client.get(URL(raw, encoded=True))
        assert reply.status == 404, raw
        body = await reply.read()
        assert b"not for you" not in body
        assert b'"not_found"' in body


async def test_without_a_build_the_app_says_how_to_make_one(start: Start, tmp_path: Path) -> None:
    missing = tmp_path / "not-built"
    async with start(missing) as client:
        for path in [*PAGES, "/assets/index-a1b2c3.js"]:
            reply = await client.get(path)
            assert reply.status == 503, path
            error = (await reply.json())["error"]
            assert error["code"] == "unavailable"
            assert "make web" in error["message"]
            assert reply.headers["Cache-Control"] == "no-store"
        assert (await client.get("/health")).status == 200
        # A build that appears while the gateway runs is served at once.
        build(missing)
        assert (await client.get("/sessions/x")).status == 200
        assert (await client.get("/assets/index-a1b2c3.js")).status == 200


async def test_the_policy_lets_the_app_reach_its_own_sockets_and_avatars(start: Start,
                                                                         dist: Path) -> None:
    standin = "http://127.0.0.1:9900"
    async with start(dist, PUBLIC_URL="http://127.0.0.1:8080", GITHUB_OAUTH_URL=standin) as client:
        port = client.server.port
        policy = csp(await client.get("/"))
        # PUBLIC_URL's origin under both loopback names, and the origin this page came from.
        assert set(policy["connect-src"]) == {"'self'", "ws://127.0.0.1:8080", "ws://localhost:8080",
                                              f"ws://127.0.0.1:{port}"}
        assert standin in policy["img-src"]
        assert policy["form-action"] == ["'self'", standin]
        opened_as = csp(await client.get("/", headers={"Host": f"localhost:{port}"}))
        assert f"ws://localhost:{port}" in opened_as["connect-src"]
        # A Host that is not a host[:port] never reaches the header.
        forged = csp(await client.get("/", headers={"Host": "x; script-src *"}))
        assert forged["script-src"] == ["'self'"]
        assert forged["connect-src"] == ["'self'", "ws://127.0.0.1:8080", "ws://localhost:8080"]
    async with start(dist, PUBLIC_URL="https://tandem.example.com", TRUSTED_PROXIES="127.0.0.1",
                     GITHUB_OAUTH_URL="https://github.com") as client:
        behind = csp(await client.get("/", headers={"Host": "tandem.example.com",
                                                    "X-Forwarded-Proto": "https"}))
        assert behind["connect-src"] == ["'self'", "wss://tandem.example.com"]
        assert behind["img-src"] == ["'self'", "data:", "https://avatars.githubusercontent.com"]
        assert behind["form-action"] == ["'self'", "https://github.com"]


async def test_every_session_page_is_one_metrics_label(start: Start, dist: Path) -> None:
    async with start(dist) as client:
        for i in range(5):
            assert (await client.get(f"/sessions/room-{i}")).status == 200
            assert (await client.get(f"/invitations/token-{i}")).status == 200
            assert (await client.get(f"/no-such-page-{i}")).status == 404
        assert (await client.get("/favicon.svg")).status == 200
        text = await (await client.get("/metrics")).text()
    routes = {s.labels["route"] for f in text_string_to_metric_families(text)
              if f.name == "tandem_http_requests" for s in f.samples}
    assert {"/sessions/{id}", "/invitations/{token}", "/{file}"} <= routes
    assert not [r for r in routes if re.search(r"room-|token-|no-such-page", r)]


async def test_the_committed_build_is_served_whole(start: Start) -> None:
    index = DEFAULT_WEB_DIST / "index.html"
    if not index.is_file():
        pytest.skip(f"no committed web build at {DEFAULT_WEB_DIST} yet (make web writes it)")
    async with start(DEFAULT_WEB_DIST) as client:
        page = await client.get("/")
        assert page.status == 200
        html = await page.text()
        assert html == index.read_text()
        assert_page_headers(page)
        # The CSP allows no inline script: every script the page has is a file of the build.
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S | re.I)
        assert scripts, "the page loads no script"
        for attributes, body in scripts:
            assert "src=" in attributes, attributes
            assert not body.strip(), attributes
        assert not re.search(r"\son[a-z]+=", html, re.I), "inline event handlers need unsafe-inline"
        referenced = re.findall(r'(?:src|href)="(/[^"]+)"', html)
        assert referenced
        for path in referenced:
            reply = await client.get(path)
            assert reply.status == 200, path
            if path.startswith("/assets/"):
                assert reply.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            if path.endswith(".js"):
                assert reply.headers["Content-Type"].startswith("text/javascript")
            if path.endswith(".css"):
                assert reply.headers["Content-Type"].startswith("text/css")
