"""End-to-end realtime helpers: a second gateway replica, signed-in people, sessions with members."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bench.realtime_scenarios import ws_url
from scripts.platform import LocalPlatform, ProcSpec, free_port, wait_ready
from tests.helpers.identity import SignedIn, sign_in_http

SECOND_GATEWAY = "gateway-realtime"


@pytest.fixture(scope="session")
def gateway2(platform: LocalPlatform) -> str:
    """A second gateway replica of the shared platform (same services and Redis)."""
    if SECOND_GATEWAY not in platform.procs:
        port = platform.add_gateway(SECOND_GATEWAY)
        wait_ready(f"http://127.0.0.1:{port}/ready", 60, what=SECOND_GATEWAY)
    return "http://127.0.0.1:" + platform.specs[SECOND_GATEWAY].env["GATEWAY_PORT"]


def add_gateway_with(platform: LocalPlatform, name: str, **env: str) -> str:
    """Another gateway replica with its own settings (e.g. short presence heartbeats)."""
    port = free_port()
    spec = platform.specs["gateway"]
    platform.specs[name] = ProcSpec(name, spec.argv, dict(spec.env, GATEWAY_PORT=str(port), **env))
    platform.start([name])
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/ready", 60, what=name)
    return url


@dataclass
class Crew:
    """People signed in once per module (sign-ins count against the per-IP auth limit)."""

    url: str
    owner: SignedIn
    editor: SignedIn
    viewer: SignedIn
    stranger: SignedIn

    @classmethod
    def sign_in(cls, url: str) -> Crew:
        tag = secrets.token_hex(3)
        people = [sign_in_http(url, f"rt-{role}-{tag}")
                  for role in ("owner", "editor", "viewer", "stranger")]
        return cls(url, *people)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def session(self, *, editor: bool = True, viewer: bool = True, title: str = "Pairing") -> str:
        """A new session owned by `owner`, with the editor and viewer joined by invitation."""
        with self.api() as api:
            reply = api.post("/api/v1/sessions", json={"title": title},
                             headers=self.owner.headers)
            assert reply.status_code == 201, reply.text
            session_id: str = reply.json()["id"]
            for user, role, wanted in ((self.editor, "editor", editor),
                                       (self.viewer, "viewer", viewer)):
                if wanted:
                    self.join(api, session_id, user, role)
        return session_id

    def join(self, api: httpx.Client, session_id: str, user: SignedIn, role: str) -> None:
        invited = api.post(f"/api/v1/sessions/{session_id}/invitations",
                           json={"github_login": user.login, "role": role},
                           headers=self.owner.headers)
        assert invited.status_code == 201, invited.text
        accepted = api.post(f"/api/v1/invitations/{invited.json()['id']}/accept",
                            headers=user.headers)
        assert accepted.status_code == 200, accepted.text

    def call(self, method: str, path: str, user: SignedIn | None = None,
             **kwargs: Any) -> httpx.Response:
        with self.api() as api:
            return api.request(method, path, headers=(user or self.owner).headers, **kwargs)

    def document(self, session_id: str) -> dict[str, Any]:
        reply = self.call("GET", f"/api/v1/sessions/{session_id}/document")
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body


async def refused(url: str, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
    """The HTTP status (and error body) of a WebSocket handshake the gateway refuses."""
    with pytest.raises(InvalidStatus) as info:
        async with connect(ws_url(url, path, token), proxy=None, open_timeout=5):
            pass
    response = info.value.response
    body: dict[str, Any] = orjson.loads(response.body or b"{}")
    return response.status_code, body
