"""People using the web app in a browser, and the REST calls that set their sessions up.

A `Person` is one browser context (one person's browser) on the app. Controls are found by
role and accessible name only (docs/web.md's fixed names), as assistive technology finds
them; the only CSS the tests read is CodeMirror's and y-codemirror.next's own markup (the
remote carets' `.cm-ySelectionInfo` labels and the lines' text).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from tests.helpers.identity import SignedIn, sign_in_http

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

# The shared document's text as the person sees it: CodeMirror's lines without the remote
# carets (their widgets carry the other person's login as text).
EDITOR_TEXT = """() => {
  const content = document.querySelector('.cm-content');
  if (content === null) return null;
  return Array.from(content.querySelectorAll('.cm-line')).map((line) => {
    const copy = line.cloneNode(true);
    copy.querySelectorAll('.cm-ySelectionCaret, .cm-widgetBuffer').forEach((n) => n.remove());
    return copy.textContent;
  }).join('\\n');
}"""

CONNECTED = "Connected"
RECONNECTING = "Reconnecting…"

# The GitHub stand-in's sample pull request (standins/github/data.py): it changes app/users.py,
# whose head version carries problems a reviewer should flag (HELLO_USERS_PROBLEMS).
SAMPLE_REPO = "tandem-demo/hello-api"
SAMPLE_PULL = 1
SAMPLE_TITLE = "Add user lookup endpoint"
SAMPLE_FILE = "app/users.py"


def new_login(tag: str) -> str:
    """A GitHub login of this test's own (the stand-in creates unknown logins on the fly)."""
    return f"{tag}-{secrets.token_hex(3)}"


def new_title(what: str) -> str:
    return f"{what} {secrets.token_hex(2)}"


@dataclass
class Person:
    login: str
    page: Page
    app_url: str

    # --- what the person sees (role + accessible name) ---

    @property
    def editor(self) -> Locator:
        return self.page.get_by_role("textbox", name="Shared document")

    @property
    def status(self) -> Locator:
        return self.page.get_by_role("status", name="Connection")

    @property
    def chat(self) -> Locator:
        return self.page.get_by_role("log", name="Chat")

    @property
    def message_box(self) -> Locator:
        return self.page.get_by_role("textbox", name="Message", exact=True)

    @property
    def people(self) -> Locator:
        return self.page.get_by_role("region", name="People")

    @property
    def members(self) -> Locator:
        return self.page.get_by_role("region", name="Members")

    @property
    def sessions_heading(self) -> Locator:
        return self.page.get_by_role("heading", name="Sessions", exact=True)

    @property
    def sign_in_button(self) -> Locator:
        return self.page.get_by_role("button", name="Sign in with GitHub")

    def caret_of(self, other: Person) -> Locator:
        """The other person's remote caret label in this person's editor."""
        return self.page.locator(".cm-ySelectionInfo", has_text=re.compile(f"^{re.escape(other.login)}$"))

    # --- what the person does ---

    def sign_in(self, path: str = "/") -> None:
        """Sign in by clicking through: the app's button, then the GitHub stand-in's page."""
        from playwright.sync_api import expect

        self.page.goto(path)
        self.sign_in_button.click()
        self.page.get_by_role("textbox", name="or any login:").fill(self.login)
        self.page.get_by_role("button", name="Sign in", exact=True).click()
        self.page.wait_for_url(lambda url: url.startswith(self.app_url) and "/auth/callback" not in url)
        if path == "/":
            expect(self.sessions_heading).to_be_visible()

    def open_room(self, session_id: str) -> None:
        from playwright.sync_api import expect

        self.page.goto(f"/sessions/{session_id}")
        expect(self.status).to_have_text(CONNECTED, timeout=15_000)

    def create_session(self, title: str, language: str = "python") -> str:
        """Through the sessions list's form; answers the new session's id."""
        self.page.get_by_role("textbox", name="Session title").fill(title)
        self.page.get_by_role("combobox", name="Language").select_option(language)
        self.page.get_by_role("button", name="Create session").click()
        self.page.wait_for_url(re.compile(r"/sessions/[0-9a-f-]{36}$"))
        return self.page.url.rsplit("/", 1)[1]

    def type_in_editor(self, text: str) -> None:
        """Click into the document, go to its end and type (no brackets or newlines: CodeMirror's
        auto-close and auto-indent would change what arrives)."""
        self.editor.click()
        self.page.keyboard.press("Control+End")
        self.page.keyboard.type(text)

    def editor_text(self) -> str:
        text: str | None = self.page.evaluate(EDITOR_TEXT)
        assert text is not None, "no editor on the page"
        return text

    def wait_for_text(self, part: str, timeout: float = 10_000) -> None:
        """Until the shared document, as this person sees it, contains `part`."""
        self.page.wait_for_function(f"(part) => (({EDITOR_TEXT})() ?? '').includes(part)",
                                    arg=part, timeout=timeout)

    def send_chat(self, body: str) -> None:
        self.message_box.fill(body)
        self.page.get_by_role("button", name="Send", exact=True).click()

    def chat_message(self, body: str) -> Locator:
        return self.chat.get_by_text(body, exact=True)

    # --- review and AI (docs/web.md's review and AI rows) ---

    @property
    def files(self) -> Locator:
        return self.page.get_by_role("region", name="Files", exact=True)

    @property
    def ai_findings(self) -> Locator:
        """The findings list (the side panel's section of the same name holds it)."""
        return self.page.get_by_role("region", name="AI findings", exact=True).last

    def button(self, name: str) -> Locator:
        return self.page.get_by_role("button", name=name, exact=True)

    def file_button(self, path: str) -> Locator:
        return self.files.get_by_role("button", name=path, exact=True)

    def import_pull_request(self, repo: str = SAMPLE_REPO, number: int = SAMPLE_PULL) -> None:
        self.button("Import pull request").click()
        self.page.get_by_role("textbox", name="Repository", exact=True).fill(repo)
        self.page.get_by_role("textbox", name="Pull request number", exact=True).fill(str(number))
        self.button("Import").click()

    def open_file(self, path: str = SAMPLE_FILE) -> None:
        from playwright.sync_api import expect

        self.file_button(path).click()
        expect(self.button("Back to the document")).to_be_visible()

    def comment_on_line(self, line: int, body: str) -> None:
        self.button(f"Comment on line {line}").click()
        self.page.get_by_role("textbox", name="Comment", exact=True).fill(body)
        self.button("Add comment").click()


