"""`make demo`: sample people, a session with members, chat and real code in a running platform.

    make run                                   # in one terminal
    make demo                                  # in another; ARGS="--url http://host:port"
    .venv/bin/python -m scripts.demo --url http://127.0.0.1:8080

Signs octocat (owner), hubot (editor) and monalisa (viewer) in through the GitHub stand-in
(as scripts.devlogin does), creates a Python session, makes the other two members by
invitation, writes a module into the shared document over the document socket (the
y-websocket protocol, as a browser's editor would), posts a few chat messages, imports the
stand-in's pull request tandem-demo/hello-api#1 (as octocat), opens threads on its Python
file that hubot answers, records hubot's verdict, runs a builtin AI review of the pull request
to the end, and prints the address to open and the logins to use. Every run makes a new
session and changes nothing made before, so running it twice is safe: you get two sessions.

Works only against the local GitHub stand-in (it signs any login in at once).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.realtime_scenarios import DocClient
from scripts.devlogin import SignedIn, sign_in_http
from standins.github.data import HELLO_USERS_PROBLEMS

OWNER, EDITOR, VIEWER = "octocat", "hubot", "monalisa"
TITLE = "Demo: rate limiter for hello-api"
DESCRIPTION = "A token bucket for the hello-api gateway, written and reviewed together."
LANGUAGE = "python"

CODE = '''"""A token bucket: at most `rate` requests a second, in bursts of up to `burst`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float
    burst: int
    tokens: float = field(init=False)
    updated: float = field(init=False, default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.tokens = float(self.burst)

    def take(self, now: float | None = None) -> bool:
        """Spend one token if there is one; say whether the request may go ahead."""
        now = time.monotonic() if now is None else now
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def retry_after(self) -> float:
        """Seconds until the next token, for a 429's Retry-After header."""
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


def limiter_for(client_id: str, buckets: dict[str, TokenBucket]) -> TokenBucket:
    # Buckets grow for ever: idle clients are never evicted.
    return buckets.setdefault(client_id, TokenBucket(rate=20, burst=40))
'''

# The pull request the room reviews: the stand-in's sample, with problems in its Python file.
REPO, PULL_NUMBER, PULL_FILE = "tandem-demo/hello-api", 1, "app/users.py"
# Threads octocat opens on PULL_FILE (problem of the stand-in's sample, body) and hubot's reply.
THREADS = (
    ("sql-injection",
     "The search text goes straight into the SQL here: anyone can end the string and add "
     "their own query. Let's pass it as a parameter.",
     "Agreed: `WHERE name LIKE ?` with `(f\"%{text}%\",)`. Escaping % and _ would be nice too, "
     "or searching for \"_\" matches everybody."),
    ("eval-on-user-input",
     "`eval` of the filter query parameter runs whatever a client sends.",
     "Let's parse `key=value` pairs ourselves; even `ast.literal_eval` is more than we need."),
    ("hard-coded-password",
     "A password in the source ends up in every clone and every log of this repository.",
     "Read it from HELLO_DB_PASSWORD in app/config.py, like the other settings."),
)
VERDICT = ("request_changes",
           "Three security problems to fix first: SQL built from user text, eval of the filter, "
           "and the password in the source. The rest reads well.")
AI_PROVIDER = "builtin"
AI_WAIT_SECONDS = 40.0

CHAT = (
    (OWNER, "Welcome! This is the token bucket hello-api needs before we open the API up."),
    (EDITOR, "Looks good. retry_after rounds down though: a client could retry too early."),
    (VIEWER, "Just watching. Does evicting idle buckets in limiter_for go in this pull request?"),
    (OWNER, "Next one. hubot, can you add a test for a burst of 41 requests?"),
)


@dataclass(frozen=True)
class Demo:
    url: str
    session_id: str
    people: dict[str, SignedIn]
    review_id: str
    ai_summary: str

    @property
    def room(self) -> str:
        return f"{self.url}/sessions/{self.session_id}"


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def _json(reply: httpx.Response, expected: int, what: str) -> dict[str, Any]:
    if reply.status_code != expected:
        raise RuntimeError(f"{what}: {reply.status_code} {reply.text[:300]}")
    body: dict[str, Any] = reply.json()
    return body


async def _write_document(url: str, session_id: str, token: str, code: str) -> None:
    """Type the code into the shared document over the document socket, and wait until the
    platform has stored it (so a browser opened right after sees it)."""
    doc = await DocClient.connect(url, session_id, token)
    try:
        await asyncio.wait_for(doc.synced.wait(), 15)
        await doc.insert(len(doc.value()), code)
    finally:
        await doc.close()


def _wait_stored(api: httpx.Client, session_id: str, owner: SignedIn, code: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        body = _json(api.get(f"/api/v1/sessions/{session_id}/document", headers=owner.headers),
                     200, "reading the document")
        if body["text"] == code:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the document was not stored within 15 s (it holds "
                               f"{len(body['text'])} characters, expected {len(code)})")
        time.sleep(0.2)


def _review_pull(api: httpx.Client, session_id: str, people: dict[str, SignedIn]) -> tuple[str, str]:
    """Import the sample pull request, discuss it, decide, and have it reviewed by the builtin
    AI provider; (review id, the AI job's summary)."""
    owner, editor = people[OWNER], people[EDITOR]
    step(f"importing {REPO} pull request #{PULL_NUMBER} into the session, as {OWNER}")
    review = _json(api.post(f"/api/v1/sessions/{session_id}/reviews", headers=owner.headers,
                            json={"repo": REPO, "pull_number": PULL_NUMBER}, timeout=30),
                   201, "importing the pull request")
    review_id = str(review["id"])
    for problem, body, reply in THREADS:
        line = HELLO_USERS_PROBLEMS[problem][0]
        step(f"{OWNER} opens a thread on {PULL_FILE} line {line} ({problem}); {EDITOR} replies")
        thread = _json(api.post(f"/api/v1/reviews/{review_id}/threads", headers=owner.headers,
                                json={"path": PULL_FILE, "line": line, "side": "RIGHT",
                                      "body": body}),
                       201, f"opening the thread on line {line}")
        _json(api.post(f"/api/v1/reviews/{review_id}/threads/{thread['id']}/comments",
                       headers=editor.headers, json={"body": reply}),
              201, f"{EDITOR}'s reply on line {line}")
    state, body = VERDICT
    step(f"{EDITOR} finishes the review: {state}")
    _json(api.post(f"/api/v1/reviews/{review_id}/verdicts", headers=editor.headers,
                   json={"state": state, "body": body}), 201, f"{EDITOR}'s verdict")
    step(f"{OWNER} runs an AI review of the pull request ({AI_PROVIDER}) and waits for it")
    job_id = _json(api.post(f"/api/v1/reviews/{review_id}/ai", headers=owner.headers,
                            json={"provider": AI_PROVIDER}), 202, "requesting the AI review")["job_id"]
    deadline = time.monotonic() + AI_WAIT_SECONDS
    while True:
        job = _json(api.get(f"/api/v1/ai/jobs/{job_id}", headers=owner.headers), 200,
                    "reading the AI review")
        if job["status"] == "done":
            break
        if job["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"the AI review {job['status']}: {job.get('error')}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the AI review was still {job['status']} after "
                               f"{AI_WAIT_SECONDS:.0f} s (is the ai service running?)")
        time.sleep(0.2)
    step(f"AI review done: {job['summary']}")
    return review_id, str(job["summary"])


def seed(url: str) -> Demo:
    url = url.rstrip("/")
    step(f"signing in {OWNER}, {EDITOR} and {VIEWER} through the GitHub stand-in at {url}")
    people = {login: sign_in_http(url, login) for login in (OWNER, EDITOR, VIEWER)}
    owner = people[OWNER]
    with httpx.Client(base_url=url, timeout=15) as api:
        step(f"creating the session {TITLE!r} ({LANGUAGE}), owned by {OWNER}")
        session = _json(api.post("/api/v1/sessions", headers=owner.headers,
                                 json={"title": TITLE, "description": DESCRIPTION,
                                       "language": LANGUAGE}),
                        201, "creating the session")
        session_id = str(session["id"])
        for login, role in ((EDITOR, "editor"), (VIEWER, "viewer")):
            step(f"inviting {login} as {role}, and accepting as {login}")
            invitation = _json(api.post(f"/api/v1/sessions/{session_id}/invitations",
                                        headers=owner.headers,
                                        json={"github_login": login, "role": role}),
                               201, f"inviting {login}")
            _json(api.post(f"/api/v1/invitations/{invitation['id']}/accept",
                           headers=people[login].headers), 200, f"{login} accepting")
        step(f"writing {len(CODE.splitlines())} lines of Python into the shared document")
        asyncio.run(_write_document(url, session_id, owner.access_token, CODE))
        _wait_stored(api, session_id, owner, CODE)
        step(f"posting {len(CHAT)} chat messages")
        for login, body in CHAT:
            _json(api.post(f"/api/v1/sessions/{session_id}/messages",
                           headers=people[login].headers, json={"body": body}),
                  201, f"{login}'s chat message")
        review_id, ai_summary = _review_pull(api, session_id, people)
    return Demo(url, session_id, people, review_id, ai_summary)


def report(demo: Demo, seconds: float) -> str:
    return "\n".join((
        f"Demo ready in {seconds:.1f} s: {TITLE!r}",
        "",
        f"  Open {demo.room}",
        "  and Sign in with GitHub; on the GitHub stand-in's page pick:",
        f"    {OWNER:<9} owner   invites, changes roles, renames and ends the session",
        f"    {EDITOR:<9} editor  edits the document, chats and reviews",
        f"    {VIEWER:<9} viewer  reads and chats, cannot type",
        "  For a second person at once, use a private window or another browser profile.",
        "",
        f"  In the room: pull request {REPO} #{PULL_NUMBER} with {len(THREADS)} threads on "
        f"{PULL_FILE},",
        f"  {EDITOR}'s verdict ({VERDICT[0].replace('_', ' ')}) and a finished AI review:",
        f"    {demo.ai_summary}",
        "",
        "  Running `make demo` again makes another session; nothing made before is changed.",
    ))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080",
                        help="the running gateway's base URL (default %(default)s)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        demo = seed(args.url)
    except (RuntimeError, httpx.HTTPError, OSError, TimeoutError) as exc:
        print(f"demo: {exc}\n(is `make run` up at {args.url}, with the GitHub stand-in?)",
              file=sys.stderr)
        raise SystemExit(1) from None
    print(report(demo, time.monotonic() - started), flush=True)


if __name__ == "__main__":
    main()
