"""Signing in and out in a real browser, and reaching the controls by keyboard."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.people import Api, Person

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.e2e

Factory = Callable[..., Person]
REFRESH_COOKIE = "tandem_refresh"

# The focus indicator as drawn: outline and box-shadow.
RING = """(el) => {
  const s = getComputedStyle(el);
  return {outline: s.outlineStyle === 'none' || parseFloat(s.outlineWidth) === 0
            ? 'none' : `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}`,
          shadow: s.boxShadow};
}"""


def test_sign_in_then_sign_out_and_a_reload_stays_signed_out(person: Factory, app_url: str) -> None:
    ana = person("ana")
    expect(ana.page.get_by_text(ana.login, exact=True)).to_be_visible()
    cookies = {c["name"]: c for c in ana.page.context.cookies()}
    assert REFRESH_COOKIE in cookies, cookies.keys()
    refresh = cookies[REFRESH_COOKIE]
    assert refresh.get("httpOnly") is True
    assert refresh.get("sameSite") == "Strict"
    # No token ever in storage scripts can read.
    storage = ana.page.evaluate("() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
    assert refresh["value"] not in storage
    assert "eyJ" not in storage  # no JWT either

    ana.page.get_by_role("button", name="Sign out").click()
    expect(ana.sign_in_button).to_be_visible()
    expect(ana.sessions_heading).to_have_count(0)
    ana.page.reload()
    expect(ana.sign_in_button).to_be_visible()
    expect(ana.page.get_by_role("button", name="Sign out")).to_have_count(0)

    # The refresh family is revoked: the cookie the browser held is refused from anywhere.
    again = httpx.post(app_url + "/api/v1/auth/refresh", json={}, timeout=10,
                       headers={"Cookie": f"{REFRESH_COOKIE}={refresh['value']}"})
    assert again.status_code == 401, again.text


def _tab_to(page: Page, target: Locator, presses: int = 60) -> int:
    """Press Tab until `target` has the focus; answers how many presses it took."""
    for count in range(1, presses + 1):
        page.keyboard.press("Tab")
        if target.evaluate("(el) => el === document.activeElement"):
            return count
    focused = page.evaluate("() => document.activeElement?.outerHTML.slice(0, 200)")
    raise AssertionError(f"not reached with {presses} Tab presses; the focus is on {focused}")


def _has_focus_ring(target: Locator) -> dict[str, Any]:
    """The target (focused by keyboard) draws a focus indicator it does not have unfocused."""
    assert target.evaluate("(el) => el.matches(':focus-visible')")
    focused = target.evaluate(RING)
    target.evaluate("(el) => el.blur()")
    resting = target.evaluate(RING)
    assert focused["outline"] != "none" or focused["shadow"] != "none", focused
    assert focused != resting, f"the same look focused and not: {focused}"
    return dict(focused)


def test_the_sign_in_button_and_the_chat_are_reached_by_keyboard_with_a_visible_focus(
        person: Factory, api: Api, open_page: Callable[..., Page]) -> None:
    landing = open_page("visitor")
    landing.goto("/")
    button = landing.get_by_role("button", name="Sign in with GitHub")
    expect(button).to_be_visible()
    _tab_to(landing, button)
    _has_focus_ring(button)

    ana = person("ana")
    session_id = api.session(ana.login)
    ana.open_room(session_id)
    ana.page.locator("body").evaluate("(el) => el.focus()")
    _tab_to(ana.page, ana.message_box)
    _has_focus_ring(ana.message_box)

    # Type and send with the keyboard alone.
    _tab_to(ana.page, ana.message_box)
    ana.page.keyboard.type("sent by keyboard")
    send = ana.page.get_by_role("button", name="Send", exact=True)
    _tab_to(ana.page, send, presses=5)
    _has_focus_ring(send)
    send.focus()
    ana.page.keyboard.press("Enter")
    expect(ana.chat_message("sent by keyboard")).to_be_visible()
