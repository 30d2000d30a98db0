"""The review service over real gRPC with auth, sessions, PostgreSQL, Redis and the GitHub stand-in."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import orjson
from prometheus_client import REGISTRY
from tandem.review.v1 import review_pb2 as rpb
from tandem.sessions.v1 import sessions_pb2 as spb

from services.common import reviewjson
from services.common.errors import REASON_KEY, RETRY_AFTER_KEY
from standins.github.data import HELLO_USERS_HEAD
from tests.helpers.identity import SignedIn
from tests.review.conftest import PRIVATE_REPO, REPO, WEBHOOK_SECRET, World, expect_code, trailer

RIGHT, LEFT = rpb.SIDE_RIGHT, rpb.SIDE_LEFT
UNPROCESSABLE = "unprocessable"


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def import_pull(w: World, user: SignedIn | None = None) -> rpb.Review:
    reply = await w.review.CreateReview(
        rpb.CreateReviewRequest(session_id=w.session_id, repo=REPO, pull_number=1),
        metadata=(user or w.editor).metadata)
    return reply.review


async def open_thread(w: World, review_id: str, path: str, line: int, side: rpb.Side.ValueType,
                      body: str = "Look here", start_line: int = 0,
                      user: SignedIn | None = None) -> rpb.Thread:
    reply = await w.review.CreateThread(
        rpb.CreateThreadRequest(review_id=review_id, path=path, line=line, side=side, body=body,
                                start_line=start_line),
        metadata=(user or w.editor).metadata)
    return reply.thread


async def events(w: World) -> list[tuple[str, dict[str, Any]]]:
    reply = await w.sessions.ListEvents(
        spb.ListEventsRequest(session_id=w.session_id, after_seq=0, limit=200),
        metadata=w.owner.metadata)
    return [(e.type, orjson.loads(e.payload_json)) for e in reply.events
            if e.type.startswith("review.")]


def signed(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_import_stores_the_pull_request_with_its_files_and_hunks(world: Callable[..., Any]) -> None:
    async with world() as w:
        review = await import_pull(w)
        assert review.session_id == w.session_id
        assert review.title == "Add user lookup endpoint"
        assert review.state == "open"
        assert review.created_by == w.editor.user_id
        pull = (await w.standin.get(f"/repos/{REPO}/pulls/1")).json()
        assert (review.head_sha, review.base_sha) == (pull["head"]["sha"], pull["base"]["sha"])
        files = {f.path: f for f in review.files}
        assert {p: f.status for p, f in files.items()} == {
            "README.md": "modified", "app/config.py": "added", "app/legacy_lookup.py": "removed",
            "app/main.py": "modified", "app/users.py": "modified",
            "scripts/seed_users.py": "renamed"}
        assert files["scripts/seed_users.py"].previous_path == "scripts/seed.py"
        listed = (await w.standin.get(f"/repos/{REPO}/pulls/1/files")).json()
        assert {f["filename"]: (f["additions"], f["deletions"]) for f in listed} == {
            p: (f.additions, f.deletions) for p, f in files.items()}

        users = await w.review.GetFile(rpb.GetFileRequest(review_id=review.id, path="app/users.py"),
                                       metadata=w.viewer.metadata)
        assert [(h.source_start, h.source_length, h.target_start, h.target_length)
                for h in users.hunks] == [(2, 8, 2, 11), (34, 3, 37, 63)]
        assert sum(1 for h in users.hunks for ln in h.lines if ln.kind == "+") == 64
        assert users.patch.startswith("@@ -2,8 +2,11 @@")
        added = next(ln for ln in users.hunks[0].lines if ln.kind == "+")
        assert (added.value, added.target_line, added.source_line) == ("import os", 5, 0)

        got = await w.review.GetReview(rpb.GetReviewRequest(review_id=review.id),
                                       metadata=w.viewer.metadata)
        assert got.review == review
        page = await w.review.ListReviews(rpb.ListReviewsRequest(session_id=w.session_id),
                                          metadata=w.viewer.metadata)
        assert [r.id for r in page.reviews] == [review.id]

        created = [p for t, p in await events(w) if t == "review.created"]
        assert len(created) == 1
        assert created[0]["review_id"] == review.id
        assert created[0]["id"] == review.id
        assert len(created[0]["files"]) == 6


async def test_reimport_is_answered_from_etags_at_no_rate_limit_cost(world: Callable[..., Any]) -> None:
    async with world() as w:
        await import_pull(w)
        used = await w.rate_limit_used(w.editor)
        not_modified = sample("tandem_github_requests_total", {"status": "304"})
        ok = sample("tandem_github_requests_total", {"status": "200"})
        again = await import_pull(w)
        assert sample("tandem_github_requests_total", {"status": "304"}) - not_modified == 2
        assert sample("tandem_github_requests_total", {"status": "200"}) == ok
        assert await w.rate_limit_used(w.editor) == used
        assert len(again.files) == 6
        page = await w.review.ListReviews(rpb.ListReviewsRequest(session_id=w.session_id, limit=1),
                                          metadata=w.viewer.metadata)
        assert [r.id for r in page.reviews] == [again.id]
        assert page.next_cursor
        rest = await w.review.ListReviews(
            rpb.ListReviewsRequest(session_id=w.session_id, limit=1, cursor=page.next_cursor),
            metadata=w.viewer.metadata)
        assert len(rest.reviews) == 1
        assert rest.reviews[0].id != again.id
        assert rest.next_cursor == ""


async def test_file_contents_come_from_github_once_then_from_the_cache(world: Callable[..., Any]) -> None:
    async with world() as w:
        review = await import_pull(w)
        await w.forget_cached_contents()
        request = rpb.GetFileRequest(review_id=review.id, path="app/users.py")
        hits = sample("tandem_cache_requests_total", {"cache": "github_contents", "result": "hit"})
        misses = sample("tandem_cache_requests_total", {"cache": "github_contents", "result": "miss"})
        first = await w.review.GetFile(request, metadata=w.viewer.metadata)
        assert first.content == HELLO_USERS_HEAD
        assert first.sha == review.head_sha
        assert sample("tandem_cache_requests_total",
                      {"cache": "github_contents", "result": "miss"}) - misses == 1
        requests = sample("tandem_github_requests_total", {"status": "200"})
        second = await w.review.GetFile(request, metadata=w.editor.metadata)
        assert second.content == first.content
        assert sample("tandem_cache_requests_total",
                      {"cache": "github_contents", "result": "hit"}) - hits == 1
        assert sample("tandem_github_requests_total", {"status": "200"}) == requests

        removed = await w.review.GetFile(
            rpb.GetFileRequest(review_id=review.id, path="app/legacy_lookup.py"),
            metadata=w.viewer.metadata)
        assert removed.status == "removed"
        assert removed.content == ""
        assert [ln.kind for h in removed.hunks for ln in h.lines] == ["-"] * 10
        await expect_code(grpc.StatusCode.NOT_FOUND, w.review.GetFile(
            rpb.GetFileRequest(review_id=review.id, path="app/nope.py"),
            metadata=w.viewer.metadata))


async def test_threads_are_validated_against_the_file_and_the_diff(world: Callable[..., Any]) -> None:
    async with world() as w:
        review = await import_pull(w)
        sql = await open_thread(w, review.id, "app/users.py", 44, RIGHT, "SQL injection")
        assert (sql.path, sql.line, sql.side, sql.start_line) == ("app/users.py", 44, RIGHT, 0)
        assert sql.commit_sha == review.head_sha
        assert not sql.resolved
        assert [c.body for c in sql.comments] == ["SQL injection"]
        assert sql.comments[0].author_id == w.editor.user_id
        ranged = await open_thread(w, review.id, "app/users.py", 52, RIGHT, "eval", start_line=51)
        assert ranged.start_line == 51
        left = await open_thread(w, review.id, "app/users.py", 6, LEFT, "why drop this?")
        assert left.side == LEFT

        async def refused(path: str, line: int, side: rpb.Side.ValueType, start: int = 0,
                          body: str = "x") -> grpc.aio.AioRpcError:
            return await expect_code(grpc.StatusCode.INVALID_ARGUMENT, open_thread(
                w, review.id, path, line, side, body, start))

        assert trailer(await refused("app/users.py", 100, RIGHT), REASON_KEY) == UNPROCESSABLE
        assert trailer(await refused("app/config.py", 1, LEFT), REASON_KEY) == UNPROCESSABLE
        assert trailer(await refused("app/users.py", 20, LEFT), REASON_KEY) == UNPROCESSABLE
        assert trailer(await refused("app/legacy_lookup.py", 1, RIGHT), REASON_KEY) == UNPROCESSABLE
        assert trailer(await refused("app/missing.py", 1, RIGHT), REASON_KEY) == UNPROCESSABLE
        assert trailer(await refused("app/users.py", 5, RIGHT, start=6), REASON_KEY) is None
        assert trailer(await refused("app/users.py", 5, RIGHT, body="  "), REASON_KEY) is None
        assert trailer(await refused("app/users.py", 5, RIGHT, body="x" * 10_001), REASON_KEY) is None

        reply = await w.review.AddComment(
            rpb.AddCommentRequest(review_id=review.id, thread_id=sql.id, body="Agreed"),
            metadata=w.owner.metadata)
        assert reply.comment.thread_id == sql.id
        await expect_code(grpc.StatusCode.NOT_FOUND, w.review.AddComment(
            rpb.AddCommentRequest(review_id=review.id, thread_id=str(uuid.uuid4()), body="x"),
            metadata=w.owner.metadata))
        for _ in range(2):  # idempotent
            done = await w.review.ResolveThread(
                rpb.ResolveThreadRequest(review_id=review.id, thread_id=sql.id),
                metadata=w.editor.metadata)
            assert done.thread.resolved
        reopened = await w.review.UnresolveThread(
            rpb.UnresolveThreadRequest(review_id=review.id, thread_id=sql.id),
            metadata=w.editor.metadata)
        assert not reopened.thread.resolved
        verdict = await w.review.CreateVerdict(
            rpb.CreateVerdictRequest(review_id=review.id, state=rpb.VERDICT_STATE_APPROVE,
                                     body="LGTM once fixed"), metadata=w.editor.metadata)
        assert verdict.verdict.state == rpb.VERDICT_STATE_APPROVE

        listed = await w.review.ListThreads(rpb.ListThreadsRequest(review_id=review.id),
                                            metadata=w.viewer.metadata)
        assert [t.id for t in listed.threads] == [sql.id, ranged.id, left.id]
        assert listed.next_cursor == ""
        first = await w.review.ListThreads(rpb.ListThreadsRequest(review_id=review.id, limit=2),
                                           metadata=w.viewer.metadata)
        rest = await w.review.ListThreads(
            rpb.ListThreadsRequest(review_id=review.id, limit=2, cursor=first.next_cursor),
            metadata=w.viewer.metadata)
        assert [t.id for t in [*first.threads, *rest.threads]] == [sql.id, ranged.id, left.id]
        assert rest.next_cursor == ""
        assert [c.body for c in listed.threads[0].comments] == ["SQL injection", "Agreed"]
        got = await w.review.GetReview(rpb.GetReviewRequest(review_id=review.id),
                                       metadata=w.viewer.metadata)
        assert got.review.verdict.id == verdict.verdict.id

        kinds = [(t, p.get("change")) for t, p in await events(w)]
        assert kinds == [("review.created", None), ("review.thread.created", None),
                         ("review.thread.created", None), ("review.thread.created", None),
                         ("review.comment.created", None),
                         ("review.updated", "thread_resolved"),
                         ("review.updated", "thread_unresolved"), ("review.updated", "verdict")]
        payloads = [p for _, p in await events(w)]
        assert payloads[1]["id"] == sql.id
        assert payloads[1]["review_id"] == review.id
        assert payloads[4]["thread_id"] == sql.id
        assert payloads[4]["body"] == "Agreed"


async def test_viewers_read_only_and_strangers_learn_nothing(world: Callable[..., Any]) -> None:
    async with world() as w:
        review = await import_pull(w)
        await w.review.ListThreads(rpb.ListThreadsRequest(review_id=review.id),
                                   metadata=w.viewer.metadata)
        await expect_code(grpc.StatusCode.PERMISSION_DENIED, import_pull(w, w.viewer))
        await expect_code(grpc.StatusCode.PERMISSION_DENIED, open_thread(
            w, review.id, "app/users.py", 44, RIGHT, user=w.viewer))
        await expect_code(grpc.StatusCode.PERMISSION_DENIED, w.review.CreateVerdict(
            rpb.CreateVerdictRequest(review_id=review.id, state=rpb.VERDICT_STATE_COMMENT),
            metadata=w.viewer.metadata))
        await expect_code(grpc.StatusCode.PERMISSION_DENIED, w.review.PublishReview(
            rpb.PublishReviewRequest(review_id=review.id), metadata=w.editor.metadata))

        for call in (
            w.review.GetReview(rpb.GetReviewRequest(review_id=review.id),
                               metadata=w.stranger.metadata),
            w.review.ListReviews(rpb.ListReviewsRequest(session_id=w.session_id),
                                 metadata=w.stranger.metadata),
            w.review.GetFile(rpb.GetFileRequest(review_id=review.id, path="app/users.py"),
                             metadata=w.stranger.metadata),
            open_thread(w, review.id, "app/users.py", 44, RIGHT, user=w.stranger),
            import_pull(w, w.stranger),
            w.review.PublishReview(rpb.PublishReviewRequest(review_id=review.id),
                                   metadata=w.stranger.metadata),
            w.review.GetReview(rpb.GetReviewRequest(review_id=str(uuid.uuid4())),
                               metadata=w.owner.metadata),
            w.review.GetReview(rpb.GetReviewRequest(review_id="not-a-uuid"),
                               metadata=w.owner.metadata),
        ):
            await expect_code(grpc.StatusCode.NOT_FOUND, call)
        await expect_code(grpc.StatusCode.UNAUTHENTICATED,
                          w.review.GetReview(rpb.GetReviewRequest(review_id=review.id)))


async def test_publish_posts_one_github_review_however_often_it_is_asked(world: Callable[..., Any]) -> None:
    async with world() as w:
        review = await import_pull(w)
        sql = await open_thread(w, review.id, "app/users.py", 44, RIGHT, "SQL injection",
                                user=w.owner)
        await w.review.AddComment(rpb.AddCommentRequest(review_id=review.id, thread_id=sql.id,
                                                        body="Agreed"), metadata=w.editor.metadata)
        done = await open_thread(w, review.id, "app/users.py", 9, RIGHT, "password")
        await w.review.ResolveThread(rpb.ResolveThreadRequest(review_id=review.id,
                                                              thread_id=done.id),
                                     metadata=w.editor.metadata)
        await open_thread(w, review.id, "app/users.py", 1, RIGHT, "docstring could say more")
        await open_thread(w, review.id, "app/users.py", 6, LEFT, "kept for a reason?")
        await w.review.CreateVerdict(rpb.CreateVerdictRequest(
            review_id=review.id, state=rpb.VERDICT_STATE_REQUEST_CHANGES,
            body="Please fix the SQL injection."), metadata=w.editor.metadata)

        request = rpb.PublishReviewRequest(review_id=review.id)
        together = await asyncio.gather(
            w.review.PublishReview(request, metadata=w.owner.metadata),
            w.review.PublishReview(request, metadata=w.owner.metadata), return_exceptions=True)
        ids = {r.github_review_id for r in together if isinstance(r, rpb.PublishReviewResponse)}
        for failed in (r for r in together if isinstance(r, BaseException)):
            assert isinstance(failed, grpc.aio.AioRpcError)
            assert failed.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert trailer(failed, REASON_KEY) == "in_progress"
        again = await w.review.PublishReview(request, metadata=w.owner.metadata)
        assert ids == {again.github_review_id}
        assert again.html_url.endswith(f"#pullrequestreview-{again.github_review_id}")

        (posted,) = await w.github_reviews()
        assert posted["id"] == again.github_review_id
        assert posted["user"]["login"] == "hubot"
        assert posted["state"] == "CHANGES_REQUESTED"
        assert posted["commit_id"] == review.head_sha
        assert posted["body"].startswith("Please fix the SQL injection.")
        assert "`app/users.py` line 1 (RIGHT): docstring could say more" in posted["body"]
        assert f"<!-- tandem-review:{review.id} -->" in posted["body"]
        comments = {(c["path"], c["line"], c["side"]): c["body"] for c in posted["comments"]}
        assert comments == {("app/users.py", 44, "RIGHT"): "SQL injection\n\n**@monalisa:** Agreed",
                            ("app/users.py", 6, "LEFT"): "kept for a reason?"}

        got = await w.review.GetReview(rpb.GetReviewRequest(review_id=review.id),
                                       metadata=w.viewer.metadata)
        assert got.review.state == "published"
        assert got.review.github_review_id == again.github_review_id
        updates = [p for t, p in await events(w) if p.get("change") == "published"]
        assert len(updates) == 1


async def test_publish_after_an_unconfirmed_attempt_adopts_what_github_has(world: Callable[..., Any]) -> None:
    async with world() as w:
        review = await import_pull(w)
        await w.faults(status=500)
        failed = await expect_code(grpc.StatusCode.UNAVAILABLE, w.review.PublishReview(
            rpb.PublishReviewRequest(review_id=review.id), metadata=w.owner.metadata))
        assert trailer(failed, REASON_KEY) == "github_unavailable"
        await w.clear_faults()
        rows = await w.sql("SELECT publish_state FROM reviews WHERE id = %s", review.id)
        assert rows == [{"publish_state": "uncertain"}]
        # GitHub did get it after all (as when the answer was lost on the way back).
        token = (await w.standin.post("/_standin/tokens", json={"login": "hubot"})).json()
        landed = await w.standin.post(
            f"/repos/{REPO}/pulls/1/reviews",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            json={"event": "COMMENT", "body": f"x\n\n<!-- tandem-review:{review.id} -->"})
        assert landed.status_code == 200, landed.text
        published = await w.review.PublishReview(rpb.PublishReviewRequest(review_id=review.id),
                                                 metadata=w.owner.metadata)
        assert published.github_review_id == landed.json()["id"]
        assert len(await w.github_reviews()) == 1


async def test_an_uncertain_publish_does_not_adopt_a_marker_review_by_someone_else(
        world: Callable[..., Any]) -> None:
    async with world() as w:
        review = await import_pull(w)
        await w.faults(status=500)
        await expect_code(grpc.StatusCode.UNAVAILABLE, w.review.PublishReview(
            rpb.PublishReviewRequest(review_id=review.id), metadata=w.owner.metadata))
        await w.clear_faults()
        # The marker is no secret: anyone who can comment on the pull request can
        # post a review carrying it (here monalisa, an editor of the session).
        marker = f"<!-- tandem-review:{review.id} -->"
        token = (await w.standin.post("/_standin/tokens", json={"login": "monalisa"})).json()
        forged = await w.standin.post(
            f"/repos/{REPO}/pulls/1/reviews",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            json={"event": "APPROVE", "body": f"LGTM\n\n{marker}"})
        assert forged.status_code == 200, forged.text

        published = await w.review.PublishReview(rpb.PublishReviewRequest(review_id=review.id),
                                                 metadata=w.owner.metadata)
        assert published.github_review_id != forged.json()["id"]
        reviews = {r["id"]: r for r in await w.github_reviews()}
        assert set(reviews) == {forged.json()["id"], published.github_review_id}
        mine = reviews[published.github_review_id]
        assert mine["user"]["login"] == "hubot"
        assert marker in mine["body"]
        got = await w.review.GetReview(rpb.GetReviewRequest(review_id=review.id),
                                       metadata=w.owner.metadata)
        assert got.review.github_review_id == published.github_review_id


async def test_webhooks_need_a_valid_signature_and_are_deduplicated(world: Callable[..., Any]) -> None:
    async with world() as w:
        body = orjson.dumps({"zen": "Keep it logically awesome.", "hook_id": 1})

        def delivery(signature: str, event: str = "ping",
                     delivery_id: str | None = None) -> rpb.HandleWebhookRequest:
            return rpb.HandleWebhookRequest(event=event, delivery_id=delivery_id or str(uuid.uuid4()),
                                            signature_256=signature, body=body)

        for signature in ("", "sha256=" + "0" * 64, signed(body, "another-secret"),
                          signed(body + b" ")):
            await expect_code(grpc.StatusCode.UNAUTHENTICATED, w.webhook(
                delivery(signature)))
        same = str(uuid.uuid4())
        first = await w.webhook(delivery(signed(body), delivery_id=same))
        assert first.outcome == "ignored"
        again = await w.webhook(delivery(signed(body), delivery_id=same))
        assert again.outcome == "duplicate"
        await expect_code(grpc.StatusCode.INVALID_ARGUMENT, w.webhook(
            delivery(signed(body), delivery_id="bad id!")))
        closed = orjson.dumps({"action": "closed", "number": 1,
                               "repository": {"full_name": REPO}})
        reply = await w.webhook(rpb.HandleWebhookRequest(
            event="pull_request", delivery_id=str(uuid.uuid4()), signature_256=signed(closed),
            body=closed))
        assert reply.outcome == "ignored"


async def test_a_signed_body_replayed_under_a_new_delivery_id_is_a_duplicate(
        world: Callable[..., Any]) -> None:
    async with world() as w:
        await import_pull(w)
        pushed = await w.push({"README.md": "pushed once"})
        assert pushed["webhook_status"] == 200
        ((signature, body),) = w.relay.received
        synchronized = [p for _, p in await events(w) if p.get("change") == "synchronize"]
        assert len(synchronized) == 1

        # Only the body is signed: whoever saw the delivery can send it again under
        # any X-GitHub-Delivery (and any X-GitHub-Event) they like.
        for event in ("pull_request", "push"):
            replay = await w.webhook(rpb.HandleWebhookRequest(
                event=event, delivery_id=str(uuid.uuid4()), signature_256=signature,
                body=body))
            assert replay.outcome == "duplicate"
        assert [p for _, p in await events(w)
                if p.get("change") == "synchronize"] == synchronized

        # Two copies racing each other: one is processed, the other is the duplicate.
        fresh = orjson.dumps({"zen": "Avoid administrative distraction.",
                              "hook_id": str(uuid.uuid4())})
        raced = await asyncio.gather(*(w.webhook(rpb.HandleWebhookRequest(
            event="ping", delivery_id=str(uuid.uuid4()), signature_256=signed(fresh),
            body=fresh)) for _ in range(2)))
        assert sorted(r.outcome for r in raced) == ["duplicate", "ignored"]


async def test_a_push_moves_the_review_to_the_new_head_and_outdates_changed_threads(
        world: Callable[..., Any]) -> None:
    async with world() as w:
        review = await import_pull(w)
        password = await open_thread(w, review.id, "app/users.py", 9, RIGHT, "secret in code")
        sql = await open_thread(w, review.id, "app/users.py", 44, RIGHT, "SQL injection")
        config = await open_thread(w, review.id, "app/config.py", 10, RIGHT, "naming")
        left = await open_thread(w, review.id, "app/users.py", 6, LEFT, "why?")
        main = await open_thread(w, review.id, "app/main.py", 1, RIGHT, "docstring")

        fixed = HELLO_USERS_HEAD.replace('DB_PASSWORD = "hunter2"',
                                         'DB_PASSWORD = os.environ["HELLO_DB_PASSWORD"]')
        pushed = await w.push({"app/users.py": fixed, "app/config.py": None})
        assert pushed["webhook_status"] == 200
        assert w.relay.answers == [200]

        got = (await w.review.GetReview(rpb.GetReviewRequest(review_id=review.id),
                                        metadata=w.viewer.metadata)).review
        assert got.head_sha == pushed["head_sha"]
        assert got.head_sha != review.head_sha
        assert "app/config.py" not in {f.path for f in got.files}
        threads = (await w.review.ListThreads(rpb.ListThreadsRequest(review_id=review.id),
                                              metadata=w.viewer.metadata)).threads
        outdated = {t.id for t in threads if t.outdated}
        assert outdated == {password.id, config.id}
        assert {t.id for t in threads} == {password.id, sql.id, config.id, left.id, main.id}
        assert all(t.commit_sha == review.head_sha for t in threads)
        content = await w.review.GetFile(rpb.GetFileRequest(review_id=review.id,
                                                            path="app/users.py"),
                                         metadata=w.viewer.metadata)
        assert content.content == fixed

        (update,) = [p for t, p in await events(w) if p.get("change") == "synchronize"]
        assert update["head_sha"] == pushed["head_sha"]
        assert set(update["outdated_thread_ids"]) == outdated

        # A thread opened now anchors to the new head.
        fresh = await open_thread(w, review.id, "app/users.py", 9, RIGHT, "better")
        assert fresh.commit_sha == pushed["head_sha"]


async def test_github_refusals_map_to_clear_errors_and_import_nothing(world: Callable[..., Any]) -> None:
    async with world() as w:
        def attempt(repo: str = REPO, number: int = 1) -> Any:
            return w.review.CreateReview(
                rpb.CreateReviewRequest(session_id=w.session_id, repo=repo, pull_number=number),
                metadata=w.owner.metadata)

        private = await expect_code(grpc.StatusCode.NOT_FOUND, attempt(PRIVATE_REPO))
        assert private.details() == "repository or pull request not found"
        await expect_code(grpc.StatusCode.NOT_FOUND, attempt(number=999))
        await w.faults(forbidden_repos=[REPO])
        await expect_code(grpc.StatusCode.PERMISSION_DENIED, attempt())
        await w.clear_faults()
        await w.faults(rate_limit_remaining=0)
        limited = await expect_code(grpc.StatusCode.UNAVAILABLE, attempt())
        retry_after = trailer(limited, RETRY_AFTER_KEY)
        assert retry_after is not None
        assert 1 <= int(retry_after) <= 3600
        assert "rate limit" in limited.details()
        await w.clear_faults()
        assert await w.sql("SELECT count(*) AS n FROM reviews WHERE session_id = %s",
                           w.session_id) == [{"n": 0}]


async def test_github_down_or_slow_is_unavailable_with_nothing_half_imported(
        world: Callable[..., Any]) -> None:
    async with world(GITHUB_TIMEOUT_SECONDS="0.3", GITHUB_RETRIES="1") as w:
        before = await w.sql("SELECT count(*) AS n FROM review_files")
        await w.faults(status=503)
        await expect_code(grpc.StatusCode.UNAVAILABLE, import_pull(w))
        await w.clear_faults()
        await w.faults(latency_ms=1500)
        slow = await expect_code(grpc.StatusCode.UNAVAILABLE, import_pull(w))
        # Every attempt gave up at the 0.3s timeout instead of waiting out the latency.
        assert "no answer within 0.3s" in slow.details()
        assert trailer(slow, REASON_KEY) == "github_unavailable"
        await w.clear_faults()
        page = await w.review.ListReviews(rpb.ListReviewsRequest(session_id=w.session_id),
                                          metadata=w.owner.metadata)
        assert list(page.reviews) == []
        assert await w.sql("SELECT count(*) AS n FROM reviews WHERE session_id = %s",
                           w.session_id) == [{"n": 0}]
        assert await w.sql("SELECT count(*) AS n FROM review_files") == before
        assert (await import_pull(w)).head_sha  # and it works again at once


async def test_a_ref_imports_its_commit_and_bad_requests_name_the_field(world: Callable[..., Any]) -> None:
    async with world() as w:
        reply = await w.review.CreateReview(
            rpb.CreateReviewRequest(session_id=w.session_id, repo=REPO, ref="feature/user-lookup"),
            metadata=w.editor.metadata)
        review = reply.review
        assert review.pull_number == 0
        assert review.ref == "feature/user-lookup"
        assert review.title == "Add user lookup endpoint"
        assert "app/users.py" in {f.path for f in review.files}
        await expect_code(grpc.StatusCode.FAILED_PRECONDITION, w.review.PublishReview(
            rpb.PublishReviewRequest(review_id=review.id), metadata=w.owner.metadata))
        await expect_code(grpc.StatusCode.NOT_FOUND, w.review.CreateReview(
            rpb.CreateReviewRequest(session_id=w.session_id, repo=REPO, ref="no-such-branch"),
            metadata=w.editor.metadata))
        both = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, w.review.CreateReview(
            rpb.CreateReviewRequest(session_id=w.session_id, repo=REPO, pull_number=1, ref="main"),
            metadata=w.editor.metadata))
        assert b"pull_number" in (dict(both.trailing_metadata() or ()).get("tandem-fields-bin")
                                  or b"")
        await expect_code(grpc.StatusCode.INVALID_ARGUMENT, w.review.CreateReview(
            rpb.CreateReviewRequest(session_id=w.session_id, repo="nope", pull_number=1),
            metadata=w.editor.metadata))


async def test_an_ended_session_keeps_its_review_readable_but_frozen(world: Callable[..., Any]) -> None:
    # No membership cache here, so the end is seen at once (in production within seconds).
    async with world(REVIEW_MEMBERSHIP_CACHE_SECONDS="0") as w:
        review = await import_pull(w)
        await w.sessions.EndSession(spb.EndSessionRequest(session_id=w.session_id),
                                    metadata=w.owner.metadata)
        await w.review.GetReview(rpb.GetReviewRequest(review_id=review.id),
                                 metadata=w.viewer.metadata)
        ended = await expect_code(grpc.StatusCode.FAILED_PRECONDITION, open_thread(
            w, review.id, "app/users.py", 44, RIGHT))
        assert "ended" in ended.details()
        await expect_code(grpc.StatusCode.FAILED_PRECONDITION, import_pull(w))


async def test_every_reviewer_keeps_one_current_verdict_and_the_review_says_the_decision(
        world: Callable[..., Any]) -> None:
    async with world() as w:
        review = await import_pull(w)
        assert (list(review.verdicts), review.decision) == ([], "")

        async def verdict(user: SignedIn, state: rpb.VerdictState.ValueType, body: str) -> str:
            reply = await w.review.CreateVerdict(
                rpb.CreateVerdictRequest(review_id=review.id, state=state, body=body),
                metadata=user.metadata)
            return reply.verdict.id

        async def shown() -> rpb.Review:
            got = await w.review.GetReview(rpb.GetReviewRequest(review_id=review.id),
                                           metadata=w.viewer.metadata)
            listed = await w.review.ListReviews(rpb.ListReviewsRequest(session_id=w.session_id),
                                                metadata=w.viewer.metadata)
            assert listed.reviews[0] == got.review  # the list shows the same
            return got.review

        def people(r: rpb.Review) -> list[tuple[str, int, str]]:
            return [(v.author.github_login, v.state, v.body) for v in r.verdicts]

        APPROVE, CHANGES, COMMENT = (rpb.VERDICT_STATE_APPROVE, rpb.VERDICT_STATE_REQUEST_CHANGES,
                                     rpb.VERDICT_STATE_COMMENT)
        await verdict(w.owner, CHANGES, "the SQL on line 44 is injectable")
        await verdict(w.editor, APPROVE, "ship it")
        now = await shown()
        assert people(now) == [("hubot", CHANGES, "the SQL on line 44 is injectable"),
                               ("monalisa", APPROVE, "ship it")]
        assert now.decision == "changes_requested"  # the editor's approval does not hide it
        owner_approves = await verdict(w.owner, APPROVE, "fixed, thanks")
        now = await shown()
        assert people(now) == [("monalisa", APPROVE, "ship it"), ("hubot", APPROVE, "fixed, thanks")]
        assert now.decision == "approved"
        last = await verdict(w.editor, COMMENT, "one more thought")
        now = await shown()
        assert people(now) == [("hubot", APPROVE, "fixed, thanks"),
                               ("monalisa", COMMENT, "one more thought")]
        assert now.decision == "approved"
        assert now.verdict.id == last  # the latest of anyone's, as before
        assert now.verdicts[0].id == owner_approves
        assert {v.author.id for v in now.verdicts} == {w.owner.user_id, w.editor.user_id}
        assert all(v.author_id == v.author.id and v.author.avatar_url for v in now.verdicts)

        rendered = reviewjson.review_json(now)
        assert rendered["decision"] == "approved"
        assert [(v["user"]["github_login"], v["state"]) for v in rendered["verdicts"]] == [
            ("hubot", "approve"), ("monalisa", "comment")]
        assert set(rendered["verdicts"][0]) == {"user", "state", "body", "at"}
        assert set(rendered["verdicts"][0]["user"]) == {"id", "github_login", "name",
                                                        "avatar_url", "created_at"}

        # Each verdict event carries the review as it then stands, with the same shape.
        updates = [p for t, p in await events(w) if p.get("change") == "verdict"]
        assert [u["decision"] for u in updates] == ["changes_requested", "changes_requested",
                                                    "approved", "approved"]
        assert updates[-1]["verdicts"] == rendered["verdicts"]
