"""Unit tests of the sessions domain rules (no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.common.errors import InvalidArgument, NotFound
from services.sessions import domain
from services.sessions.domain import Event, Invitation, InvitationState, Role
from services.sessions.events import envelope
from services.sessions.notifications import notifications_for


def test_roles_are_ordered() -> None:
    assert Role.OWNER.at_least(Role.EDITOR)
    assert Role.EDITOR.at_least(Role.VIEWER)
    assert not Role.VIEWER.at_least(Role.EDITOR)


def test_cursors_round_trip_and_refuse_tampering() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    ident = str(uuid.uuid4())
    cursor = domain.encode_cursor(at, ident)
    assert "=" not in cursor
    assert domain.decode_cursor(cursor, (datetime, uuid.UUID)) == (at, ident)
    for bad in ("", "!!!", domain.encode_cursor(at), domain.encode_cursor("x", ident),
                domain.encode_cursor(at, "not-a-uuid"), domain.encode_cursor(True, at, ident)):
        with pytest.raises(InvalidArgument) as info:
            domain.decode_cursor(bad, (datetime, uuid.UUID))
        assert info.value.violations[0].field == "cursor"
    with pytest.raises(InvalidArgument):
        domain.decode_cursor(domain.encode_cursor(True, at, ident), (int, datetime, uuid.UUID))


def test_message_bodies_lose_control_characters_but_keep_text() -> None:
    assert domain.clean_body("tab\there\r\nnew\x1b[0m") == "tab\there\nnew[0m"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert domain.clean_body(family) == family
    assert domain.clean_body("abc\u202egnp.exe") == "abcgnp.exe"
    for body in ("", " \n ", "\x00"):
        with pytest.raises(InvalidArgument):
            domain.clean_body(body)


def test_titles_collapse_spaces_and_languages_are_identifiers() -> None:
    assert domain.clean_title("  a \n  b ") == "a b"
    assert domain.clean_language(" C++ ") == "c++"
    assert domain.clean_language("") == "plaintext"
    with pytest.raises(InvalidArgument):
        domain.clean_language("rm -rf")


def test_github_logins_follow_githubs_rule() -> None:
    assert domain.clean_login("@octo-cat") == "octo-cat"
    for login in ("-octo", "octo-", "oc--to", "a" * 40, "octo cat", ""):
        with pytest.raises(InvalidArgument):
            domain.clean_login(login)


def test_expiry_and_uses_are_bounded() -> None:
    assert domain.expires_in(0) == 7 * 24 * 3600
    assert domain.max_uses(0, addressed=False) == 1
    with pytest.raises(InvalidArgument):
        domain.max_uses(2, addressed=True)
    with pytest.raises(InvalidArgument):
        domain.expires_in(domain.INVITE_MAX_SECONDS + 1)


def test_a_pending_invitation_past_its_expiry_is_expired() -> None:
    now = datetime.now(UTC)
    pending, revoked = InvitationState.PENDING, InvitationState.REVOKED
    assert domain.invitation_state(pending, now + timedelta(seconds=1), now) is pending
    assert domain.invitation_state(pending, now, now) is InvitationState.EXPIRED
    assert domain.invitation_state(revoked, now - timedelta(days=1), now) is revoked


def _invitation(invitee_id: str | None, invitee_login: str | None) -> Invitation:
    now = datetime.now(UTC)
    return Invitation(str(uuid.uuid4()), str(uuid.uuid4()), Role.EDITOR, InvitationState.PENDING,
                      invitee_id, invitee_login, 1, 0, str(uuid.uuid4()), now, now, False)


def test_invitations_match_by_user_id_or_by_login_until_the_user_is_known() -> None:
    by_login = _invitation(None, "OctoCat")
    assert domain.addressed_to(by_login, "u1", "octocat")
    assert not domain.addressed_to(by_login, "u1", "")
    by_id = _invitation(str(uuid.UUID(int=1)), "octocat")
    assert domain.addressed_to(by_id, str(uuid.UUID(int=1)), "someone-else")
    assert not domain.addressed_to(by_id, str(uuid.UUID(int=2)), "octocat")


def test_appended_events_are_limited_to_other_services_families() -> None:
    assert domain.event_type("review.thread.created") == "review.thread.created"
    for kind in ("chat.message", "member.removed", "Review.created", "ai"):
        with pytest.raises(InvalidArgument):
            domain.event_type(kind)
    with pytest.raises(InvalidArgument):
        domain.event_payload('{"at": 1}')


def test_ids_that_are_not_uuids_are_not_found() -> None:
    with pytest.raises(NotFound):
        domain.parse_uuid("nope", "session")


def test_the_envelope_puts_the_payload_beside_the_header() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    event = Event("s1", 7, "member.removed", {"user_id": "u1"}, at)
    assert envelope(event) == {"type": "member.removed", "seq": 7, "session_id": "s1",
                               "at": "2026-01-01T00:00:00.000000Z", "user_id": "u1"}
    live = Event("s1", 0, "ai.finding", {"line": 2}, at)
    assert "seq" not in envelope(live)


def test_who_is_notified_of_what() -> None:
    invited = notifications_for("invitation.created", {
        "invitation_id": "i", "session_id": "s", "session_title": "t", "role": "viewer",
        "invitee_id": None, "invitee_login": "newbie", "invited_by": "o"})
    assert invited == [(None, "newbie", "invitation.received", {
        "session_id": "s", "session_title": "t", "invitation_id": "i", "role": "viewer",
        "invited_by": "o"})]
    changed = notifications_for("member.role_changed", {
        "session_id": "s", "session_title": "t", "user_id": "m", "role": "editor", "actor_id": "o"})
    assert changed[0][0] == "m"
    assert notifications_for("member.role_changed", {
        "session_id": "s", "user_id": "o", "role": "editor", "actor_id": "o"}) == []
    assert notifications_for("session.ended", {"session_id": "s"}) == []
