"""The README's picture of the room, taken by the browser tests (`make screenshot`).

The demo's session (scripts/demo.py: octocat, hubot, some Python, chat), seen by octocat at
1280 x 800 while hubot has a word of the code selected. Every run takes it; only `make
screenshot` (TANDEM_SCREENSHOT_ROOM=<path>) keeps it, so `make test` never touches
docs/screenshot-room.png.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import expect

from scripts import demo
from tests.browser.harness import DESKTOP
from tests.browser.people import Person

pytestmark = pytest.mark.e2e

Factory = Callable[..., Person]
REPLY = "On it: a test of take() with a burst of 41."
SHOT_ENV = "TANDEM_SCREENSHOT_ROOM"


def test_the_room_with_two_people_for_the_readme(person: Factory, app_url: str, tmp_path: Path) -> None:
    # The demo seeds with asyncio (the document socket), and Playwright's sync API keeps this
    # thread's event loop busy: so in a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        seeded = pool.submit(demo.seed, app_url).result(timeout=60)
    octocat = person("octocat", login=demo.OWNER, viewport=DESKTOP)
    hubot = person("hubot", login=demo.EDITOR, viewport=DESKTOP)
    octocat.open_room(seeded.session_id)
    hubot.open_room(seeded.session_id)
    octocat.wait_for_text("class TokenBucket")
    expect(octocat.chat_message(demo.CHAT[-1][1])).to_be_visible()

    # hubot selects `take` in its definition; octocat's caret sits in its body. Both lie in
    # the first screenful, so the picture starts at the module's first line.
    hubot.editor.get_by_text("take", exact=True).first.dblclick()
    octocat.editor.get_by_text("self.tokens -= 1").click()
    octocat.page.keyboard.press("End")
    expect(octocat.caret_of(hubot)).to_have_count(1)
    expect(hubot.caret_of(octocat)).to_have_count(1)
    hubot.send_chat(REPLY)
    expect(octocat.chat_message(REPLY)).to_be_visible()
    expect(octocat.people.get_by_text(demo.EDITOR, exact=True)).to_be_visible()

    # The caret's label shows while the pointer is over it, as a person would look at it.
    octocat.caret_of(hubot).locator("..").hover(force=True)
    octocat.page.wait_for_load_state("networkidle")
    octocat.page.wait_for_timeout(400)  # the label's fade-in (y-codemirror.next: .3 s)

    target = Path(os.environ.get(SHOT_ENV) or tmp_path / "screenshot-room.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    assert octocat.page.evaluate("() => document.querySelector('.cm-scroller').scrollTop") == 0
    octocat.page.screenshot(path=str(target), animations="disabled", caret="hide")
    assert target.stat().st_size > 20_000
