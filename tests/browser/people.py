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
