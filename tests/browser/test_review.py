"""Reviewing a pull request together in a real browser (issue 16): the GitHub stand-in's sample
pull request (tandem-demo/hello-api #1) imported into a session, a file's diff, threads on its
lines, a verdict published to GitHub, and a push arriving while the room is open.

Each test has a session of its own. The stand-in's pull request is shared by every session
(and a push refreshes every review of it), so the push test resets the stand-in after itself.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import expect

from scripts.platform import LocalPlatform
from tests.browser.harness import PHONE, ConsoleLog
from tests.browser.people import (
    SAMPLE_FILE,
    SAMPLE_PULL,
    SAMPLE_REPO,
    SAMPLE_TITLE,
    Api,
    Person,
    Standin,
)

pytestmark = pytest.mark.e2e

Factory = Callable[..., Person]

# Lines of app/users.py at the pull request's head (standins/github/data.py, HELLO_USERS_PROBLEMS):
# added lines, so a thread on them is inside the diff; above 37 (the base version's length), so
# no removed line of the base carries the same number.
EVAL_LINE = 52  # return eval(raw)
SQL_LINE = 44  # f"SELECT ... LIKE '%{text}%'"


@pytest.fixture
def standin(app_platform: LocalPlatform) -> Standin:
    return Standin(app_platform.env["GITHUB_API_URL"])


def _pair(person: Factory, api: Api, role: str = "editor", *,
          viewport: dict[str, int] | None = None) -> tuple[Person, Person, str]:
    """An owner and a member with `role` (at `viewport`), both signed in and in the room."""
    owner, other = person("ana"), person("ben", viewport=viewport)
    session_id = api.session(owner.login, members={other.login: role})
    owner.open_room(session_id)
    other.open_room(session_id)
    return owner, other, session_id


def test_an_import_through_the_ui_appears_live_for_the_other_person(person: Factory, api: Api) -> None:
    ana, ben, session_id = _pair(person, api)
    ana.import_pull_request(SAMPLE_REPO, SAMPLE_PULL)

    for someone in (ana, ben):
        listed = someone.page.get_by_role("list", name="Reviews", exact=True)
        expect(listed).to_contain_text(SAMPLE_TITLE)
        expect(listed).to_contain_text(f"{SAMPLE_REPO} #{SAMPLE_PULL}")
        expect(someone.file_button(SAMPLE_FILE)).to_be_visible()
    expect(ben.button("Import pull request")).to_be_visible()  # an editor may import too
    reviews = api.reviews(session_id, ana.login)
    assert [(r["repo"], r["pull_number"]) for r in reviews] == [(SAMPLE_REPO, SAMPLE_PULL)]
    paths = {f["path"] for f in reviews[0]["files"]}
    assert SAMPLE_FILE in paths, paths
    assert len(paths) >= 2, paths


def test_an_import_github_cannot_find_says_the_apis_words_next_to_the_form(
        person: Factory, api: Api, console: ConsoleLog) -> None:
    ana = person("ana")
    session_id = api.session(ana.login)
    ana.open_room(session_id)
    missing = f"tandem-demo/no-such-repo-{secrets.token_hex(2)}"
    refused = api.call("POST", f"/api/v1/sessions/{session_id}/reviews", ana.login,
                       json={"repo": missing, "pull_number": 1})
    assert refused.status_code == 404, refused.text
    message = refused.json()["error"]["message"]

    ana.import_pull_request(missing, 1)
    form = ana.page.get_by_role("form", name="Import a pull request", exact=True)
    expect(form.get_by_role("alert")).to_contain_text(message)
    expect(form.get_by_role("textbox", name="Repository", exact=True)).to_have_value(missing)
    assert api.reviews(session_id, ana.login) == []
    # Chromium itself logs every 4xx answer to a fetch.
    console.allow(r"Failed to load resource: the server responded with a status of 404")


def test_a_thread_its_reply_and_its_resolution_appear_live(person: Factory, api: Api) -> None:
    ana, ben, session_id = _pair(person, api)
    review = api.import_review(session_id, ana.login)
    for someone in (ana, ben):
        someone.open_file(SAMPLE_FILE)
        expect(someone.button(f"Comment on line {EVAL_LINE}")).to_be_visible()
    # The diff shows the head's text, highlighted by CodeMirror's language support.
    expect(ana.page.get_by_text("return eval(raw)").first).to_be_visible()

    first = f"eval() on a query parameter runs anything {secrets.token_hex(2)}"
    ana.comment_on_line(EVAL_LINE, first)
    # The thread sits in the diff under its line, in both browsers, with its author.
    thread = {someone.login: someone.page.get_by_role("group", name=f"Thread on line {EVAL_LINE}",
                                                      exact=True)
              for someone in (ana, ben)}
    for someone in (ana, ben):
        expect(thread[someone.login]).to_contain_text(first)
        expect(thread[someone.login]).to_contain_text(ana.login)
        expect(someone.page.get_by_text(first, exact=True)).to_have_count(1)

    reply = f"ast.literal_eval then {secrets.token_hex(2)}"
    thread[ben.login].get_by_role("button", name="Reply", exact=True).click()
    thread[ben.login].get_by_role("textbox", name="Comment", exact=True).fill(reply)
    thread[ben.login].get_by_role("button", name="Add comment", exact=True).click()
    for someone in (ana, ben):
        expect(thread[someone.login]).to_contain_text(reply)
        expect(thread[someone.login]).to_contain_text(ben.login)
        expect(someone.page.get_by_text(reply, exact=True)).to_have_count(1)

    thread[ana.login].get_by_role("button", name="Resolve", exact=True).click()
    for someone in (ana, ben):
        expect(thread[someone.login].get_by_text("Resolved", exact=True)).to_be_visible()
        expect(thread[someone.login].get_by_role("button", name="Unresolve", exact=True)).to_be_visible()

    threads = api.threads(review["id"], ana.login)
    assert len(threads) == 1
    assert (threads[0]["line"], threads[0]["side"]) == (EVAL_LINE, "RIGHT")
    assert threads[0]["resolved"] is True
    assert [c["body"] for c in threads[0]["comments"]] == [first, reply]


def test_a_verdict_is_submitted_and_the_owner_publishes_it_to_github(
        person: Factory, api: Api, standin: Standin) -> None:
    ana, ben, session_id = _pair(person, api)
    review = api.import_review(session_id, ana.login)
    comment = f"Parameterise this query {secrets.token_hex(2)}"
    api.open_thread(review["id"], ben.login, comment, line=SQL_LINE)
    expect(ben.button("Publish to GitHub")).to_have_count(0)  # the owner's alone

    summary = f"Good to go once the SQL is fixed {secrets.token_hex(2)}"
    ben.button("Finish review").click()
    ben.page.get_by_role("radio", name="Approve", exact=True).check()
    ben.page.get_by_role("textbox", name="Review summary", exact=True).fill(summary)
    ben.button("Submit review").click()
    expect(ben.button("Submit review")).to_have_count(0)
    # Everyone sees the verdict, live.
    for someone in (ana, ben):
        verdicts = someone.page.get_by_role("list", name="Verdicts", exact=True)
        expect(verdicts).to_contain_text(ben.login)
        expect(verdicts).to_contain_text("approved")
        expect(verdicts).to_contain_text(summary)

    ana.button("Publish to GitHub").click()
    expect(ana.page.get_by_text("Published to GitHub.")).to_be_visible(timeout=15_000)
    link = ana.page.get_by_role("link", name="View the review on GitHub", exact=True)
    expect(link).to_be_visible()
    expect(ben.page.get_by_role("list", name="Reviews", exact=True)).to_contain_text("published")
    # Once: publishing again says so and posts nothing.
    ana.button("Publish to GitHub").click()
    expect(ana.page.get_by_text("This review was already published to GitHub")).to_be_visible()

    # On GitHub (the stand-in): one review by the owner, approving, with the summary as its
    # body and the thread as a line comment.
    published = [r for r in standin.reviews() if summary in (r.get("body") or "")]
    assert len(published) == 1, published
    assert published[0]["user"]["login"] == ana.login
    assert published[0]["state"] == "APPROVED"
    assert published[0]["html_url"] == link.get_attribute("href")
    comments = standin.review_comments(published[0]["id"])
    assert [(c["path"], c["line"]) for c in comments] == [(SAMPLE_FILE, SQL_LINE)]
    assert comment in comments[0]["body"]
    assert api.review(review["id"], ana.login)["verdicts"][0]["state"] == "approve"


def test_a_viewer_on_a_phone_reads_the_diff_but_is_offered_no_import_comment_verdict_publish_or_ai(
        person: Factory, api: Api) -> None:
    ana, vic, session_id = _pair(person, api, "viewer", viewport=PHONE)
    review = api.import_review(session_id, ana.login)
    body = f"A thread the viewer can read {secrets.token_hex(2)}"
    api.open_thread(review["id"], ana.login, body, line=EVAL_LINE)

    vic.file_button(SAMPLE_FILE).scroll_into_view_if_needed()
    vic.open_file(SAMPLE_FILE)
    thread = vic.page.get_by_role("group", name=f"Thread on line {EVAL_LINE}", exact=True)
    thread.scroll_into_view_if_needed()
    expect(thread).to_contain_text(body)
    expect(vic.page.get_by_text("return eval(raw)").first).to_be_visible()
    widths = vic.page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is wider than the phone's {PHONE['width']} px: {widths}"
    ana.open_file(SAMPLE_FILE)
    expect(ana.button(f"Comment on line {EVAL_LINE}")).to_be_visible()  # the same page for an editor+

    for name in ("Import pull request", "Finish review", "Publish to GitHub", "Reply", "Resolve",
                 "Add comment", "Run AI review", "Review document"):
        expect(vic.button(name)).to_have_count(0)
    expect(vic.page.get_by_role("button", name=re.compile(r"^Comment on line \d+"))).to_have_count(0)
    expect(vic.page.get_by_role("textbox", name="Comment", exact=True)).to_have_count(0)


@pytest.fixture
def restored(standin: Standin) -> Iterator[Standin]:
    """Pushes change the shared pull request for every later test: put it back afterwards."""
    yield standin
    standin.reset()


def test_a_push_to_the_pull_request_is_offered_live_as_the_new_head(
        person: Factory, api: Api, restored: Standin) -> None:
    ana, ben, session_id = _pair(person, api)
    review = api.import_review(session_id, ana.login)
    assert restored.pull()["head"]["sha"] == review["head_sha"]  # no push left over
    api.open_thread(review["id"], ana.login, "Not eval, please", line=EVAL_LINE)
    for someone in (ana, ben):
        someone.open_file(SAMPLE_FILE)
        expect(someone.page.get_by_text("return eval(raw)").first).to_be_visible()

    users = _head_text(api, review["id"], ana.login)
    pushed = restored.push({SAMPLE_FILE: users.replace("return eval(raw)", "return json.loads(raw)")})

    # Both are told, with the new head, while the diff they read stays as it was until asked.
    # (The diff and the Review panel both say so.)
    for someone in (ana, ben):
        moved = someone.page.get_by_role("status").filter(has_text="The pull request has new commits")
        expect(moved.first).to_contain_text(pushed["head_sha"][:7])
        expect(someone.page.get_by_text("return eval(raw)").first).to_be_visible()
    ana.page.get_by_role("status").filter(has_text="The pull request has new commits").first \
        .get_by_role("button", name="Show the new diff", exact=True).click()
    expect(ana.page.get_by_text("return json.loads(raw)").first).to_be_visible()
    expect(ana.page.get_by_text("return eval(raw)")).to_have_count(0)
    # The thread on the line the push changed is kept, marked outdated.
    thread = ana.page.get_by_role("group", name=f"Thread on line {EVAL_LINE}", exact=True)
    expect(thread).to_contain_text("Not eval, please")
    expect(thread.get_by_text("Outdated", exact=True)).to_be_visible()
    assert api.review(review["id"], ana.login)["head_sha"] == pushed["head_sha"]


def _head_text(api: Api, review_id: str, login: str) -> str:
    reply = api.call("GET", f"/api/v1/reviews/{review_id}/files/{SAMPLE_FILE}", login)
    assert reply.status_code == 200, reply.text
    content: str = reply.json()["content"]
    return content
