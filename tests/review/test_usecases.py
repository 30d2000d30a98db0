"""The review use cases against in-memory ports: import, threads, verdicts, publishing, webhooks.

No database, Redis or network (tests/review/fakes.py); the integration tests
(test_review_service.py) run the same rules over gRPC with the real adapters.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass, field, replace

import orjson
import pytest

from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from services.common.identity import Caller
from services.common.membership import Membership
from services.review.domain import (
    ChangedFile,
    CommitInfo,
    GitHubUser,
    Limits,
    ListedReview,
    OutcomeUnknown,
    Person,
    PullInfo,
    Review,
    publish_marker,
)
from services.review.events import JsonRenderer
from services.review.usecases import ReviewUseCases
from standins.github.diffs import unified_patch
from tests.review.fakes import (
    FakeDirectory,
    FakeEvents,
    FakeGitHub,
    FakeMembers,
    MemoryContents,
    MemoryDeliveries,
    MemoryStore,
    Pull,
)

SECRET = "unit-webhook-secret"
REPO = "octo/hello"
BASE_SHA, HEAD_SHA, NEXT_SHA = "0" * 40, "1" * 40, "2" * 40
BASE = "".join(f"line {n}\n" for n in range(1, 21))
HEAD = BASE.replace("line 2\n", "LINE 2\n")
GONE = "x\ny\n"


def changed(base: str, head: str) -> list[ChangedFile]:
    return [ChangedFile("app.py", "modified", 1, 1, unified_patch(base, head), ""),
            ChangedFile("old.py", "removed", 0, 2, unified_patch(GONE, ""), "")]


@dataclass
class World:
    uc: ReviewUseCases
    store: MemoryStore
    github: FakeGitHub
    members: FakeMembers
    directory: FakeDirectory
    events: FakeEvents
    contents: MemoryContents
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events.appended]

    async def import_pull(self, user: Caller | None = None) -> Review:
        return await self.uc.reviews.create_review(user or EDITOR, self.session_id, REPO, 1, "")

    def push(self, head: str, sha: str = NEXT_SHA) -> None:
        """A push to the pull request: a new head commit with `head` as app.py."""
        pull = self.github.pulls[(REPO, 1)]
        pull.info = replace(pull.info, head_sha=sha)
        pull.files = changed(BASE, head)
        self.github.files[(sha, "app.py")] = head.encode()


def caller(user_id: str) -> Caller:
    return Caller(user_id, internal=False, token="access-" + user_id)


OWNER, EDITOR, VIEWER, STRANGER = (caller("u-owner"), caller("u-editor"), caller("u-viewer"),
                                   caller("u-stranger"))


@pytest.fixture
def w() -> World:
    store, github, members, directory = MemoryStore(), FakeGitHub(), FakeMembers(), FakeDirectory()
    events, contents = FakeEvents(), MemoryContents()
    uc = ReviewUseCases(repo=store, github=github, members=members, directory=directory,
                        events=events, contents=contents, deliveries=MemoryDeliveries(),
                        render=JsonRenderer(), limits=Limits(1_000_000, 3000),
                        webhook_secret=SECRET)
    world = World(uc, store, github, members, directory, events, contents)
    for number, (user, role, login) in enumerate([(OWNER, "owner", "olivia"),
                                                 (EDITOR, "editor", "eddie"),
                                                 (VIEWER, "viewer", "vera")], start=1):
        assert user.user_id is not None
        members.members[(world.session_id, user.user_id)] = Membership(role, active=True)
        directory.tokens[user.user_id] = f"gh-{login}"
        directory.people_by_id[user.user_id] = Person(user.user_id, login, login.title(),
                                                      f"https://avatars.example/{login}", None)
        github.users[f"gh-{login}"] = GitHubUser(number, login)
    github.pulls[(REPO, 1)] = Pull(PullInfo(1, "Shout line two", HEAD_SHA, BASE_SHA, "open",
                                            "someone"), changed(BASE, HEAD))
    github.commits[(REPO, "feature")] = CommitInfo(HEAD_SHA, BASE_SHA, "Shout line two",
                                                   changed(BASE, HEAD))
    github.files[(HEAD_SHA, "app.py")] = HEAD.encode()
    return world


# --- import ---------------------------------------------------------------------------


async def test_importing_a_pull_request_stores_it_whole_and_tells_the_session(w: World) -> None:
    review = await w.import_pull()
    assert (review.repo, review.pull_number, review.head_sha, review.base_sha, review.title) == (
        REPO, 1, HEAD_SHA, BASE_SHA, "Shout line two")
    assert [f.path for f in review.files] == ["app.py", "old.py"]
    assert await w.store.get_review(review.id) == review
    stored = await w.store.get_file(review.id, "app.py")
    assert stored is not None
    assert stored.hunks
    # GitHub is asked with the importer's own token.
    assert {token for _, token in w.github.calls} == {"gh-eddie"}
    [event] = w.events.appended
    assert (event.kind, event.user_id, event.session_id) == ("review.created", "u-editor",
                                                             w.session_id)
    assert event.payload["review_id"] == review.id == event.payload["id"]
    assert "session_id" not in event.payload  # the envelope carries it


async def test_a_ref_is_imported_as_its_commit(w: World) -> None:
    review = await w.uc.reviews.create_review(EDITOR, w.session_id, REPO, 0, " feature ")
    assert (review.pull_number, review.ref, review.head_sha) == (None, "feature", HEAD_SHA)
    assert [method for method, _ in w.github.calls] == ["commit"]


@pytest.mark.parametrize(("who", "error"), [
    (VIEWER, PermissionDenied), (STRANGER, NotFound),
    (Caller(None, internal=True), Unauthenticated),
])
async def test_only_members_who_may_write_import(w: World, who: Caller,
                                                 error: type[Exception]) -> None:
    with pytest.raises(error):
        await w.import_pull(who)
    assert w.store.reviews == {}
    assert w.github.calls == []


async def test_an_ended_session_takes_no_import(w: World) -> None:
    w.members.members[(w.session_id, "u-editor")] = Membership("editor", active=False)
    with pytest.raises(FailedPrecondition, match="ended"):
        await w.import_pull()


async def test_a_github_failure_part_way_leaves_no_trace(w: World) -> None:
    w.github.fail["pull_files"] = Unavailable("GitHub is unavailable", reason="github_unavailable")
    with pytest.raises(Unavailable):
        await w.import_pull()
    assert w.store.reviews == {}
    assert w.events.appended == []


async def test_a_refused_github_token_is_forgotten_so_the_next_call_asks_auth_again(
        w: World) -> None:
    del w.github.users["gh-eddie"]  # revoked at GitHub
    with pytest.raises(FailedPrecondition) as info:
        await w.import_pull()
    assert info.value.reason == "github_reauth"
    assert w.directory.forgotten == ["u-editor"]


async def test_reviews_are_listed_newest_first_in_pages(w: World) -> None:
    made = [await w.import_pull() for _ in range(3)]
    first, cursor = await w.uc.reviews.list_reviews(VIEWER, w.session_id, 2, "")
    assert [r.id for r in first] == [made[2].id, made[1].id]
    rest, end = await w.uc.reviews.list_reviews(VIEWER, w.session_id, 2, cursor)
    assert ([r.id for r in rest], end) == ([made[0].id], "")
    with pytest.raises(NotFound):
        await w.uc.reviews.list_reviews(STRANGER, w.session_id, 2, "")


async def test_a_file_is_read_at_the_head_once_then_from_the_cache(w: World) -> None:
    review = await w.import_pull()
    view = await w.uc.reviews.get_file(VIEWER, review.id, "app.py")
    assert (view.content, view.sha) == (HEAD, HEAD_SHA)
    again = await w.uc.reviews.get_file(OWNER, review.id, "app.py")
    assert again.content == HEAD
    assert [m for m, _ in w.github.calls].count("contents") == 1
    # Read as the importer, whoever asks.
    assert ("contents", "gh-eddie") in w.github.calls
    removed = await w.uc.reviews.get_file(VIEWER, review.id, "old.py")
    assert removed.content is None
    with pytest.raises(NotFound):
        await w.uc.reviews.get_file(VIEWER, review.id, "nope.py")


async def test_when_the_importer_cannot_read_github_the_reader_s_token_is_used(w: World) -> None:
    review = await w.import_pull()
    del w.directory.tokens["u-editor"]  # the importer signed out of GitHub
    view = await w.uc.reviews.get_file(VIEWER, review.id, "app.py")
    assert view.content == HEAD
    assert ("contents", "gh-vera") in w.github.calls


# --- threads ---------------------------------------------------------------------------


async def test_a_thread_anchors_the_text_of_its_lines_and_tells_the_session(w: World) -> None:
    review = await w.import_pull()
    thread = await w.uc.threads.create_thread(EDITOR, review.id, "app.py", 3, 2, "RIGHT",
                                              "why shout?")
    assert (thread.anchor_text, thread.commit_sha) == ("LINE 2\nline 3", HEAD_SHA)
    assert [c.body for c in thread.comments] == ["why shout?"]
    left = await w.uc.threads.create_thread(EDITOR, review.id, "app.py", 2, None, "LEFT", "was")
    assert left.anchor_text == "line 2"
    assert w.kinds()[-2:] == ["review.thread.created", "review.thread.created"]
    assert w.events.appended[-1].payload["side"] == "LEFT"
    listed, _ = await w.uc.threads.list_threads(VIEWER, review.id, 0, "")
    assert [t.id for t in listed] == [thread.id, left.id]


async def test_a_thread_off_the_file_or_by_a_viewer_is_refused(w: World) -> None:
    review = await w.import_pull()
    with pytest.raises(InvalidArgument) as outside:
        await w.uc.threads.create_thread(EDITOR, review.id, "app.py", 21, None, "RIGHT", "x")
    assert outside.value.reason == "unprocessable"
    with pytest.raises(InvalidArgument) as unknown:
        await w.uc.threads.create_thread(EDITOR, review.id, "nope.py", 1, None, "RIGHT", "x")
    assert unknown.value.violations[0].field == "path"
    with pytest.raises(InvalidArgument):
        await w.uc.threads.create_thread(EDITOR, review.id, "app.py", 1, None, "RIGHT", " ")
    with pytest.raises(PermissionDenied):
        await w.uc.threads.create_thread(VIEWER, review.id, "app.py", 1, None, "RIGHT", "x")
    assert w.store.threads == {}


async def test_replies_go_to_a_thread_of_this_review_only(w: World) -> None:
    review = await w.import_pull()
    other = await w.import_pull()
    thread = await w.uc.threads.create_thread(EDITOR, review.id, "app.py", 2, None, "RIGHT", "a")
    reply = await w.uc.threads.add_comment(OWNER, review.id, thread.id, "b")
    assert [c.id for c in w.store.threads[thread.id].comments][-1] == reply.id
    with pytest.raises(NotFound):
        await w.uc.threads.add_comment(OWNER, other.id, thread.id, "c")
    with pytest.raises(NotFound):
        await w.uc.threads.add_comment(OWNER, review.id, "not-a-uuid", "c")


async def test_resolving_twice_changes_and_tells_once(w: World) -> None:
    review = await w.import_pull()
    thread = await w.uc.threads.create_thread(EDITOR, review.id, "app.py", 2, None, "RIGHT", "a")
    before = len(w.events.appended)
    assert (await w.uc.threads.set_resolved(OWNER, review.id, thread.id, True)).resolved
    assert (await w.uc.threads.set_resolved(OWNER, review.id, thread.id, True)).resolved
    [event] = w.events.appended[before:]
    assert (event.kind, event.payload["change"]) == ("review.updated", "thread_resolved")
    assert event.payload["thread"]["resolved"] is True
    assert not (await w.uc.threads.set_resolved(OWNER, review.id, thread.id, False)).resolved
    assert w.events.appended[-1].payload["change"] == "thread_unresolved"


# --- verdicts ---------------------------------------------------------------------------


async def test_each_reviewer_s_latest_verdict_counts_and_decides(w: World) -> None:
    review = await w.import_pull()
    await w.uc.verdicts.create_verdict(OWNER, review.id, "request_changes", "shouting")
    await w.uc.verdicts.create_verdict(EDITOR, review.id, "approve", "")
    shown = await w.uc.reviews.get_review(VIEWER, review.id)
    assert shown.decision == "changes_requested"
    assert [(v.author.github_login if v.author else None, v.state) for v in shown.verdicts] == [
        ("olivia", "request_changes"), ("eddie", "approve")]
    await w.uc.verdicts.create_verdict(OWNER, review.id, "comment", "fine after all")
    shown = await w.uc.reviews.get_review(VIEWER, review.id)
    assert shown.decision == "approved"
    assert shown.verdict is not None
    assert shown.verdict.body == "fine after all"
    # Every verdict event carries the review as it then stands, authors' profiles included.
    updates = [e.payload for e in w.events.appended if e.kind == "review.updated"]
    assert [u["decision"] for u in updates] == ["changes_requested", "changes_requested",
                                                "approved"]
    assert updates[-1]["verdicts"][0]["user"]["github_login"] == "eddie"


async def test_a_verdict_needs_a_known_state_and_a_writer(w: World) -> None:
    review = await w.import_pull()
    with pytest.raises(InvalidArgument) as info:
        await w.uc.verdicts.create_verdict(EDITOR, review.id, "lgtm", "")
    assert info.value.violations[0].field == "state"
    with pytest.raises(PermissionDenied):
        await w.uc.verdicts.create_verdict(VIEWER, review.id, "approve", "")
    assert w.store.verdicts == []


# --- publishing --------------------------------------------------------------------------


async def test_publishing_posts_once_with_line_comments_and_notes_off_the_diff(w: World) -> None:
    review = await w.import_pull()
    shown = await w.uc.threads.create_thread(EDITOR, review.id, "app.py", 2, None, "RIGHT",
                                             "why shout?")
    await w.uc.threads.add_comment(OWNER, review.id, shown.id, "agreed")
    await w.uc.threads.create_thread(EDITOR, review.id, "app.py", 15, None, "RIGHT", "far away")
    done = await w.uc.threads.create_thread(EDITOR, review.id, "app.py", 3, None, "RIGHT", "ok")
    await w.uc.threads.set_resolved(EDITOR, review.id, done.id, True)
    await w.uc.verdicts.create_verdict(OWNER, review.id, "request_changes", "Please calm down.")
    published = await w.uc.publishing.publish(OWNER, review.id)
    [(repo, number, payload)] = w.github.posted
    assert (repo, number, payload["event"], payload["commit_id"]) == (
        REPO, 1, "REQUEST_CHANGES", HEAD_SHA)
    # Line 2 is in the diff: a line comment, the reply signed by login; line 15 is not:
    # a note in the body; the resolved thread is left out.
    assert payload["comments"] == [{"path": "app.py", "line": 2, "side": "RIGHT",
                                    "body": "why shout?\n\n**@olivia:** agreed"}]
    assert payload["body"].startswith("Please calm down.")
    assert "`app.py` line 15 (RIGHT): far away" in payload["body"]
    assert "ok" not in payload["body"].replace("Please calm down.", "")
    assert payload["body"].endswith(publish_marker(review.id))
    assert w.events.appended[-1].payload["change"] == "published"
    # Publishing again answers what was published; nothing is posted twice.
    assert await w.uc.publishing.publish(OWNER, review.id) == published
    assert len(w.github.posted) == 1
    assert (await w.uc.reviews.get_review(VIEWER, review.id)).state == "published"


async def test_only_the_owner_publishes_and_only_a_pull_request_s_review(w: World) -> None:
    review = await w.import_pull()
    with pytest.raises(PermissionDenied):
        await w.uc.publishing.publish(EDITOR, review.id)
    ref = await w.uc.reviews.create_review(EDITOR, w.session_id, REPO, 0, "feature")
    with pytest.raises(FailedPrecondition):
        await w.uc.publishing.publish(OWNER, ref.id)
    assert w.github.posted == []


async def test_a_publish_under_way_holds_off_another(w: World) -> None:
    review = await w.import_pull()
    assert await w.store.begin_publish(review.id, 120) == "claimed"  # another replica's
    with pytest.raises(FailedPrecondition) as info:
        await w.uc.publishing.publish(OWNER, review.id)
    assert info.value.reason == "in_progress"
    assert w.github.posted == []


async def test_after_an_unknown_outcome_the_next_publish_adopts_what_github_got(w: World) -> None:
    review = await w.import_pull()
    pull = w.github.pulls[(REPO, 1)]
    w.github.fail["create_review"] = OutcomeUnknown("GitHub answered 502 to the new review")
    with pytest.raises(OutcomeUnknown):
        await w.uc.publishing.publish(OWNER, review.id)
    assert w.store.reviews[review.id].publish_state == "uncertain"
    # It had landed after all; and someone else copied the marker into a review of theirs.
    marker = publish_marker(review.id)
    pull.reviews += [ListedReview(7, f"copied {marker}", "https://x/7", author_id=2),
                     ListedReview(8, f"Reviewed with Tandem.\n\n{marker}", "https://x/8",
                              author_id=1)]
    published = await w.uc.publishing.publish(OWNER, review.id)
    assert (published.github_review_id, published.html_url) == (8, "https://x/8")
    assert w.github.posted == []


async def test_after_an_unknown_outcome_that_did_not_land_the_next_publish_posts(
        w: World) -> None:
    review = await w.import_pull()
    w.github.pulls[(REPO, 1)].reviews.append(
        ListedReview(7, f"copied {publish_marker(review.id)}", "https://x/7", author_id=2))
    w.github.fail["create_review"] = OutcomeUnknown("no answer")
    with pytest.raises(OutcomeUnknown):
        await w.uc.publishing.publish(OWNER, review.id)
    published = await w.uc.publishing.publish(OWNER, review.id)
    assert published.github_review_id != 7
    assert len(w.github.posted) == 1
    assert ("viewer", "gh-olivia") in w.github.calls  # it looked before posting


async def test_a_definite_refusal_frees_the_review_for_a_plain_retry(w: World) -> None:
    review = await w.import_pull()
    w.github.fail["create_review"] = InvalidArgument("GitHub refused the request",
                                                     reason="unprocessable")
    with pytest.raises(InvalidArgument):
        await w.uc.publishing.publish(OWNER, review.id)
    assert w.store.reviews[review.id].publish_state is None
    await w.uc.publishing.publish(OWNER, review.id)
    assert "viewer" not in [m for m, _ in w.github.calls]  # no need to look first
    assert len(w.github.posted) == 1


# --- webhooks ------------------------------------------------------------------------------


def delivery(body: dict[str, object]) -> tuple[bytes, str]:
    raw = orjson.dumps(body)
    return raw, "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()


SYNCHRONIZE = {"action": "synchronize", "number": 1, "repository": {"full_name": "Octo/Hello"}}


async def test_a_signed_push_moves_the_review_and_outdates_the_threads_it_changed(
        w: World) -> None:
    review = await w.import_pull()
    changed_thread = await w.uc.threads.create_thread(EDITOR, review.id, "app.py", 2, None,
                                                      "RIGHT", "why shout?")
    kept = await w.uc.threads.create_thread(EDITOR, review.id, "app.py", 15, None, "RIGHT", "ok")
    w.push(BASE.replace("line 2\n", "Line Two\n"))
    body, signature = delivery(SYNCHRONIZE)
    assert await w.uc.webhooks.handle_webhook("pull_request", "d-1", signature,
                                              body) == "processed"
    moved = await w.uc.reviews.get_review(VIEWER, review.id)
    assert moved.head_sha == NEXT_SHA
    assert w.store.threads[changed_thread.id].outdated
    assert not w.store.threads[kept.id].outdated
    event = w.events.appended[-1]
    assert (event.payload["change"], event.payload["outdated_thread_ids"]) == (
        "synchronize", [changed_thread.id])
    # The same delivery again, or the same body under another id: a duplicate.
    assert await w.uc.webhooks.handle_webhook("pull_request", "d-1", signature,
                                              body) == "duplicate"
    assert await w.uc.webhooks.handle_webhook("pull_request", "d-2", signature,
                                              body) == "duplicate"


async def test_a_webhook_must_be_signed_and_named(w: World) -> None:
    body, signature = delivery(SYNCHRONIZE)
    with pytest.raises(Unauthenticated):
        await w.uc.webhooks.handle_webhook("pull_request", "d-1", "", body)
    with pytest.raises(Unauthenticated):
        await w.uc.webhooks.handle_webhook("pull_request", "d-1", signature, body + b" ")
    with pytest.raises(InvalidArgument):
        await w.uc.webhooks.handle_webhook("pull_request", "bad id!", signature, body)


async def test_other_events_and_actions_are_ignored(w: World) -> None:
    body, signature = delivery({**SYNCHRONIZE, "action": "opened"})
    assert await w.uc.webhooks.handle_webhook("pull_request", "d-1", signature,
                                              body) == "ignored"
    body, signature = delivery({"zen": "Keep it logically awesome."})
    assert await w.uc.webhooks.handle_webhook("ping", "d-2", signature, body) == "ignored"
    body, signature = delivery({"action": "synchronize"})
    with pytest.raises(InvalidArgument):
        await w.uc.webhooks.handle_webhook("pull_request", "d-3", signature, body)


async def test_github_down_during_a_push_fails_the_delivery_so_a_redelivery_refreshes(
        w: World) -> None:
    review = await w.import_pull()
    w.push(BASE.replace("line 2\n", "Line Two\n"))
    w.github.fail["pull"] = Unavailable("GitHub is unavailable", reason="github_unavailable")
    body, signature = delivery(SYNCHRONIZE)
    with pytest.raises(Unavailable) as info:
        await w.uc.webhooks.handle_webhook("pull_request", "d-1", signature, body)
    assert info.value.retry_after == 30
    assert (await w.uc.reviews.get_review(VIEWER, review.id)).head_sha == HEAD_SHA
    # The failed delivery was released: GitHub's redelivery is processed.
    assert await w.uc.webhooks.handle_webhook("pull_request", "d-1", signature,
                                              body) == "processed"
    assert (await w.uc.reviews.get_review(VIEWER, review.id)).head_sha == NEXT_SHA


async def test_a_review_that_cannot_be_refreshed_for_good_does_not_hold_back_the_others(
        w: World) -> None:
    stuck = await w.import_pull()
    fine = await w.import_pull(OWNER)
    del w.directory.tokens["u-editor"]  # the first importer's GitHub authorization is gone
    w.push(BASE.replace("line 2\n", "Line Two\n"))
    body, signature = delivery(SYNCHRONIZE)
    assert await w.uc.webhooks.handle_webhook("pull_request", "d-1", signature,
                                              body) == "processed"
    assert (await w.uc.reviews.get_review(VIEWER, stuck.id)).head_sha == HEAD_SHA
    assert (await w.uc.reviews.get_review(VIEWER, fine.id)).head_sha == NEXT_SHA
