"""The web app's sign-in round trip through the real platform: login with the app's
/auth/callback as redirect_uri, the stand-in sends the browser there, the app finishes with
transport=cookie, and the refresh cookie keeps it signed in until it signs out."""

from __future__ import annotations

import httpx
import pytest

from scripts.devlogin import with_login
from scripts.platform import LocalPlatform

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_app_signs_in_at_auth_callback_and_stays_signed_in_by_cookie(
        platform: LocalPlatform, host: str) -> None:
    origin = f"http://{host}:{platform.ports.gateway}"
    with httpx.Client(base_url=origin, timeout=10) as browser:
        start = browser.get("/api/v1/auth/github/login",
                            params={"redirect_uri": f"{origin}/auth/callback"})
        assert start.status_code == 302, start.text
        back = httpx.get(with_login(start.headers["location"], "monalisa"), timeout=10)
        assert back.status_code == 302, back.text
        landing = httpx.URL(back.headers["location"])
        # GitHub (the stand-in, registered at the site root) sends the browser to the app.
        assert f"{landing.scheme}://{landing.netloc.decode()}{landing.path}" == f"{origin}/auth/callback"
        done = browser.get("/api/v1/auth/github/callback",
                           params={"code": landing.params["code"], "state": landing.params["state"],
                                   "transport": "cookie"})
        assert done.status_code == 200, done.text
        assert "refresh_token" not in done.json()
        assert browser.cookies.get("tandem_refresh")
        # A reload: the page has no token, only the cookie the browser keeps.
        json_headers = {"Content-Type": "application/json", "Origin": origin}
        again = browser.post("/api/v1/auth/refresh", content=b"{}", headers=json_headers)
        assert again.status_code == 200, again.text
        me = browser.get("/api/v1/me",
                         headers={"Authorization": f"Bearer {again.json()['access_token']}"})
        assert me.json()["github_login"] == "monalisa"
        out = browser.post("/api/v1/auth/logout", content=b"{}", headers=json_headers)
        assert out.status_code == 204
        assert not browser.cookies.get("tandem_refresh")
        after = browser.post("/api/v1/auth/refresh", content=b"{}", headers=json_headers)
        assert after.status_code == 401
