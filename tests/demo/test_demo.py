"""`make demo` against the run's shared platform: seeded people, members, chat and code, an
imported pull request with threads, a verdict and a finished AI review; twice."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import pytest

from scripts import demo
from scripts.platform import ROOT, LocalPlatform, python_env
from standins.github.data import HELLO_USERS_PROBLEMS
from tests.helpers.identity import sign_in_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _run(url: str) -> tuple[str, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "scripts.demo", "--url", url], cwd=ROOT,
                          env=python_env(), capture_output=True, text=True, timeout=60, check=False)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, took


def test_demo_seeds_a_session_with_members_chat_and_code_and_runs_twice(
        platform: LocalPlatform) -> None:
    first, took = _run(platform.url)
    assert took < 60, f"the demo took {took:.0f} s; its promise is under a minute"
    second, _ = _run(platform.url)

    rooms = [re.search(r"Open (http://\S+/sessions/([0-9a-f-]{36}))", out) for out in (first, second)]
    assert rooms[0] is not None, first
    assert rooms[1] is not None, second
    assert rooms[0].group(1).startswith(platform.url + "/sessions/")
    assert rooms[0].group(2) != rooms[1].group(2), "a second run makes a second session"
    assert "==> " in first, "progress lines"
    for login in ("octocat", "hubot", "monalisa"):
        assert login in first
    assert "again" in first  # says that running it twice is fine
    # A line per step of the review part, in order.
    progress = [line for line in first.splitlines() if line.startswith("==> ")]
    review_steps = progress[-(len(demo.THREADS) + 4):]
    assert "importing tandem-demo/hello-api pull request #1" in review_steps[0], progress
    for line, (problem, _, _) in zip(review_steps[1:], demo.THREADS, strict=False):
        assert "opens a thread on app/users.py" in line, progress
        assert problem in line, progress
    assert "finishes the review: request_changes" in review_steps[-3], progress
    assert "runs an AI review" in review_steps[-2], progress
    assert review_steps[-1].startswith("==> AI review done: "), progress

    owner = sign_in_http(platform.url, "octocat")
    with httpx.Client(base_url=platform.url, headers=owner.headers, timeout=10) as api:
        for room in rooms:
            assert room is not None
            sid = room.group(2)
            session = api.get(f"/api/v1/sessions/{sid}").json()
            assert session["language"] == "python"
            assert session["role"] == "owner"
            members = api.get(f"/api/v1/sessions/{sid}/members").json()["items"]
            roles = {m["user"]["github_login"]: m["role"] for m in members}
            assert roles == {"octocat": "owner", "hubot": "editor", "monalisa": "viewer"}
            document = api.get(f"/api/v1/sessions/{sid}/document").json()
            assert document["text"] == demo.CODE
            compile(document["text"], "demo.py", "exec")  # real Python
            messages = api.get(f"/api/v1/sessions/{sid}/messages").json()["items"]
            assert [(m["author"]["github_login"], m["body"]) for m in messages] == list(demo.CHAT)

            [review] = api.get(f"/api/v1/sessions/{sid}/reviews").json()["items"]
            assert (review["repo"], review["pull_number"]) == ("tandem-demo/hello-api", 1)
            logins = {m["user"]["id"]: m["user"]["github_login"] for m in members}
            assert logins[review["created_by"]] == "octocat"
            threads = api.get(f"/api/v1/reviews/{review['id']}/threads").json()["items"]
            assert [(t["path"], t["line"]) for t in threads] == [
                ("app/users.py", HELLO_USERS_PROBLEMS[problem][0]) for problem, _, _ in demo.THREADS]
            for thread, (_, body, reply) in zip(threads, demo.THREADS, strict=True):
                assert [(logins[c["author_id"]], c["body"]) for c in thread["comments"]] == [
                    ("octocat", body), ("hubot", reply)]
            assert [(v["user"]["github_login"], v["state"], v["body"])
                    for v in review["verdicts"]] == [("hubot", *demo.VERDICT)]
            assert review["decision"] == "changes_requested"
            [job] = api.get(f"/api/v1/reviews/{review['id']}/ai").json()["items"]
            assert (job["status"], job["provider"]) == ("done", "builtin")
            assert job["findings"], job
            assert job["summary"] in (first if room is rooms[0] else second)
