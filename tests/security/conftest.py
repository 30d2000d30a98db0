"""Security-test fixtures: a private platform with a CORS allow-list, and real ids to aim at."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.helpers.identity import SignedIn
from tests.helpers.realtime import Crew
from tests.reliability.support import FaultyWorld, private_world

ALLOWED_ORIGIN = "https://app.tandem.example"
REPO = "tandem-demo/hello-api"


@pytest.fixture(scope="package")
def secure(base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultyWorld]:
    """The security tests' own platform: fuzzing may create and delete at will."""
    with private_world(base_env, tmp_path_factory.mktemp("security"),
                       CORS_ORIGINS=ALLOWED_ORIGIN) as world:
        yield world


@dataclass
class Stage:
    """A session with an owner, editor and viewer, holding one of every kind of thing."""

    crew: Crew
    session_id: str
    review_id: str
    thread_id: str
    job_id: str
    path: str
    invitation_id: str  # pending, sent by the owner to someone else
    incoming_id: str  # pending, addressed to the owner
    notification_id: str  # the owner's

    @property
    def url(self) -> str:
        return self.crew.url

    def fill(self, template: str, session_id: str | None = None) -> str:
        """A path template of /openapi.json with this stage's ids."""
        if template.startswith("/api/v1/reviews/"):
            values = {"id": self.review_id, "thread_id": self.thread_id, "path": self.path}
        elif template.startswith("/api/v1/sessions/"):
            values = {"id": session_id or self.session_id, "user_id": self.crew.viewer.user_id}
        elif template.startswith("/api/v1/ai/jobs/"):
            values = {"job_id": self.job_id}
        elif template == "/api/v1/invitations/{id}":
            values = {"id": self.invitation_id}
        elif template.startswith("/api/v1/invitations/"):
            values = {"id": self.incoming_id}
        else:
            values = {"id": self.notification_id}
        return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], template)


def build_stage(url: str) -> Stage:
    """Everything through the public API, as a client would make it."""
    crew = Crew.sign_in(url)
    session_id = crew.session(title="Security stage")
    with httpx.Client(base_url=url, timeout=30) as api:
        def call(user: SignedIn, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
            reply = api.request(method, path, headers=user.headers, **kwargs)
            assert reply.status_code < 300, reply.text
            body: dict[str, Any] = reply.json()
            return body

        review = call(crew.owner, "POST", f"/api/v1/sessions/{session_id}/reviews",
                      json={"repo": REPO, "pull_number": 1})
        path = next(f["path"] for f in review["files"] if f["path"].endswith(".py"))
        thread = call(crew.editor, "POST", f"/api/v1/reviews/{review['id']}/threads",
                      json={"path": path, "line": 1, "body": "Why this import?"})
        job = call(crew.editor, "POST", f"/api/v1/reviews/{review['id']}/ai", json={})
        invitation = call(crew.owner, "POST", f"/api/v1/sessions/{session_id}/invitations",
                          json={"role": "viewer"})
        # The stranger owns another session and invites the owner: an invitation and a
        # notification addressed to the owner.
        other = call(crew.stranger, "POST", "/api/v1/sessions", json={"title": "Elsewhere"})
        incoming = call(crew.stranger, "POST", f"/api/v1/sessions/{other['id']}/invitations",
                        json={"github_login": crew.owner.login, "role": "viewer"})
        notes = call(crew.owner, "GET", "/api/v1/notifications")
    return Stage(crew, session_id, review["id"], thread["id"], job["job_id"], path,
                 invitation["id"], incoming["id"], notes["items"][0]["id"])


@pytest.fixture(scope="package")
def stage(secure: FaultyWorld) -> Stage:
    return build_stage(secure.url)


@pytest.fixture(scope="package")
def openapi(secure: FaultyWorld) -> dict[str, Any]:
    reply = httpx.get(secure.url + "/openapi.json", timeout=10)
    assert reply.status_code == 200
    document: dict[str, Any] = reply.json()
    return document
