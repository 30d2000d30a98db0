"""Where a sign-in may return: the API's callback and the web app's /auth/callback under
PUBLIC_URL (both loopback spellings), and a registered callback at the site root for both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest
from tandem.auth.v1 import auth_pb2, auth_pb2_grpc

from scripts.platform import Ports, platform_env, site_root
from services.auth.config import AuthConfig, default_redirects
from services.common.config import Env
from tests.helpers.identity import code_from_async, gateway_metadata

KEY = "7cXu5YdQz8yT4vVnqkR9cH1o0mQmJb5q3VtQ0y2Lw8c="


def _settings(**env: str) -> AuthConfig:
    return AuthConfig.from_env(Env({"TANDEM_ENV": "development", "TOKEN_ENCRYPTION_KEY": KEY, **env}))


def test_the_default_allow_list_has_both_callbacks_under_either_loopback_name() -> None:
    local = _settings(PUBLIC_URL="http://127.0.0.1:8080")
    assert set(local.redirect_allowlist) == {
        "http://127.0.0.1:8080/api/v1/auth/github/callback", "http://127.0.0.1:8080/auth/callback",
        "http://localhost:8080/api/v1/auth/github/callback", "http://localhost:8080/auth/callback"}
    # Without a redirect_uri the sign-in still ends at the API's callback, as before.
    assert local.default_redirect == "http://127.0.0.1:8080/api/v1/auth/github/callback"
    public = _settings(PUBLIC_URL="https://tandem.example.com/")
    assert public.redirect_allowlist == ("https://tandem.example.com/api/v1/auth/github/callback",
                                         "https://tandem.example.com/auth/callback")
    assert default_redirects("http://localhost:9000")[:2] == (
        "http://localhost:9000/api/v1/auth/github/callback",
        "http://127.0.0.1:9000/api/v1/auth/github/callback")


def test_an_explicit_allow_list_replaces_the_default() -> None:
    only = _settings(OAUTH_REDIRECT_ALLOWLIST="https://app.example/cb")
    assert only.redirect_allowlist == ("https://app.example/cb",)


def test_the_platform_registers_the_stand_ins_callback_at_the_site_root() -> None:
    ports = Ports.free()
    env = platform_env({}, ports, github_standin=True, openai_standin=False)
    assert env["GITHUB_CALLBACK_URL"] == f"http://127.0.0.1:{ports.gateway}/"
    assert site_root("https://tandem.example.com/x/y?z") == "https://tandem.example.com/"
    # A callback the operator chose stays theirs.
    chosen = platform_env({"GITHUB_CALLBACK_URL": "http://127.0.0.1:1/cb"}, ports,
                          github_standin=True, openai_standin=False)
    assert chosen["GITHUB_CALLBACK_URL"] == "http://127.0.0.1:1/cb"
    assert "GITHUB_CALLBACK_URL" not in platform_env({}, ports, github_standin=False,
                                                     openai_standin=False)


@pytest.mark.parametrize("redirect", ["http://127.0.0.1:8080/auth/callback",
                                      "http://localhost:8080/auth/callback",
                                      "http://localhost:8080/api/v1/auth/github/callback"])
async def test_the_web_apps_callback_signs_in_through_the_stand_in(
        stack: Callable[..., Any], redirect: str) -> None:
    async with stack(PUBLIC_URL="http://127.0.0.1:8080") as s, \
            grpc.aio.insecure_channel(s.addr("auth")) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        start = await stub.StartLogin(auth_pb2.StartLoginRequest(redirect_uri=redirect),
                                      metadata=gateway_metadata())
        assert httpx.URL(start.authorize_url).params["redirect_uri"] == redirect
        # The stand-in (registered at the site root, as the fixture's default) sends the
        # browser back there, and the code it carries completes the sign-in.
        code = await code_from_async(start.authorize_url, "octocat")
        done = await stub.CompleteLogin(auth_pb2.CompleteLoginRequest(code=code, state=start.state),
                                        metadata=gateway_metadata())
        assert done.user.github_login == "octocat"
        assert done.tokens.refresh_expires_in == 30 * 86400


async def test_a_redirect_outside_the_allow_list_is_refused(stack: Callable[..., Any]) -> None:
    async with stack(PUBLIC_URL="http://127.0.0.1:8080") as s, \
            grpc.aio.insecure_channel(s.addr("auth")) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        for redirect in ("http://127.0.0.1:8080/elsewhere", "http://127.0.0.1:9999/auth/callback",
                         "https://evil.example/auth/callback"):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.StartLogin(auth_pb2.StartLoginRequest(redirect_uri=redirect),
                                      metadata=gateway_metadata())
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, redirect
