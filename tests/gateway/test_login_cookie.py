"""The sign-in cookie behind TLS: an in-process gateway in front of an in-process auth service."""

from __future__ import annotations

import httpx

from gateway.routes.auth import LOGIN_COOKIE
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


CALLBACK = "/api/v1/auth/github/callback"
CANCELLED = "GitHub sign-in was cancelled or refused"


async def test_cancel_on_github_is_told_as_cancelled_and_keeps_the_sign_in_cookie(
        gateway: Gateway) -> None:
    async with gateway() as client:
        start = await client.get(LOGIN, allow_redirects=False)
        assert start.status == 302, await start.text()
        binding = start.cookies[LOGIN_COOKIE].value
        # The person clicks Cancel: GitHub (the stand-in) sends them back with
        # error=access_denied and the state, and no code.
        authorize = httpx.URL(start.headers["Location"]).copy_add_param("deny", "1")
        async with httpx.AsyncClient(timeout=10) as browser:
            back = await browser.get(str(authorize))
        assert back.status_code == 302, back.text
        landing = httpx.URL(back.headers["location"])
        assert landing.params["error"] == "access_denied"
        assert "code" not in landing.params
        state = landing.params["state"]
        client.session.cookie_jar.clear()  # the cookie each request carries is explicit below
        # That redirect as GitHub makes it, and as the web app's /auth/callback forwards it.
        for params in (dict(landing.params),
                       {"code": "", "state": state, "transport": "cookie", "error": "access_denied"},
                       {"error": "access_denied"}):
            reply = await client.get(CALLBACK, params=params,
                                     headers={"Cookie": f"{LOGIN_COOKIE}={binding}"})
            assert reply.status == 400, await reply.text()
            error = (await reply.json())["error"]
            assert (error["code"], error["message"]) == ("invalid_argument", CANCELLED), params
            assert "details" not in error or not error["details"]
            # Nothing was decided about the sign-in: its cookie is not cleared.
            assert not [c for c in reply.headers.getall("Set-Cookie", ())
                        if c.startswith(f"{LOGIN_COOKIE}=")], params
        # Without `error`, a missing code is still named as such.
        reply = await client.get(CALLBACK, params={"state": state},
                                 headers={"Cookie": f"{LOGIN_COOKIE}={binding}"})
        assert reply.status == 400
        error = (await reply.json())["error"]
        assert error["message"] == "code and state are required"
        assert error["details"] == [{"field": "code", "message": "required"}]
