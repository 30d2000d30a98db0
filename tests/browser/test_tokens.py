"""Access tokens expiring under a live room, in a real browser.

The document socket has no in-band re-authentication and the gateway closes it with 4401
when its token expires, so the app must reconnect it with a fresh token *before* that (and
the events socket takes the fresh token in an `auth` frame). With 30-second tokens (the
shortest the auth service allows) a room open for 40 s goes through at least one refresh:
nothing may close with 4401, the events socket may not close at all, the status stays
`Connected`, edits keep flowing, and the other person keeps seeing the labelled cursor.

This module runs a platform of its own: the token lifetime is the auth service's setting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from scripts.platform import LocalPlatform
from tests.browser.harness import web_platform
from tests.browser.people import CONNECTED, Api, Person

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

Factory = Callable[..., Person]
TTL_SECONDS = 30

# Records how each WebSocket of the page closed (Playwright's own WebSocket events carry no
# close code). Installed through the DevTools protocol, so the page's CSP does not apply.
RECORD_CLOSES = """
(() => {
  const Native = window.WebSocket;
  window.__closes = [];
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const path = new URL(url, location.href).pathname;
      const opened = Date.now();
      this.addEventListener("close", (event) => {
        window.__closes.push({ path, code: event.code, lived: Date.now() - opened });
      });
    }
  };
})();
"""


@pytest.fixture(scope="module")
def short_tokens(app_platform: LocalPlatform, base_env: dict[str, str]) -> Iterator[LocalPlatform]:
    # app_platform first: it skips when there is no web client to serve.
    with web_platform({**base_env, "ACCESS_TOKEN_TTL_SECONDS": str(TTL_SECONDS)}) as plat:
        yield plat


@pytest.fixture(scope="module")
def app_url(short_tokens: LocalPlatform) -> str:
    """This module's people and API calls go to its own platform."""
    return short_tokens.url


def test_a_room_outlives_its_access_tokens_without_a_4401(person: Factory, api: Api) -> None:
    ana, ben = person("ana"), person("ben")
    session_id = api.session(ana.login, members={ben.login: "editor"})
    ana.page.add_init_script(RECORD_CLOSES)
    ana.open_room(session_id)
    ben.open_room(session_id)
    ana.type_in_editor("before ")
    ben.wait_for_text("before ")
    expect(ben.caret_of(ana)).to_have_count(1)

    # Past the first token's expiry, watching the status all along.
    deadline = time.monotonic() + TTL_SECONDS + 10
    while time.monotonic() < deadline:
        assert ana.status.text_content() == CONNECTED, "the room left Connected during a token refresh"
        ana.page.wait_for_timeout(250)

    closes: list[dict[str, Any]] = ana.page.evaluate("window.__closes")
    assert [c for c in closes if c["code"] == 4401] == [], closes
    assert [c for c in closes if c["path"].endswith("/events")] == [], closes
    doc_closes = [c for c in closes if c["path"].endswith("/doc")]
    # The document socket was reconnected with a fresh token before its old one ran out.
    assert doc_closes, "the document socket never reconnected with a fresh token"
    assert all(c["lived"] < TTL_SECONDS * 1000 for c in doc_closes), closes

    ana.type_in_editor("after")
    ben.wait_for_text("before after")
    api.wait_document(session_id, ana.login, "before after")
    # The other person still sees ana's labelled cursor after her reconnects.
    expect(ben.caret_of(ana)).to_have_count(1)
