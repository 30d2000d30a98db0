"""The session room in a real browser: two people (two browser contexts) on the real platform.

Editing together with labelled cursors, chat both ways, presence, a viewer, a live role
change, a reload, a removal, and the room at a phone's width.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.harness import PHONE
from tests.browser.people import CONNECTED, Api, Person, new_title

pytestmark = pytest.mark.e2e

Factory = Callable[..., Person]


def _pair(person: Factory, api: Api, role: str = "editor", *, title: str | None = None,
          language: str = "python") -> tuple[Person, Person, str]:
    """An owner and a member with `role`, both signed in and in the room."""
    owner, other = person("ana"), person("ben")
    session_id = api.session(owner.login, title=title, language=language,
                             members={other.login: role})
    owner.open_room(session_id)
    other.open_room(session_id)
    return owner, other, session_id


def test_two_people_edit_one_document_and_see_each_others_text_and_labelled_cursor(
        person: Factory, api: Api) -> None:
    ana, ben, session_id = _pair(person, api)
    ana.type_in_editor("alpha from ana ")
    ben.wait_for_text("alpha from ana ")
    ben.type_in_editor("beta from ben")
    ana.wait_for_text("alpha from ana beta from ben")

    # Each sees the other's caret, labelled with their GitHub login.
    expect(ana.caret_of(ben)).to_have_count(1)
    expect(ben.caret_of(ana)).to_have_count(1)
    assert ana.editor_text() == ben.editor_text() == "alpha from ana beta from ben"
    assert api.document(session_id, ana.login) == "alpha from ana beta from ben"


def test_chat_both_ways(person: Factory, api: Api) -> None:
    ana, ben, session_id = _pair(person, api)
    hello, reply = f"hello ben {secrets.token_hex(2)}", f"hi ana {secrets.token_hex(2)}"
    ana.send_chat(hello)
    expect(ben.chat_message(hello)).to_be_visible()
    expect(ana.message_box).to_have_value("")
    ben.send_chat(reply)
    expect(ana.chat_message(reply)).to_be_visible()
    for someone in (ana, ben):
        expect(someone.chat_message(hello)).to_have_count(1)
        expect(someone.chat_message(reply)).to_have_count(1)
        expect(someone.chat).to_contain_text(ana.login)
        expect(someone.chat).to_contain_text(ben.login)
    assert api.messages(session_id, ana.login) == [hello, reply]


def test_presence_shows_who_is_here_and_who_left(person: Factory, api: Api) -> None:
    ana, ben, _ = _pair(person, api)
    for someone in (ana, ben):
        expect(someone.people.get_by_text(ana.login, exact=True)).to_be_visible()
        expect(someone.people.get_by_text(ben.login, exact=True)).to_be_visible()
    ben.page.close()
    expect(ana.people.get_by_text(ben.login, exact=True)).to_have_count(0)
    expect(ana.people.get_by_text(ana.login, exact=True)).to_be_visible()


def test_a_viewer_cannot_type_but_can_chat(person: Factory, api: Api) -> None:
    ana, vic, session_id = _pair(person, api, "viewer")
    ana.type_in_editor("owner text ")
    vic.wait_for_text("owner text ")
    expect(vic.editor).to_have_attribute("aria-readonly", "true")
    expect(ana.editor).not_to_have_attribute("aria-readonly", "true")

    vic.type_in_editor("vandalism")
    # A barrier instead of a sleep: once the owner's next edit has reached the viewer, the
    # viewer's own keystrokes would have reached everyone too, had they been sent.
    marker = f"mark{secrets.token_hex(2)}"
    ana.type_in_editor(marker)
    vic.wait_for_text(marker)
    ana.wait_for_text(marker)
    for someone in (ana, vic):
        assert someone.editor_text() == f"owner text {marker}", someone.login
    assert api.document(session_id, ana.login) == f"owner text {marker}"

    note = f"just watching {secrets.token_hex(2)}"
    vic.send_chat(note)
    expect(ana.chat_message(note)).to_be_visible()
    expect(vic.chat_message(note)).to_have_count(1)


def test_a_role_change_takes_effect_live_both_ways(person: Factory, api: Api) -> None:
    ana, ben, session_id = _pair(person, api)
    role = ana.members.get_by_role("combobox", name=f"Role for {ben.login}")
    expect(ben.editor).not_to_have_attribute("aria-readonly", "true")

    role.select_option("viewer")
    expect(ben.editor).to_have_attribute("aria-readonly", "true")
    ben.type_in_editor("should not land")
    barrier = f"owner{secrets.token_hex(2)}"
    ana.type_in_editor(barrier)
    ben.wait_for_text(barrier)
    assert "should not land" not in ana.editor_text()
    assert "should not land" not in ben.editor_text()

    role.select_option("editor")
    expect(ben.editor).not_to_have_attribute("aria-readonly", "true")
    ben.type_in_editor(" back")
    ana.wait_for_text(f"{barrier} back")
    assert api.document(session_id, ana.login) == f"{barrier} back"
    expect(ben.status).to_have_text(CONNECTED)


def test_a_reload_keeps_the_person_signed_in_and_the_document_intact(
        person: Factory, api: Api) -> None:
    ana = person("ana")
    session_id = api.session(ana.login)
    ana.open_room(session_id)
    ana.type_in_editor("kept across a reload")
    api.wait_document(session_id, ana.login, "kept across a reload")

    ana.page.reload()
    expect(ana.status).to_have_text(CONNECTED, timeout=15_000)
    expect(ana.sign_in_button).to_have_count(0)
    expect(ana.page.get_by_text(ana.login, exact=True).first).to_be_visible()
    ana.wait_for_text("kept across a reload")
    assert ana.editor_text() == "kept across a reload"


def test_a_removed_member_is_told_why_and_sent_back_to_the_list(person: Factory, api: Api) -> None:
    title = new_title("Removal")
    ana, ben, _ = _pair(person, api, title=title)
    ana.members.get_by_role("button", name=f"Remove {ben.login}").click()
    ana.page.get_by_role("button", name=f"Yes, remove {ben.login}").click()

    expect(ben.sessions_heading).to_be_visible()
    expect(ben.page).to_have_url(ben.app_url + "/")
    expect(ben.page.get_by_role("alert")).to_contain_text("removed")
    expect(ben.page.get_by_role("alert")).to_contain_text(title)
    expect(ben.page.get_by_role("link", name=title)).to_have_count(0)
    expect(ana.members.get_by_text(ben.login, exact=True)).to_have_count(0)


def test_the_room_at_a_phones_width(person: Factory, api: Api) -> None:
    ana = person("ana", viewport=PHONE)
    ben = person("ben")
    session_id = api.session(ana.login, members={ben.login: "editor"})
    ana.open_room(session_id)
    ben.open_room(session_id)

    expect(ana.editor).to_be_visible()
    ana.type_in_editor("typed on a phone")
    ben.wait_for_text("typed on a phone")

    ana.message_box.scroll_into_view_if_needed()
    expect(ana.message_box).to_be_visible()
    ana.send_chat("sent from a phone")
    expect(ben.chat_message("sent from a phone")).to_be_visible()
    ana.chat_message("sent from a phone").scroll_into_view_if_needed()
    expect(ana.chat_message("sent from a phone")).to_be_visible()

    widths = ana.page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is wider than the phone's {PHONE['width']} px: {widths}"
    send = ana.page.get_by_role("button", name="Send", exact=True)
    for control in (ana.editor, ana.message_box, send, ana.status):
        control.scroll_into_view_if_needed()
        box = control.bounding_box()
        assert box is not None
        assert box["x"] >= 0, box
        assert box["x"] + box["width"] <= PHONE["width"] + 0.5, (control, box)

