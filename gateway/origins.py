"""The gateway's own origins: PUBLIC_URL's (both loopback spellings) and the one a request was sent to.

The refresh cookie's Origin check and the web app's Content-Security-Policy both ask "is
this our own origin?". A browser names the origin it loaded the page from, which is
PUBLIC_URL behind a well-configured ingress, but also whatever host the person typed on a
laptop (`localhost:8080` for a PUBLIC_URL of `127.0.0.1:8080`) or a second replica's port.
So both count: the configured one, and the request's own scheme (TLS seen directly or
reported by a trusted proxy) with its Host header. A Host header is the client's to choose,
but a browser sends the page's real one, so another site can never make a victim's
browser present a forged pair; a Host that is not a plain host[:port] is ignored.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from aiohttp import web

from gateway.clientaddr import forwarded_https

LOOPBACK_NAMES = ("127.0.0.1", "localhost")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A DNS name or IPv4 address, or a bracketed IPv6 address, with an optional port.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
                   r"(?::[0-9]{1,5})?$")


def origin_of(url: str) -> str:
    """scheme://host[:port] of an absolute URL, lower-cased, the scheme's default port dropped."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{scheme}://{host}:{port}"


def loopback_aliases(url: str) -> tuple[str, ...]:
    """`url` itself and, when its host is 127.0.0.1 or localhost, the same URL under the other
    name (people open either; both reach a gateway listening on loopback)."""
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in LOOPBACK_NAMES:
        return (url,)
    port = f":{parts.port}" if parts.port is not None else ""
    out = [url]
    for name in LOOPBACK_NAMES:
        alias = parts._replace(netloc=f"{name}{port}").geturl()
        if alias not in out:
            out.append(alias)
    return tuple(out)


def configured_origins(public_url: str) -> tuple[str, ...]:
    """PUBLIC_URL's origin (and its other loopback spelling)."""
    return tuple(dict.fromkeys(origin_of(u) for u in loopback_aliases(public_url)))


def request_origin(request: web.Request) -> str | None:
    """The origin this request was addressed to (its scheme and Host), or None for a Host
    header that is not a plain host[:port]."""
    host = request.headers.get("Host", "")
    if not _HOST.match(host):
        return None
    scheme = "https" if forwarded_https(request) else "http"
    return origin_of(f"{scheme}://{host}")


def own_origins(request: web.Request, public_url: str) -> tuple[str, ...]:
    """Every origin a page of this gateway may have been loaded from, PUBLIC_URL's first."""
    found = list(configured_origins(public_url))
    mine = request_origin(request)
    if mine is not None and mine not in found:
        found.append(mine)
    return tuple(found)


def is_own_origin(request: web.Request, public_url: str, origin: str) -> bool:
    """Whether an Origin header names this gateway (`null` and garbage never do)."""
    try:
        normalized = origin_of(origin.strip())
    except ValueError:
        return False
    if not normalized.startswith(("http://", "https://")) or normalized.endswith("://"):
        return False
    return normalized in own_origins(request, public_url)
