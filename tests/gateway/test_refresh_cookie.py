"""The browser app's refresh token in an HttpOnly cookie: set by the callback, rotated and
cleared by refresh and logout, refused cross-origin; the JSON transport is unchanged."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from aiohttp import ClientResponse

from gateway.routes.auth import LOGIN_COOKIE
from tests.gateway.conftest import Client, Gateway
from tests.helpers.identity import code_from_async

LOGIN = "/api/v1/auth/github/login"
CALLBACK = "/api/v1/auth/github/callback"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
COOKIE = "tandem_refresh"
TTL = 7200  # a refresh lifetime no default has, so Max-Age is seen to follow it
JSON = {"Content-Type": "application/json"}


@dataclass
class SetCookie:
    name: str
    value: str
    attributes: dict[str, str]  # lower-cased names; flags map to ""


def set_cookies(reply: ClientResponse) -> dict[str, SetCookie]:
    out = {}
    for header in reply.headers.getall("Set-Cookie", ()):
        name_value, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = name_value.partition("=")
        attrs = {}
        for attribute in attributes:
            key, _, val = attribute.partition("=")
            attrs[key.lower()] = val
        out[name] = SetCookie(name, value.strip('"'), attrs)
    return out


def refresh_cookie(reply: ClientResponse) -> SetCookie:
    cookies = set_cookies(reply)
    assert COOKIE in cookies, reply.headers.getall("Set-Cookie", ())
    return cookies[COOKIE]


def assert_cleared(reply: ClientResponse) -> None:
    cleared = refresh_cookie(reply)
    assert cleared.value == ""
    assert cleared.attributes["max-age"] == "0"
    assert cleared.attributes["path"] == "/api/v1/auth"
    flag = set_cookies(reply)["tandem_signed_in"]
    assert (flag.value, flag.attributes["max-age"], flag.attributes["path"]) == ("", "0", "/")


async def callback(client: Client, login: str, **params: str) -> ClientResponse:
    """A browser's sign-in: login, the stand-in's page, then the callback with the login cookie."""
    start = await client.get(LOGIN, allow_redirects=False)
    assert start.status == 302, await start.text()
    binding = set_cookies(start)[LOGIN_COOKIE].value
    authorize = str(start.headers["Location"])
    code = await code_from_async(authorize, login)
    state = httpx.URL(authorize).params["state"]
    client.session.cookie_jar.clear()  # every cookie a request carries is explicit below
    return await client.get(CALLBACK, params={"code": code, "state": state, **params},
                            headers={"Cookie": f"{LOGIN_COOKIE}={binding}"})


async def sign_in_with_cookie(client: Client, login: str) -> str:
    reply = await callback(client, login, transport="cookie")
    assert reply.status == 200, await reply.text()
    return refresh_cookie(reply).value


async def post(client: Client, path: str, cookie: str | None = None, *,
               body: bytes = b"{}", headers: dict[str, str] | None = None) -> ClientResponse:
    sent = {**JSON, **(headers or {})}
    if cookie is not None:
        sent["Cookie"] = f"{COOKIE}={cookie}"
    client.session.cookie_jar.clear()
    return await client.post(path, data=body, headers=sent)


async def test_cookie_callback_puts_the_refresh_token_in_an_http_only_strict_cookie(
        gateway: Gateway) -> None:
    async with gateway(services={"REFRESH_TOKEN_TTL_SECONDS": str(TTL)}) as client:
        reply = await callback(client, "octocat", transport="cookie")
        assert reply.status == 200, await reply.text()
        body = await reply.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "user"}
        assert body["user"]["github_login"] == "octocat"
        assert reply.headers["Cache-Control"] == "no-store"
        cookie = refresh_cookie(reply)
        assert len(cookie.value) >= 43
        assert cookie.attributes["path"] == "/api/v1/auth"
        assert cookie.attributes["max-age"] == str(TTL)
        assert cookie.attributes["samesite"] == "Strict"
        assert "httponly" in cookie.attributes
        assert "secure" not in cookie.attributes  # plain HTTP: a Secure cookie never comes back
        # The flag the app reads to know, without a request, that a refresh cookie exists.
        flag = set_cookies(reply)["tandem_signed_in"]
        assert flag.value == "1"
        assert (flag.attributes["path"], flag.attributes["max-age"]) == ("/", str(TTL))
        assert flag.attributes["samesite"] == "Strict"
        assert "httponly" not in flag.attributes
        assert_login_cookie_cleared(reply)
        # The cookie is a working refresh token.
        again = await post(client, REFRESH, cookie.value)
        assert again.status == 200, await again.text()
        me = await client.get("/api/v1/me",
                              headers={"Authorization": f"Bearer {(await again.json())['access_token']}"})
        assert (await me.json())["github_login"] == "octocat"


def assert_login_cookie_cleared(reply: ClientResponse) -> None:
    assert set_cookies(reply)[LOGIN_COOKIE].attributes["max-age"] == "0"


async def test_the_refresh_cookie_is_secure_behind_tls(gateway: Gateway) -> None:
    async with gateway(PUBLIC_URL="https://tandem.example.com") as client:
        reply = await callback(client, "hubot", transport="cookie")
        assert reply.status == 200, await reply.text()
        assert "secure" in refresh_cookie(reply).attributes
        # PUBLIC_URL is the gateway's own origin: a page loaded from it may refresh.
        rotated = await post(client, REFRESH, refresh_cookie(reply).value,
                             headers={"Origin": "https://tandem.example.com"})
        assert rotated.status == 200, await rotated.text()
        assert "secure" in refresh_cookie(rotated).attributes


async def test_json_transport_is_unchanged(gateway: Gateway) -> None:
    async with gateway() as client:
        for params in ({}, {"transport": "json"}):
            reply = await callback(client, "monalisa", **params)
            assert reply.status == 200, await reply.text()
            body = await reply.json()
            assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
            assert COOKIE not in set_cookies(reply)
            # Refresh and logout with the token in the body: no cookie set or cleared, and
            # any content type still works (curl -d sends a form type).
            rotated = await post(client, REFRESH, body=b'{"refresh_token": "%s"}'
                                 % body["refresh_token"].encode(),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert rotated.status == 200, await rotated.text()
            assert "refresh_token" in await rotated.json()
            assert COOKIE not in set_cookies(rotated)
            new = (await rotated.json())["refresh_token"]
            out = await post(client, LOGOUT, body=b'{"refresh_token": "%s"}' % new.encode())
            assert out.status == 204
            assert COOKIE not in set_cookies(out)
            gone = await post(client, REFRESH, body=b'{"refresh_token": "%s"}' % new.encode())
            assert gone.status == 401


async def test_an_unknown_transport_is_400_and_keeps_the_sign_in_going(gateway: Gateway) -> None:
    async with gateway() as client:
        reply = await callback(client, "octocat", transport="header")
        assert reply.status == 400
        error = (await reply.json())["error"]
        assert error["details"] == [{"field": "transport", "message": "must be json or cookie"}]
        assert LOGIN_COOKIE not in set_cookies(reply)  # the state was not spent


async def test_refresh_rotates_the_cookie_and_a_spent_one_revokes_the_family(gateway: Gateway) -> None:
    async with gateway(services={"REFRESH_TOKEN_TTL_SECONDS": str(TTL)}) as client:
        first = await sign_in_with_cookie(client, "hubot")
        reply = await post(client, REFRESH, first)
        assert reply.status == 200, await reply.text()
        body = await reply.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "user"}
        assert reply.headers["Cache-Control"] == "no-store"
        second = refresh_cookie(reply)
        assert second.value not in ("", first)
        assert second.attributes["max-age"] == str(TTL)
        assert second.attributes["samesite"] == "Strict"
        assert "httponly" in second.attributes
        third = refresh_cookie(await post(client, REFRESH, second.value)).value
        # The first value again (a stolen copy, say): refused, cleared, and the family is gone.
        reuse = await post(client, REFRESH, first)
        assert reuse.status == 401
        assert (await reuse.json())["error"]["code"] == "unauthenticated"
        assert_cleared(reuse)
        revoked = await post(client, REFRESH, third)
        assert revoked.status == 401
        assert_cleared(revoked)


async def test_refresh_without_a_cookie_or_with_garbage_is_401_and_clears_it(gateway: Gateway) -> None:
    async with gateway() as client:
        for cookie in (None, "not-a-token", "x" * 300):
            reply = await post(client, REFRESH, cookie)
            assert reply.status == 401, await reply.text()
            assert (await reply.json())["error"]["code"] == "unauthenticated"
            assert_cleared(reply)


async def test_logout_revokes_the_cookies_family_and_clears_it(gateway: Gateway) -> None:
    async with gateway() as client:
        first = await sign_in_with_cookie(client, "monalisa")
        current = refresh_cookie(await post(client, REFRESH, first)).value
        out = await post(client, LOGOUT, current)
        assert out.status == 204
        assert_cleared(out)
        for value in (current, first):
            after = await post(client, REFRESH, value)
            assert after.status == 401
        # Signing out again, or with no cookie at all, is still 204.
        for cookie in (current, None):
            again = await post(client, LOGOUT, cookie)
            assert again.status == 204
            assert_cleared(again)


async def test_cookie_mode_refuses_another_origin_and_spends_nothing(gateway: Gateway) -> None:
    async with gateway(PUBLIC_URL="http://127.0.0.1:8080") as client:
        cookie = await sign_in_with_cookie(client, "octocat")
        for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example"):
            for path in (REFRESH, LOGOUT):
                reply = await post(client, path, cookie, headers={"Origin": origin})
                assert reply.status == 403, (origin, path, await reply.text())
                assert (await reply.json())["error"]["code"] == "permission_denied"
                assert COOKIE not in set_cookies(reply)
        # Neither refusal spent or revoked the token: the app's own page can still use it.
        # Its origin is the one the request was sent to (a page on this port, opened under
        # either name), or PUBLIC_URL's under either loopback spelling.
        port = client.server.port
        for origin, host in ((f"http://127.0.0.1:{port}", None),
                             (f"http://localhost:{port}", f"localhost:{port}"),
                             ("http://127.0.0.1:8080", None), ("http://localhost:8080", None)):
            headers = {"Origin": origin, **({"Host": host} if host else {})}
            own = await post(client, REFRESH, cookie, headers=headers)
            assert own.status == 200, (origin, await own.text())
            cookie = refresh_cookie(own).value
        # Another port of this host is another origin.
        elsewhere = await post(client, REFRESH, cookie, headers={"Origin": "http://127.0.0.1:9999"})
        assert elsewhere.status == 403


async def test_cookie_mode_needs_a_json_content_type(gateway: Gateway) -> None:
    async with gateway() as client:
        cookie = await sign_in_with_cookie(client, "hubot")
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            for path in (REFRESH, LOGOUT):
                headers = {"Content-Type": content_type} if content_type else {}
                client.session.cookie_jar.clear()
                reply = await client.post(path, data=b"{}" if content_type else None,
                                          headers={**headers, "Cookie": f"{COOKIE}={cookie}"})
                assert reply.status == 415, (content_type, path, await reply.text())
                assert (await reply.json())["error"]["code"] == "unsupported_media_type"
        assert (await post(client, REFRESH, cookie)).status == 200


async def test_openapi_documents_both_transports(gateway: Gateway) -> None:
    async with gateway() as client:
        document = await (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for name in ("RefreshIn", "TokensOut"):
        assert "refresh_token" in schemas[name]["properties"]
        assert "refresh_token" not in schemas[name].get("required", []), name
        assert "cookie" in schemas[name]["properties"]["refresh_token"]["description"]
    assert schemas["RefreshIn"]["properties"]["refresh_token"]["type"] == "string"
    callback_op = document["paths"][CALLBACK]["get"]
    transport = next(p for p in callback_op["parameters"] if p["name"] == "transport")
    assert transport["schema"]["enum"] == ["json", "cookie"]
    for path in (REFRESH, LOGOUT):
        responses = document["paths"][path]["post"]["responses"]
        assert {"403", "415"} <= set(responses), path
