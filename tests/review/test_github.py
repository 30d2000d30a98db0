"""The review service's GitHub client against the stand-in: shapes, ETags, retries, error mapping."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client import REGISTRY

from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.review.diffs import parse_patch
from services.review.domain import OutcomeUnknown
from services.review.github import GitHub, deadline_var
from standins.github.data import HELLO_USERS_HEAD
from tests.review.conftest import PRIVATE_REPO, REPO
from tests.review.fakes import MemoryEtags


@dataclass
class Env:
    github: GitHub
    etags: MemoryEtags
    control: httpx.AsyncClient

    async def token(self, login: str) -> str:
        reply = await self.control.post("/_standin/tokens", json={"login": login})
        assert reply.status_code == 201, reply.text
        return str(reply.json()["access_token"])

    async def used(self, token: str) -> int:
        reply = await self.control.get("/rate_limit", headers={"Authorization": f"Bearer {token}"})
        return int(reply.json()["rate"]["used"])

    async def faults(self, **faults: object) -> None:
        assert (await self.control.post("/_standin/faults", json=faults)).status_code == 200


@pytest.fixture
async def env(github_standin: str) -> AsyncIterator[Env]:
    etags = MemoryEtags()
    async with (httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=3.0)) as http,
                httpx.AsyncClient(base_url=github_standin, timeout=10) as control):
        yield Env(GitHub(lambda: http, github_standin, etags, timeout=0.5, retries=2), etags, control)


def requests(status: str) -> float:
    return REGISTRY.get_sample_value("tandem_github_requests_total", {"status": status}) or 0.0


async def test_pull_and_files_of_the_sample_pull_request(env: Env) -> None:
    token = await env.token("hubot")
    pull = await env.github.pull(token, "u1", REPO, 1)
    assert pull.title == "Add user lookup endpoint"
    assert pull.author == "octocat"
    assert len(pull.head_sha) == 40
    assert pull.head_sha != pull.base_sha
    files = {f.path: f for f in await env.github.pull_files(token, "u1", REPO, 1, 3000)}
    assert {p: f.status for p, f in files.items()} == {
        "README.md": "modified", "app/config.py": "added", "app/legacy_lookup.py": "removed",
        "app/main.py": "modified", "app/users.py": "modified",
        "scripts/seed_users.py": "renamed"}
    assert files["scripts/seed_users.py"].previous_path == "scripts/seed.py"
    users = files["app/users.py"]
    assert users.additions > 50
    assert users.deletions == 1
    hunks = parse_patch(users.patch)
    added = sum(1 for h in hunks for line in h.lines if line.kind == "+")
    removed = sum(1 for h in hunks for line in h.lines if line.kind == "-")
    assert (added, removed) == (users.additions, users.deletions)


async def test_unchanged_pull_is_answered_304_from_the_etag_and_costs_no_rate_limit(env: Env) -> None:
    token = await env.token("hubot")
    first = await env.github.pull(token, "u1", REPO, 1)
    files = await env.github.pull_files(token, "u1", REPO, 1, 3000)
    used = await env.used(token)
    before = requests("304")
    assert await env.github.pull(token, "u1", REPO, 1) == first
    assert await env.github.pull_files(token, "u1", REPO, 1, 3000) == files
    assert requests("304") - before == 2
    assert await env.used(token) == used
    # Another user's answers are never reused for this one.
    other = await env.token("monalisa")
    await env.github.pull(other, "u2", REPO, 1)
    assert requests("304") - before == 2


async def test_contents_at_a_commit_are_the_raw_file(env: Env) -> None:
    token = await env.token("hubot")
    pull = await env.github.pull(token, "u1", REPO, 1)
    data = await env.github.contents(token, REPO, "app/users.py", pull.head_sha, 1_000_000)
    assert data.decode() == HELLO_USERS_HEAD
    with pytest.raises(NotFound):
        await env.github.contents(token, REPO, "app/legacy_lookup.py", pull.head_sha, 1_000_000)
    with pytest.raises(InvalidArgument) as too_big:
        await env.github.contents(token, REPO, "app/users.py", pull.head_sha, 100)
    assert too_big.value.reason == "unprocessable"


async def test_private_repository_of_someone_else_is_not_found(env: Env) -> None:
    with pytest.raises(NotFound) as info:
        await env.github.pull(await env.token("hubot"), "u1", PRIVATE_REPO, 1)
    assert info.value.message == "repository or pull request not found"
    # Its collaborator sees it.
    assert (await env.github.pull(await env.token("monalisa"), "u2", PRIVATE_REPO, 1)).number == 1


async def test_refused_token_asks_for_a_new_sign_in(env: Env) -> None:
    with pytest.raises(FailedPrecondition) as info:
        await env.github.pull("gho_revoked", "u1", REPO, 1)
    assert info.value.reason == "github_reauth"
    assert "sign in again" in info.value.message


async def test_forbidden_repository_is_permission_denied(env: Env) -> None:
    await env.faults(forbidden_repos=[REPO])
    with pytest.raises(PermissionDenied):
        await env.github.pull(await env.token("hubot"), "u1", REPO, 1)


async def test_exhausted_rate_limit_is_unavailable_with_retry_after(env: Env) -> None:
    token = await env.token("hubot")
    await env.faults(rate_limit_remaining=0)
    with pytest.raises(Unavailable) as info:
        await env.github.pull(token, "u1", REPO, 1)
    assert info.value.retry_after is not None
    assert 1 <= info.value.retry_after <= 3600
    assert "rate limit" in info.value.message
    assert REGISTRY.get_sample_value("tandem_github_ratelimit_remaining") == 0


async def test_server_errors_are_retried_a_bounded_number_of_times_on_get(env: Env) -> None:
    token = await env.token("hubot")
    await env.faults(status=502)
    before = requests("502")
    with pytest.raises(Unavailable) as info:
        await env.github.pull(token, "u1", REPO, 1)
    assert info.value.reason == "github_unavailable"
    assert requests("502") - before == 3  # one try and two retries


async def test_a_post_is_never_retried_and_its_failure_is_an_unknown_outcome(env: Env) -> None:
    token = await env.token("hubot")
    await env.faults(status=500)
    before = requests("500")
    with pytest.raises(OutcomeUnknown):
        await env.github.create_review(token, REPO, 1, {"event": "COMMENT", "body": "x"})
    assert requests("500") - before == 1


async def test_latency_beyond_the_timeout_is_unavailable_after_bounded_retries(env: Env) -> None:
    token = await env.token("hubot")
    await env.faults(latency_ms=1000)
    before = requests("timeout")
    with pytest.raises(Unavailable) as info:
        await env.github.pull(token, "u1", REPO, 1)
    # Each of the three attempts gave up at the 0.5s timeout, never waiting out the 1s latency.
    assert requests("timeout") - before == 3
    assert "no answer within 0.5s" in info.value.message


async def test_the_rpc_deadline_bounds_retries(env: Env) -> None:
    token = await env.token("hubot")
    await env.faults(latency_ms=1000)
    before = requests("timeout")
    # 1s left: one attempt fits (it times out after 0.5s), a retry does not (the backoff
    # and the margins the client keeps would take it past the deadline), so the two retries
    # the client makes without a deadline are not made.
    reset = deadline_var.set(time.monotonic() + 1.0)
    try:
        with pytest.raises(Unavailable) as info:
            await env.github.pull(token, "u1", REPO, 1)
        assert info.value.reason == "github_unavailable"
        assert requests("timeout") - before == 1
        # Once the deadline has passed, no request is sent at all.
        deadline_var.set(time.monotonic() - 1)
        with pytest.raises(Unavailable) as late:
            await env.github.pull(token, "u1", REPO, 1)
        assert late.value.message == "GitHub did not answer in time; try again shortly"
        assert requests("timeout") - before == 1
    finally:
        deadline_var.reset(reset)


async def test_github_refusing_a_review_is_unprocessable_with_its_reason(env: Env) -> None:
    author = await env.token("octocat")
    with pytest.raises(InvalidArgument) as info:
        await env.github.create_review(author, REPO, 1, {"event": "APPROVE", "body": "ok"})
    assert info.value.reason == "unprocessable"
    assert "Can not approve your own pull request" in info.value.message


async def test_posting_a_review_returns_its_id(env: Env) -> None:
    token = await env.token("hubot")
    posted = await env.github.create_review(token, REPO, 1, {"event": "COMMENT", "body": "hi"})
    listed = await env.github.reviews(token, REPO, 1)
    me = await env.github.viewer(token)
    assert [(r.id, r.body, r.author_id) for r in listed] == [(posted.id, "hi", me.id)]
    assert posted.html_url.endswith(f"#pullrequestreview-{posted.id}")


async def test_a_ref_is_read_as_its_commit_against_the_first_parent(env: Env) -> None:
    token = await env.token("hubot")
    commit = await env.github.commit(token, REPO, "feature/user-lookup")
    pull = await env.github.pull(token, "u1", REPO, 1)
    assert commit.sha == pull.head_sha
    assert commit.parent_sha == pull.base_sha
    assert commit.title == "Add user lookup endpoint"
    assert "app/users.py" in {f.path for f in commit.files}
    with pytest.raises(NotFound):
        await env.github.commit(token, REPO, "no-such-branch")
