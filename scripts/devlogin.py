"""Sign in through a running gateway and the GitHub stand-in, for curl, scripts and benchmarks.

    .venv/bin/python -m scripts.devlogin octocat            # prints an access token
    .venv/bin/python -m scripts.devlogin hubot --json       # the whole token answer

Works only against the local GitHub stand-in (it signs in any login at once).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class SignedIn:
    user_id: str
    login: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """For calling a service's gRPC port directly: the access token and, as every RPC to a
        service needs it, the service credential from SERVICE_TOKEN in this process's
        environment (the test fixtures set it; locally, `.data/secrets.env` holds it)."""
        bearer = ("authorization", f"Bearer {self.access_token}")
        credential = os.environ.get("SERVICE_TOKEN")
        return (("x-tandem-service-token", credential), bearer) if credential else (bearer,)


def with_login(authorize_url: str, login: str) -> str:
    """The stand-in's authorize URL that signs `login` in at once (httpx's params= would
    replace the query string, so add to it instead)."""
    return str(httpx.URL(authorize_url).copy_add_param("login", login))


def code_in(reply: httpx.Response) -> str:
    if reply.status_code != 302:
        raise RuntimeError(f"the GitHub stand-in did not sign in: {reply.status_code} {reply.text[:200]}")
    code = str(httpx.URL(reply.headers["location"]).params.get("code") or "")
    if not code:
        raise RuntimeError(f"no code in the redirect: {reply.headers['location']}")
    return code


def sign_in_http(gateway_url: str, login: str) -> SignedIn:
    """The OAuth flow as a browser does it, through the gateway.

    One client for the gateway's login and callback: its cookie jar carries the sign-in
    cookie the login sets (the state is bound to it) back to the callback, as a browser's does.
    """
    with httpx.Client(base_url=gateway_url, timeout=10) as client:
        start = client.get("/api/v1/auth/github/login", follow_redirects=False)
        if start.status_code != 302:
            raise RuntimeError(f"login did not redirect: {start.status_code} {start.text[:200]}")
        authorize = httpx.URL(start.headers["location"])
        code = code_in(httpx.get(with_login(str(authorize), login), timeout=10))
        done = client.get("/api/v1/auth/github/callback",
                          params={"code": code, "state": authorize.params["state"]})
        if done.status_code != 200:
            raise RuntimeError(f"callback failed: {done.status_code} {done.text[:200]}")
        body = done.json()
    return SignedIn(body["user"]["id"], body["user"]["github_login"], body["access_token"],
                    body["refresh_token"])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.devlogin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("login", help="GitHub login to sign in as (octocat, hubot, monalisa, or any)")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="gateway base URL")
    parser.add_argument("--json", action="store_true", help="print user id and both tokens as JSON")
    args = parser.parse_args()
    try:
        me = sign_in_http(args.url, args.login)
    except (RuntimeError, httpx.HTTPError) as exc:
        print(f"devlogin: {exc} (is `make run` up at {args.url}?)", file=sys.stderr)
        raise SystemExit(1) from None
    if args.json:
        print(json.dumps({"user_id": me.user_id, "login": me.login, "access_token": me.access_token,
                          "refresh_token": me.refresh_token}, indent=2))
    else:
        print(me.access_token)


if __name__ == "__main__":
    main()
