"""A gateway restart in the middle of a session, in a real browser: the room says
`Reconnecting…`, comes back `Connected` by itself, and loses or doubles nothing typed or
sent meanwhile.

The platform here is this module's own: restarting the shared gateway would cut the
connections of whatever else runs against it.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import expect

from scripts.platform import LocalPlatform
from tests.browser.harness import ConsoleLog, web_platform
from tests.browser.people import CONNECTED, RECONNECTING, Api, Person

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

Factory = Callable[..., Person]


@pytest.fixture(scope="module")
def restartable(app_platform: LocalPlatform, base_env: dict[str, str]) -> Iterator[LocalPlatform]:
    # app_platform first: it skips when there is no web client to serve.
    with web_platform(base_env) as plat:
        yield plat


@pytest.fixture(scope="module")
def app_url(restartable: LocalPlatform) -> str:
    """This module's people and API calls go to its own platform."""
    return restartable.url


def test_a_gateway_restart_during_a_session_loses_nothing_and_doubles_nothing(
        person: Factory, api: Api, restartable: LocalPlatform, console: ConsoleLog) -> None:
    # What Chromium itself logs while the gateway is away (not the app's own messages).
    console.allow(r"WebSocket connection to '[^']+' failed")
    console.allow(r"Failed to load resource: net::ERR_CONNECTION_(REFUSED|RESET)")

    ana, ben = person("ana"), person("ben")
    session_id = api.session(ana.login, members={ben.login: "editor"})
    ana.open_room(session_id)
    ben.open_room(session_id)
    tag = secrets.token_hex(2)
    before, during_ana, during_ben = f"before {tag}", f"while away {tag}", f"me too {tag}"
    ana.type_in_editor("before ")
    ben.wait_for_text("before ")
    ana.send_chat(before)
    expect(ben.chat_message(before)).to_be_visible()

    restartable.stop("gateway")
    for someone in (ana, ben):
        expect(someone.status).to_have_text(RECONNECTING, timeout=10_000)
    ana.type_in_editor("typed while away")
    ana.send_chat(during_ana)
    ben.send_chat(during_ben)
    expect(ana.chat_message(during_ana)).to_have_count(1)  # shown at once, as pending

    restartable.start(["gateway"])
    restartable.wait_ready(60)
    for someone in (ana, ben):
        expect(someone.status).to_have_text(CONNECTED, timeout=30_000)
    ben.wait_for_text("before typed while away", timeout=15_000)
    for someone in (ana, ben):
        for body in (before, during_ana, during_ben):
            expect(someone.chat_message(body)).to_have_count(1)
        assert someone.editor_text() == "before typed while away", someone.login

    api.wait_document(session_id, ana.login, "before typed while away")
    stored = api.messages(session_id, ana.login)
    assert Counter(stored) == Counter([before, during_ana, during_ben]), stored
    assert stored[0] == before
