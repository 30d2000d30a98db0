"""The web client: its pages answer index.html, its hashed assets are immutable, all under a CSP.

The app is built by Vite into `gateway/web/dist/` (committed, so running Tandem needs no
Node) or wherever GATEWAY_WEB_DIST points. The dist is looked at on each request, not at
start-up: a `make web` while the gateway runs is served at once, and a gateway started
before the first build says how to fix that instead of failing to start.

These routes are pages and files, not API: they are not in /openapi.json.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from aiohttp import web
from aiohttp.web_urldispatcher import DynamicResource

from gateway import keys
from gateway.config import GatewayConfig
from gateway.errors import ApiError
from gateway.origins import origin_of, own_origins

# The client routes of docs/web.md: each answers the app, which routes in the browser.
APP_ROUTES = ("/", "/auth/callback", "/sessions/{id}", "/invitations/{token}")
ASSETS_PATH = "/assets"
# Vite names assets <name>-<hash>.<ext>: one path segment, no leading dot, no traversal.
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")

NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
NOT_BUILT = "the web client is not built: run `make web`"

# Explicit types (with a charset for text): the platform's mimetypes table varies by
# system, and nosniff makes a browser refuse a script served under the wrong one.
_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".json": "application/json", ".map": "application/json",
    ".webmanifest": "application/manifest+json", ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp",
    ".ico": "image/x-icon", ".woff2": "font/woff2", ".woff": "font/woff",
    ".wasm": "application/wasm",
}
_FALLBACK_TYPE = "application/octet-stream"

GITHUB_AVATARS = "https://avatars.githubusercontent.com"


def content_security_policy(config: GatewayConfig, request: web.Request) -> str:
    """The app's CSP. Scripts only from this origin (no inline script); inline *style
    attributes* allowed, which CodeMirror and y-codemirror.next set on elements. Images
    also from GitHub's avatar host (the stand-in's, or GitHub Enterprise's, is the
    GITHUB_OAUTH_URL origin). connect-src names the ws:/wss: form of every origin the page
    may have been loaded from (some browsers do not let 'self' cover WebSockets). Forms
    may also go to GitHub: its sign-in redirect follows a form submit, and Chrome checks
    form-action on redirects."""
    github = origin_of(config.github_oauth_url)
    avatars = [GITHUB_AVATARS] if github == "https://github.com" else [github, GITHUB_AVATARS]
    sockets = []
    for origin in own_origins(request, config.public_url):
        ws = ("wss" if origin.startswith("https://") else "ws") + origin[origin.index("://"):]
        sockets.append(ws)
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src " + " ".join(["'self'", "data:", *avatars]),
        "font-src 'self'",
        "connect-src " + " ".join(["'self'", *sockets]),
        "worker-src 'self'",
        "manifest-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action " + " ".join(["'self'", github]),
        "object-src 'none'",
    ])


def _file(directory: Path, name: str) -> Path | None:
    """`directory/name` when it is a regular file of that folder itself, else None."""
    if not _FILE_NAME.match(name) or ".." in name:
        return None
    path = directory / name
    try:
        if not path.is_file() or path.resolve().parent != directory.resolve():
            return None
    except OSError:
        return None
    return path


def _answer(request: web.Request, path: Path, cache: str) -> web.FileResponse:
    config = request.app[keys.CONFIG]
    headers = {"Cache-Control": cache, "Content-Type": _TYPES.get(path.suffix.lower(), _FALLBACK_TYPE),
               "Content-Security-Policy": content_security_policy(config, request)}
    # FileResponse serves a precompressed `<file>.gz`/`.br` sibling when the client
    # accepts it (with Vary), and answers If-None-Match / If-Modified-Since with 304.
    return web.FileResponse(path, headers=headers)


def _dist(request: web.Request) -> Path:
    return request.app[keys.CONFIG].web_dist


def _built(dist: Path) -> Path | None:
    index = dist / "index.html"
    return index if index.is_file() else None


async def page(request: web.Request) -> web.StreamResponse:
    """Every client route: the app's index.html, revalidated on each load (no-cache)."""
    index = await asyncio.to_thread(_built, _dist(request))
    if index is None:
        raise ApiError(503, "unavailable", NOT_BUILT, headers={"Cache-Control": "no-store"})
    return _answer(request, index, NO_CACHE)


async def asset(request: web.Request) -> web.StreamResponse:
    """A hashed build asset: its name changes with its content, so it is cached for good."""
    dist = _dist(request)

    def find() -> tuple[bool, Path | None]:
        return _built(dist) is not None, _file(dist / "assets", request.match_info["name"])

    built, path = await asyncio.to_thread(find)
    if path is None:
        if not built:
            raise ApiError(503, "unavailable", NOT_BUILT, headers={"Cache-Control": "no-store"})
        raise ApiError(404, "not_found", "no such asset")
    return _answer(request, path, IMMUTABLE)


async def top_level_file(request: web.Request) -> web.StreamResponse:
    """A file at the top of the dist (favicon.svg, robots.txt): stable names, so no-cache."""
    path = await asyncio.to_thread(_file, _dist(request), request.match_info["file"])
    if path is None:  # removed since the route matched
        raise ApiError(404, "not_found", "no such route")
    return _answer(request, path, NO_CACHE)


class _TopLevelFiles(DynamicResource):
    """`/{file}`, matching only the names of files at the top of the dist.

    A plain `/{file}` route would claim every unknown top-level path, so a POST to one
    would be 405 instead of the standard 404. This resource matches only what exists;
    everything else falls through to the 404 as before, and the metrics see one route
    label for all of them. Registered last, it is only asked about paths that no other
    route took.
    """

    def __init__(self, dist: Path) -> None:
        super().__init__("/{file}", name="webapp-file")
        self._dist = dist

    def _match(self, path: str) -> dict[str, str] | None:
        found = super()._match(path)
        if found is None or found["file"] == "index.html":
            return None
        # A stat of one name, only for single-segment paths nothing else matched.
        return found if _file(self._dist, found["file"]) is not None else None


def add_routes(app: web.Application, dist: Path) -> None:
    """The app's routes, after every API route (the top-level files last of all)."""
    for path in APP_ROUTES:
        app.router.add_get(path, page)
    app.router.add_get(ASSETS_PATH + "/{name}", asset)
    files = _TopLevelFiles(dist)
    files.add_route("GET", top_level_file)
    files.add_route("HEAD", top_level_file)
    app.router.register_resource(files)