@dataclass
class Api:
    """The REST API beside the browser: fast set-up, and what the platform stored."""

    url: str
    signed_in: dict[str, SignedIn] = field(default_factory=dict)

    def who(self, login: str) -> SignedIn:
        # The same login is the same Tandem user in the browser and here.
        if login not in self.signed_in:
            self.signed_in[login] = sign_in_http(self.url, login)
        return self.signed_in[login]

    def call(self, method: str, path: str, login: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            return client.request(method, path, headers=self.who(login).headers, **kwargs)

    def session(self, owner: str, *, title: str | None = None, language: str = "python",
                members: Mapping[str, str] | None = None) -> str:
        """A new session of `owner`'s, with `members` ({login: role}) joined by invitation."""
        reply = self.call("POST", "/api/v1/sessions", owner,
                          json={"title": title or new_title("Pairing"), "language": language})
        assert reply.status_code == 201, reply.text
        session_id: str = reply.json()["id"]
        for login, role in (members or {}).items():
            invited = self.call("POST", f"/api/v1/sessions/{session_id}/invitations", owner,
                                json={"github_login": login, "role": role})
            assert invited.status_code == 201, invited.text
            accepted = self.call("POST", f"/api/v1/invitations/{invited.json()['id']}/accept", login)
            assert accepted.status_code == 200, accepted.text
        return session_id

    def document(self, session_id: str, login: str) -> str:
        reply = self.call("GET", f"/api/v1/sessions/{session_id}/document", login)
        assert reply.status_code == 200, reply.text
        text: str = reply.json()["text"]
        return text

    def wait_document(self, session_id: str, login: str, text: str, timeout: float = 10) -> None:
        """Until the platform has stored exactly `text` as the session's document."""
        deadline = time.monotonic() + timeout
        while (stored := self.document(session_id, login)) != text:
            assert time.monotonic() < deadline, f"the stored document is {stored!r}, not {text!r}"
            time.sleep(0.1)

    def messages(self, session_id: str, login: str) -> list[str]:
        reply = self.call("GET", f"/api/v1/sessions/{session_id}/messages", login,
                          params={"limit": 100})
        assert reply.status_code == 200, reply.text
        return [m["body"] for m in reply.json()["items"]]

    def import_review(self, session_id: str, login: str, repo: str = SAMPLE_REPO,
                      number: int = SAMPLE_PULL) -> dict[str, Any]:
        """The sample pull request imported into the session through the API (not the UI)."""
        reply = self.call("POST", f"/api/v1/sessions/{session_id}/reviews", login,
                          json={"repo": repo, "pull_number": number}, timeout=30)
        assert reply.status_code == 201, reply.text
        review: dict[str, Any] = reply.json()
        return review

    def reviews(self, session_id: str, login: str) -> list[dict[str, Any]]:
        reply = self.call("GET", f"/api/v1/sessions/{session_id}/reviews", login)
        assert reply.status_code == 200, reply.text
        items: list[dict[str, Any]] = reply.json()["items"]
        return items

    def review(self, review_id: str, login: str) -> dict[str, Any]:
        reply = self.call("GET", f"/api/v1/reviews/{review_id}", login)
        assert reply.status_code == 200, reply.text
        review: dict[str, Any] = reply.json()
        return review

    def open_thread(self, review_id: str, login: str, body: str, *, path: str = SAMPLE_FILE,
                    line: int, side: str = "RIGHT") -> dict[str, Any]:
        reply = self.call("POST", f"/api/v1/reviews/{review_id}/threads", login,
                          json={"path": path, "line": line, "side": side, "body": body})
        assert reply.status_code == 201, reply.text
        thread: dict[str, Any] = reply.json()
        return thread

    def threads(self, review_id: str, login: str) -> list[dict[str, Any]]:
        reply = self.call("GET", f"/api/v1/reviews/{review_id}/threads", login)
        assert reply.status_code == 200, reply.text
        items: list[dict[str, Any]] = reply.json()["items"]
        return items


@dataclass
class Standin:
    """The GitHub stand-in beside the platform: its public API and its /_standin/ controls."""

    url: str

    def push(self, files: Mapping[str, str | None], *, repo: str = SAMPLE_REPO,
             number: int = SAMPLE_PULL, message: str = "Push from a browser test") -> dict[str, Any]:
        """A new commit on the pull request's head; the stand-in sends the signed webhook."""
        with httpx.Client(base_url=self.url, timeout=60) as client:
            reply = client.post(f"/_standin/repos/{repo}/pulls/{number}/push",
                                json={"files": dict(files), "message": message})
        assert reply.status_code == 200, reply.text
        pushed: dict[str, Any] = reply.json()
        assert pushed["webhook_status"] == 200, pushed
        return pushed

    def reset(self) -> None:
        """The sample data as seeded: pull requests back at their first head, no reviews.
        Accounts and tokens survive, so everyone stays signed in."""
        with httpx.Client(base_url=self.url, timeout=10) as client:
            reply = client.post("/_standin/reset")
        assert reply.status_code == 200, reply.text

    def pull(self, *, repo: str = SAMPLE_REPO, number: int = SAMPLE_PULL) -> dict[str, Any]:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            reply = client.get(f"/repos/{repo}/pulls/{number}")
        assert reply.status_code == 200, reply.text
        pull: dict[str, Any] = reply.json()
        return pull

    def review_comments(self, review_id: int, *, repo: str = SAMPLE_REPO,
                        number: int = SAMPLE_PULL) -> list[dict[str, Any]]:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            reply = client.get(f"/repos/{repo}/pulls/{number}/reviews/{review_id}/comments",
                               params={"per_page": 100})
        assert reply.status_code == 200, reply.text
        comments: list[dict[str, Any]] = reply.json()
        return comments

    def reviews(self, *, repo: str = SAMPLE_REPO, number: int = SAMPLE_PULL) -> list[dict[str, Any]]:
        """The pull request's reviews as GitHub's API lists them (every page)."""
        found: list[dict[str, Any]] = []
        with httpx.Client(base_url=self.url, timeout=10) as client:
            for page_number in range(1, 50):
                reply = client.get(f"/repos/{repo}/pulls/{number}/reviews",
                                   params={"per_page": 100, "page": page_number})
                assert reply.status_code == 200, reply.text
                found += reply.json()
                if len(reply.json()) < 100:
                    break
        return found
