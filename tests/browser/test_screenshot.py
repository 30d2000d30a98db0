"""The README's pictures, taken by the browser tests (`make screenshot`).

The demo's session (scripts/demo.py: octocat, hubot, some Python, chat, the stand-in's pull
request with three threads, a verdict and a builtin AI review), seen by octocat at 1280 x 800:

- the room while hubot has a word of the code selected (docs/screenshot-room.png);
- the pull request's Python file, its diff with a thread (docs/screenshot-review.png);
- the AI review's findings in the list and as diagnostics in that diff, one of them open
  (docs/screenshot-ai.png).

Every run takes them; only `make screenshot` (TANDEM_SCREENSHOT_ROOM, _REVIEW and _AI =
<path>) keeps them, so `make test` never touches docs/.
"""

from __future__ import annotations

import os
import re
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
REVIEW_SHOT_ENV = "TANDEM_SCREENSHOT_REVIEW"
AI_SHOT_ENV = "TANDEM_SCREENSHOT_AI"
EVAL_LINE = 52  # app/users.py at the pull request's head: return eval(raw)


@pytest.fixture(scope="module")
def seeded(app_url: str) -> demo.Demo:
    """One demo session for the pictures. One, not one each: the AI service reuses its results
    for unchanged files, so a second demo's AI review would say "0 files reviewed, 5 unchanged
    reused" in the picture instead of "5 files reviewed"."""
    # The demo seeds with asyncio (the document socket), and Playwright's sync API keeps this
    # thread's event loop busy: so in a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(demo.seed, app_url).result(timeout=90)


def _target(env: str, default: Path) -> Path:
    target = Path(os.environ.get(env) or default)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def test_the_room_with_two_people_for_the_readme(person: Factory, seeded: demo.Demo, tmp_path: Path) -> None:
    octocat = person("octocat", login=demo.OWNER, viewport=DESKTOP)
    hubot = person("hubot", login=demo.EDITOR, viewport=DESKTOP)
    octocat.open_room(seeded.session_id)
    hubot.open_room(seeded.session_id)
    octocat.wait_for_text("class TokenBucket")
    expect(octocat.chat_message(demo.CHAT[-1][1])).to_be_visible()
    # This picture is the room's: octocat folds the pull request's panels away (their own
    # pictures follow), so People, Chat and Members fit beside the code.
    expect(octocat.files).to_be_visible()
    for panel in ("Review", "AI"):
        octocat.button(panel).click()

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

    target = _target(SHOT_ENV, tmp_path / "screenshot-room.png")
    assert octocat.page.evaluate("() => document.querySelector('.cm-scroller').scrollTop") == 0
    octocat.page.screenshot(path=str(target), animations="disabled", caret="hide")
    assert target.stat().st_size > 20_000


def test_a_review_with_a_thread_and_its_ai_findings_for_the_readme(
        person: Factory, seeded: demo.Demo, tmp_path: Path) -> None:
    octocat = person("octocat", login=demo.OWNER, viewport=DESKTOP)
    hubot = person("hubot", login=demo.EDITOR, viewport=DESKTOP)
    octocat.open_room(seeded.session_id)
    hubot.open_room(seeded.session_id)
    expect(octocat.people.get_by_text(demo.EDITOR, exact=True)).to_be_visible()

    # The review: the Python file's diff from its top, where the password thread sits.
    octocat.open_file(demo.PULL_FILE)
    first_body = demo.THREADS[2][1]
    expect(octocat.page.get_by_text(first_body, exact=True)).to_be_visible()
    expect(octocat.page.get_by_text(demo.THREADS[2][2], exact=True)).to_be_visible()
    octocat.page.mouse.move(0, 0)  # no hover on the file's button
    octocat.page.wait_for_load_state("networkidle")
    octocat.page.wait_for_timeout(300)
    review_shot = _target(REVIEW_SHOT_ENV, tmp_path / "screenshot-review.png")
    octocat.page.screenshot(path=str(review_shot), animations="disabled", caret="hide")
    assert review_shot.stat().st_size > 20_000

    # The AI review: octocat folds People and Review away to read the findings, goes to the
    # eval() finding from the list, and points at its marker in the diff.
    for panel in ("People", "Review"):
        octocat.button(panel).click()
    expect(octocat.ai_findings).to_contain_text("(S307)")
    octocat.ai_findings.get_by_role("button", name=f"{demo.PULL_FILE}:{EVAL_LINE}", exact=True).click()
    # The list from its top (the job's summary first), the marker's card open in the diff.
    octocat.page.get_by_role("region", name="AI", exact=True).evaluate(
        """(section) => {
            const side = section.closest('.room-side');
            side.scrollTop += section.getBoundingClientRect().top - side.getBoundingClientRect().top;
        }""")
    marker = octocat.page.get_by_role("img", name=re.compile(r"^AI finding\..*\(S307\)"))
    marker.hover()
    expect(octocat.page.get_by_role("tooltip")).to_contain_text("ast.literal_eval")
    octocat.page.wait_for_timeout(300)
    ai_shot = _target(AI_SHOT_ENV, tmp_path / "screenshot-ai.png")
    octocat.page.screenshot(path=str(ai_shot), animations="disabled", caret="hide")
    assert ai_shot.stat().st_size > 20_000
