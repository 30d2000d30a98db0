"""Who the client is behind our own proxies: X-Forwarded-For, believed only from TRUSTED_PROXIES.

Each proxy appends the address it received the connection from to X-Forwarded-For, so
the entries a client can forge are all on the left. The standard walk: start with the
TCP peer; while the address in hand is a trusted proxy, step to the entry it appended
(the rightmost one not yet seen); the first address that is not a trusted proxy is the
client. Without a trusted peer the header is ignored, so forging it buys nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR networks ("10.0.0.0/8", "192.0.2.7", "2001:db8::/32").

    Raises ValueError naming the first entry that is neither (host bits set under a
    prefix count as a typo: "10.0.0.1/8" is refused, not widened).
    """
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError:
            raise ValueError(item) from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    """An address as proxies write it: bare, or with a port ("192.0.2.1:443", "[2001:db8::1]:443")."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The proxies whose X-Forwarded-For entries are believed."""

    __slots__ = ("_networks",)

    def __init__(self, networks: Sequence[Network] = ()) -> None:
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self._networks)

    def trusted_peer(self, peer: str | None) -> bool:
        """Whether the TCP peer is one of our proxies (so its forwarded headers count)."""
        address = _address(peer) if peer else None
        return address is not None and self.trusts(address)

    def client(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        """The client's address, from the TCP peer and every X-Forwarded-For header line."""
        current = _address(peer) if peer else None
        if current is None:
            return peer or UNKNOWN
        if not self._networks or not self.trusts(current) or not forwarded_for:
            return str(current)
        # Several header lines are one list, in order (RFC 9110, section 5.3).
        hops = [hop for line in forwarded_for for hop in line.split(",")]
        for hop in reversed(hops):
            if not self.trusts(current):
                break
            address = _address(hop)
            if address is None:
                # A trusted proxy passed on something that is no address: the nearest
                # hop we know is the best key (forging entries can never reach here).
                break
            current = address
        return str(current)


def _trusted(request: web.Request) -> TrustedProxies:
    from gateway import keys  # noqa: PLC0415 - gateway.keys imports gateway.config, which imports this

    return request.app[keys.CONFIG].trusted_proxies


def client_address(request: web.Request) -> str:
    """The address every per-client limit keys on."""
    return _trusted(request).client(request.remote, request.headers.getall("X-Forwarded-For", ()))


def forwarded_https(request: web.Request) -> bool:
    """Whether the client spoke HTTPS: to us directly, or to a trusted proxy that says so."""
    if request.secure:
        return True
    if not _trusted(request).trusted_peer(request.remote):
        return False
    proto = request.headers.get("X-Forwarded-Proto", "")
    # A chain of proxies may list one scheme per hop; the first is the client's.
    return proto.split(",")[0].strip().lower() == "https"
