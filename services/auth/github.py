"""GitHub OAuth web flow and user API over httpx (real GitHub or the stand-in, by base URL)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from services.auth.domain import GitHubUser
from services.common.errors import InvalidArgument, Unavailable

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


class GitHubOAuth:
    """Exchanges codes (never retried: a code is single-use) and reads the user (retried: GET)."""

    def __init__(self, client: Callable[[], httpx.AsyncClient], oauth_url: str, api_url: str,
                 client_id: str, client_secret: str) -> None:
        # `client()` gives the client: the service makes it (and imports httpx) on the first call.
        self._http = client
        self._oauth = oauth_url.rstrip("/")
        self._api = api_url.rstrip("/")
        self._client_id = client_id
        self._secret = client_secret

    def authorize_url(self, state: str, challenge: str, redirect_uri: str, scope: str) -> str:
        import httpx  # noqa: PLC0415 - loaded with the first login (services/common/lazyhttp.py)

        params = {"client_id": self._client_id, "redirect_uri": redirect_uri, "state": state,
                  "code_challenge": challenge, "code_challenge_method": "S256", "scope": scope}
        return str(httpx.URL(self._oauth + "/login/oauth/authorize", params=params))

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> tuple[str, str]:
        import httpx  # noqa: PLC0415 - loaded with the first login (services/common/lazyhttp.py)

        try:
            reply = await self._http().post(
                self._oauth + "/login/oauth/access_token",
                data={"client_id": self._client_id, "client_secret": self._secret, "code": code,
                      "redirect_uri": redirect_uri, "code_verifier": verifier},
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"GitHub did not answer the code exchange ({type(exc).__name__})",
                              retry_after=5) from None
        if reply.status_code >= 500:
            raise Unavailable(f"GitHub answered {reply.status_code} to the code exchange",
                              retry_after=5)
        try:
            body: dict[str, Any] = reply.json()
        except ValueError:
            raise Unavailable("GitHub answered the code exchange with something that is not JSON") from None
        if reply.status_code != 200 or "error" in body or "access_token" not in body:
            # GitHub reports a bad code as 200 + {"error": "bad_verification_code"}.
            log.info("github code exchange refused", extra={"github_error": body.get("error")})
            raise InvalidArgument("GitHub refused the authorization code "
                                  f"({body.get('error', 'unexpected answer')}); start the login again")
        return str(body["access_token"]), str(body.get("scope", ""))

    async def user(self, token: str) -> GitHubUser:
        body = await self._get_json("/user", token)
        return GitHubUser(int(body["id"]), str(body["login"]), str(body.get("name") or ""),
                          str(body.get("avatar_url") or ""))

    async def _get_json(self, path: str, token: str, attempts: int = 3) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": "2022-11-28"}
        import httpx  # noqa: PLC0415 - loaded with the first login (services/common/lazyhttp.py)

        for attempt in range(attempts):
            try:
                reply = await self._http().get(self._api + path, headers=headers)
                if reply.status_code < 500:
                    if reply.status_code == 401:
                        raise InvalidArgument("GitHub did not accept the new access token")
                    reply.raise_for_status()
                    result: dict[str, Any] = reply.json()
                    return result
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code < 500:
                    raise Unavailable(f"GitHub answered {exc.response.status_code} for {path}") from None
            if attempt + 1 < attempts:
                # GETs are idempotent: back off with jitter and try again.
                await asyncio.sleep(0.2 * 2**attempt + random.random() * 0.1)  # noqa: S311 - jitter
        raise Unavailable(f"GitHub is not answering {path}", retry_after=5)
