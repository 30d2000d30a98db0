"""Invitations in a real browser: by GitHub login, accepted from the sessions list, and by link."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.people import CONNECTED, Person, new_title

pytestmark = pytest.mark.e2e

Factory = Callable[..., Person]


def test_the_owner_invites_by_login_and_the_invitee_accepts_from_the_list(person: Factory) -> None:
    ana, ben = person("ana"), person("ben")  # ben has signed in once, so his login is known
    title = new_title("Invited")
    session_id = ana.create_session(title)
    expect(ana.status).to_have_text(CONNECTED, timeout=15_000)

    ana.page.get_by_role("button", name="Invite", exact=True).click()
    ana.page.get_by_role("textbox", name="GitHub login").fill(ben.login)
    ana.page.get_by_role("combobox", name="Role", exact=True).select_option("editor")
    ana.page.get_by_role("button", name="Send invitation").click()
    expect(ana.page.get_by_role("textbox", name="GitHub login")).to_have_value("")

    ben.page.reload()
    invitations = ben.page.get_by_role("region", name="Invitations")
    expect(invitations).to_contain_text(title)
    invitation = invitations.get_by_role("listitem").filter(has_text=title)
    invitation.get_by_role("button", name="Accept").click()

    expect(ben.page).to_have_url(re.compile(f"/sessions/{session_id}$"))
    expect(ben.status).to_have_text(CONNECTED, timeout=15_000)
    expect(ben.editor).not_to_have_attribute("aria-readonly", "true")
    expect(ana.members.get_by_text(ben.login, exact=True)).to_be_visible()
    expect(ana.people.get_by_text(ben.login, exact=True)).to_be_visible()


def test_a_link_invitation_opened_by_someone_signed_out_signs_them_in_and_into_the_room(
        person: Factory) -> None:
    ana = person("ana")
    title = new_title("Linked")
    session_id = ana.create_session(title)
    expect(ana.status).to_have_text(CONNECTED, timeout=15_000)
    ana.page.get_by_role("button", name="Create invitation link").click()
    link_box = ana.page.get_by_role("textbox", name="Invitation link")
    expect(link_box).to_have_value(re.compile(rf"^{re.escape(ana.app_url)}/invitations/\S+$"))
    link = link_box.input_value()

    cleo = person("cleo", sign_in=False)
    cleo.sign_in(link.removeprefix(cleo.app_url))
    expect(cleo.page).to_have_url(link)
    expect(cleo.page.get_by_text(title)).to_be_visible()
    cleo.page.get_by_role("button", name="Accept").click()

    expect(cleo.page).to_have_url(re.compile(f"/sessions/{session_id}$"))
    expect(cleo.status).to_have_text(CONNECTED, timeout=15_000)
    expect(ana.people.get_by_text(cleo.login, exact=True)).to_be_visible()
