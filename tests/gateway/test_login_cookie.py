"""The sign-in cookie behind TLS: an in-process gateway in front of an in-process auth service."""

from __future__ import annotations

from tests.gateway.conftest import Client, Gateway

LOGIN = "/api/v1/auth/github/login"


async def _cookie_flags(client: Client,
                        headers: dict[str, str] | None = None) -> set[str]:
    reply = await client.get(LOGIN, headers=headers or {}, allow_redirects=False)
    assert reply.status == 302, await reply.text()
    (cookie,) = reply.headers.getall("Set-Cookie")
    assert cookie.startswith("tandem_login=")
    return {part.strip().partition("=")[0].lower() for part in cookie.split(";")[1:]}


async def test_behind_a_trusted_tls_proxy_the_sign_in_cookie_is_secure(gateway: Gateway) -> None:
    async with gateway(TRUSTED_PROXIES="127.0.0.1") as client:
        behind_tls = await _cookie_flags(client, {"X-Forwarded-Proto": "https",
                                                  "X-Forwarded-For": "198.51.100.7"})
        assert {"secure", "httponly", "samesite", "path", "max-age"} <= behind_tls
        # The same proxy forwarding plain HTTP: a Secure cookie would never come back.
        assert "secure" not in await _cookie_flags(client, {"X-Forwarded-Proto": "http"})
        assert "secure" not in await _cookie_flags(client)


async def test_an_untrusted_peer_cannot_claim_tls_but_an_https_public_url_is_tls(
        gateway: Gateway) -> None:
    async with gateway(TRUSTED_PROXIES="10.0.0.0/8") as client:
        assert "secure" not in await _cookie_flags(client, {"X-Forwarded-Proto": "https"})
    async with gateway(PUBLIC_URL="https://tandem.example.com") as client:
        assert "secure" in await _cookie_flags(client)
