"""Unit tests of the sessions use cases against in-memory ports (tests/sessions/fakes.py):
roles, invitations, the chat sequence, ending a session, and document writes. No database,
no Redis, no gRPC: what is tested is the use cases' own rules and what they hand the ports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from pycrdt import Doc, Text

from services.common.errors import (
    Conflict,
    FailedPrecondition,
    Gone,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.common.identity import Caller
from services.sessions import domain
from services.sessions.documents import DocumentTooLarge, LoadedDocuments
from services.sessions.domain import FoundUser, InvitationState, Role, Status
from services.sessions.usecases import DocumentUseCases, SessionsUseCases
from tests.sessions.fakes import (
    FakeDocumentStore,
    FakeMemberships,
    FakePublisher,
    FakeRepository,
    FakeUsers,
    InjectedFault,
    Store,
)


def person(login: str) -> Caller:
    return Caller(str(uuid.uuid4()), internal=False, login=login)


@dataclass
class App:
    store: Store = field(default_factory=Store)
    publisher: FakePublisher = field(default_factory=FakePublisher)
    users: FakeUsers = field(default_factory=FakeUsers)
    owner: Caller = field(default_factory=lambda: person("olive"))
    editor: Caller = field(default_factory=lambda: person("eddie"))
    viewer: Caller = field(default_factory=lambda: person("vera"))
    stranger: Caller = field(default_factory=lambda: person("stan"))

    def __post_init__(self) -> None:
        self.repo = FakeRepository(self.store)
        self.memberships = FakeMemberships(self.repo)
        self.sessions = SessionsUseCases(self.repo, self.memberships, self.publisher, self.users)
        for who in (self.owner, self.editor, self.viewer, self.stranger):
            self.users.known[who.login] = FoundUser(str(who.user_id), who.login)

    def documents(self, **kwargs: Any) -> DocumentUseCases:
        return DocumentUseCases(FakeDocumentStore(self.store), self.memberships, self.publisher,
                                **{"max_bytes": 64 * 1024, **kwargs})

    async def join(self, session_id: str, who: Caller, role: Role) -> None:
        created = await self.sessions.create_invitation(self.owner, session_id, who.login, role,
                                                        0, 0)
        await self.sessions.accept_invitation(who, created.invitation.id, "")

    async def session_with_members(self) -> str:
        session = await self.sessions.create_session(self.owner, "Pairing", "", "python")
        await self.join(session.id, self.editor, Role.EDITOR)
        await self.join(session.id, self.viewer, Role.VIEWER)
        return session.id

    def seqs(self, session_id: str) -> list[tuple[int, str]]:
        return [(e.seq, e.type) for e in self.store.t.events if e.session_id == session_id]


@pytest.fixture
def app() -> App:
    return App()


def edit(doc: Doc[Any], index: int, value: str) -> bytes:
    before = doc.get_state()
    doc.get("code", type=Text).insert(index, value)
    return doc.get_update(before)


# --- membership and roles ---------------------------------------------------------------


async def test_only_the_owner_changes_roles_and_the_owner_cannot_be_demoted(app: App) -> None:
    sid = await app.session_with_members()
    with pytest.raises(PermissionDenied):
        await app.sessions.update_member(app.editor, sid, app.viewer.user_id, Role.EDITOR)
    with pytest.raises(FailedPrecondition):
        await app.sessions.update_member(app.owner, sid, app.owner.user_id, Role.EDITOR)
    with pytest.raises(InvalidArgument):
        await app.sessions.update_member(app.owner, sid, app.viewer.user_id, Role.OWNER)
    with pytest.raises(NotFound):  # a stranger learns nothing of the session
        await app.sessions.update_member(app.stranger, sid, app.viewer.user_id, Role.EDITOR)

    member = await app.sessions.update_member(app.owner, sid, app.viewer.user_id, Role.EDITOR)
    assert member.role is Role.EDITOR
    assert (await app.memberships.membership(sid, app.viewer.user_id)) == domain.Membership(
        Role.EDITOR, Status.ACTIVE)
    # Told live (in the session's sequence), notified (outbox), cache dropped after commit.
    assert app.seqs(sid)[-1] == (3, "member.role_changed")
    assert app.publisher.events[-1].payload == {"user_id": app.viewer.user_id, "role": "editor"}
    assert app.publisher.emitted[-1].type == "member.role_changed"
    assert app.memberships.invalidated[-1] == (sid, (app.viewer.user_id,))
    # The same role again changes nothing and says nothing.
    before = len(app.publisher.events)
    await app.sessions.update_member(app.owner, sid, app.viewer.user_id, Role.EDITOR)
    assert len(app.publisher.events) == before


async def test_members_leave_themselves_but_only_the_owner_removes_others(app: App) -> None:
    sid = await app.session_with_members()
    with pytest.raises(PermissionDenied):
        await app.sessions.remove_member(app.editor, sid, app.viewer.user_id)
    with pytest.raises(FailedPrecondition):
        await app.sessions.remove_member(app.owner, sid, app.owner.user_id)
    await app.sessions.remove_member(app.viewer, sid, app.viewer.user_id)
    assert await app.memberships.membership(sid, app.viewer.user_id) is None
    await app.sessions.remove_member(app.owner, sid, app.editor.user_id)
    assert [m.user_id for m in await app.sessions.list_members(app.owner, sid)] == [
        app.owner.user_id]
    with pytest.raises(NotFound):
        await app.sessions.list_members(app.editor, sid)


async def test_ownership_moves_and_the_old_owner_becomes_an_editor(app: App) -> None:
    sid = await app.session_with_members()
    session, role = await app.sessions.transfer_ownership(app.owner, sid, app.editor.user_id)
    assert (session.owner_id, role) == (app.editor.user_id, Role.EDITOR)
    assert (await app.memberships.membership(sid, app.owner.user_id)).role is Role.EDITOR  # type: ignore[union-attr]
    with pytest.raises(PermissionDenied):
        await app.sessions.end_session(app.owner, sid)


# --- invitations ------------------------------------------------------------------------


async def test_an_invitation_by_login_admits_that_person_once_with_its_role(app: App) -> None:
    session = await app.sessions.create_session(app.owner, "Pairing", "", "")
    created = await app.sessions.create_invitation(app.owner, session.id, "@Vera", Role.VIEWER,
                                                   0, 0)
    assert created.token == ""
    assert not created.invitation.is_link
    assert created.invitation.invitee_id == app.viewer.user_id
    assert created.invitation.session_title == "Pairing"
    assert app.publisher.emitted[-1].type == "invitation.created"
    with pytest.raises(Conflict):  # one pending invitation per person
        await app.sessions.create_invitation(app.owner, session.id, "vera", Role.EDITOR, 0, 0)
    with pytest.raises(NotFound):  # not addressed to the stranger
        await app.sessions.accept_invitation(app.stranger, created.invitation.id, "")

    joined, role = await app.sessions.accept_invitation(app.viewer, created.invitation.id, "")
    assert (joined.id, role) == (session.id, Role.VIEWER)
    assert app.seqs(session.id) == [(1, "member.joined")]
    # Accepting again is an answer, not a second membership.
    _, again = await app.sessions.accept_invitation(app.viewer, created.invitation.id, "")
    assert again is Role.VIEWER
    assert app.seqs(session.id) == [(1, "member.joined")]
    with pytest.raises(Conflict):
        await app.sessions.create_invitation(app.owner, session.id, "vera", Role.EDITOR, 0, 0)


async def test_a_link_invitation_counts_its_uses_and_expires(app: App) -> None:
    session = await app.sessions.create_session(app.owner, "Pairing", "", "")
    created = await app.sessions.create_invitation(app.owner, session.id, "", Role.EDITOR, 3600, 2)
    assert created.token.startswith(domain.TOKEN_PREFIX)
    assert created.invitation.is_link
    await app.sessions.accept_invitation(app.editor, "", created.token)
    await app.sessions.accept_invitation(app.viewer, "", created.token)
    with pytest.raises(Gone):
        await app.sessions.accept_invitation(app.stranger, "", created.token)

    expiring = await app.sessions.create_invitation(app.owner, session.id, "", Role.VIEWER, 60, 5)
    app.store.now += timedelta(seconds=61)
    with pytest.raises(Gone, match="expired"):
        await app.sessions.accept_invitation(app.stranger, "", expiring.token)
    with pytest.raises(NotFound):
        await app.sessions.accept_invitation(app.stranger, "", "tdi_not-a-token")


async def test_someone_removed_after_an_invitation_was_made_cannot_use_it(app: App) -> None:
    session = await app.sessions.create_session(app.owner, "Pairing", "", "")
    link = await app.sessions.create_invitation(app.owner, session.id, "", Role.EDITOR, 0, 10)
    await app.sessions.accept_invitation(app.editor, "", link.token)
    await app.sessions.remove_member(app.owner, session.id, app.editor.user_id)
    with pytest.raises(PermissionDenied, match="removed"):
        await app.sessions.accept_invitation(app.editor, "", link.token)
    fresh = await app.sessions.create_invitation(app.owner, session.id, "", Role.EDITOR, 0, 10)
    _, role = await app.sessions.accept_invitation(app.editor, "", fresh.token)
    assert role is Role.EDITOR


async def test_only_the_addressee_declines_and_only_the_owner_revokes(app: App) -> None:
    session = await app.sessions.create_session(app.owner, "Pairing", "", "")
    created = await app.sessions.create_invitation(app.owner, session.id, "vera", Role.VIEWER,
                                                   0, 0)
    iid = created.invitation.id
    with pytest.raises(PermissionDenied):
        await app.sessions.decline_invitation(app.owner, iid)
    with pytest.raises(NotFound):
        await app.sessions.decline_invitation(app.stranger, iid)
    with pytest.raises(PermissionDenied):
        await app.sessions.revoke_invitation(app.viewer, iid)
    await app.sessions.decline_invitation(app.viewer, iid)
    assert app.store.t.invitations[iid].status is InvitationState.DECLINED
    assert app.publisher.emitted[-1].type == "invitation.declined"
    with pytest.raises(Gone):
        await app.sessions.accept_invitation(app.viewer, iid, "")


async def test_a_failed_accept_leaves_no_half_membership(app: App) -> None:
    session = await app.sessions.create_session(app.owner, "Pairing", "", "")
    created = await app.sessions.create_invitation(app.owner, session.id, "vera", Role.VIEWER,
                                                   0, 0)
    app.store.fail_on.add("use_invitation")  # after the member row, before the rest
    with pytest.raises(InjectedFault):
        await app.sessions.accept_invitation(app.viewer, created.invitation.id, "")
    assert await app.memberships.membership(session.id, app.viewer.user_id) is None
    assert app.seqs(session.id) == []
    assert app.store.t.invitations[created.invitation.id].uses == 0
    _, role = await app.sessions.accept_invitation(app.viewer, created.invitation.id, "")
    assert role is Role.VIEWER


# --- chat and the session sequence --------------------------------------------------------


async def test_chat_messages_and_events_share_one_gap_free_sequence(app: App) -> None:
    sid = await app.session_with_members()  # seq 1, 2: the two joins
    first = await app.sessions.post_message(app.editor, sid, "hello", "c-1")
    second = await app.sessions.post_message(app.viewer, sid, "hi", "")
    assert (first.seq, second.seq) == (3, 4)
    assert app.seqs(sid) == [(1, "member.joined"), (2, "member.joined"),
                             (3, "chat.message"), (4, "chat.message")]
    assert [e.seq for e in app.publisher.events if e.type == "chat.message"] == [3, 4]
    # A retry with the same client_id is the same message: no new seq.
    again = await app.sessions.post_message(app.editor, sid, "hello", "c-1")
    assert (again.id, again.seq) == (first.id, 3)
    messages, next_after = await app.sessions.list_messages(app.viewer, sid, 0, 1)
    assert ([m.id for m in messages], next_after) == ([first.id], 3)


async def test_a_client_id_raced_in_by_another_connection_answers_with_that_message(
        app: App) -> None:
    sid = await app.session_with_members()
    app.repo.race_client_id = "c-9"
    message = await app.sessions.post_message(app.editor, sid, "hello", "c-9")
    stored = [m for m in app.store.t.messages if m.client_id == "c-9"]
    assert len(stored) == 1
    assert message.id == stored[0].id
    assert not [e for e in app.publisher.events if e.type == "chat.message"], \
        "the other connection's request publishes its own message"


async def test_strangers_cannot_post_and_a_failed_post_uses_no_sequence_number(app: App) -> None:
    sid = await app.session_with_members()
    with pytest.raises(NotFound):
        await app.sessions.post_message(app.stranger, sid, "hi", "")
    app.store.fail_on.add("post_message")
    with pytest.raises(InjectedFault):
        await app.sessions.post_message(app.editor, sid, "lost?", "")
    message = await app.sessions.post_message(app.editor, sid, "kept", "")
    assert message.seq == 3, "the failed post rolled its seq back"
    assert [m.body for m in app.store.t.messages] == ["kept"]


# --- ending a session ---------------------------------------------------------------------


async def test_an_ended_session_is_read_only_and_ending_it_twice_says_nothing_new(
        app: App) -> None:
    sid = await app.session_with_members()
    with pytest.raises(PermissionDenied):
        await app.sessions.end_session(app.editor, sid)
    ended = await app.sessions.end_session(app.owner, sid)
    assert ended.status is Status.ENDED
    assert ended.version == 2
    assert app.seqs(sid)[-1] == (3, "session.ended")
    assert app.publisher.events[-1].payload["session"]["status"] == "ended"
    again = await app.sessions.end_session(app.owner, sid)
    assert again == ended
    assert app.seqs(sid)[-1] == (3, "session.ended")
    with pytest.raises(Conflict):
        await app.sessions.post_message(app.editor, sid, "hello", "")
    with pytest.raises(Conflict):
        await app.sessions.update_session(app.owner, sid, title="New", description=None,
                                          language=None, expected_version=None)
    with pytest.raises(Conflict):
        await app.sessions.create_invitation(app.owner, sid, "stan", Role.VIEWER, 0, 0)
    # Still readable by its members.
    session, role, last_seq = await app.sessions.get_session(app.viewer, sid, True)
    assert (session.status, role, last_seq) == (Status.ENDED, Role.VIEWER, 3)


# --- the shared document -----------------------------------------------------------------


async def test_editors_write_the_document_viewers_and_strangers_are_refused(app: App) -> None:
    sid = await app.session_with_members()
    documents = app.documents()
    author: Doc[Any] = Doc()
    update = edit(author, 0, "print(1)")
    assert await documents.apply_update(app.editor, sid, update) == 1
    assert app.publisher.frames == [(sid, 1, update)]
    with pytest.raises(PermissionDenied):
        await documents.apply_update(app.viewer, sid, edit(Doc(), 0, "no"))
    with pytest.raises(NotFound):
        await documents.apply_update(app.stranger, sid, edit(Doc(), 0, "no"))
    view = await documents.get_document(app.viewer, sid)
    assert (view.text, view.version) == ("print(1)", 1)
    assert len(app.publisher.frames) == 1
    # The viewer may sync (read) though not write.
    answer = await documents.sync(app.viewer, sid, Doc().get_state())
    fresh: Doc[Any] = Doc()
    fresh.apply_update(answer.update)
    assert str(fresh.get("code", type=Text)) == "print(1)"


async def test_refused_document_updates_store_nothing(app: App) -> None:
    sid = await app.session_with_members()
    documents = app.documents(max_bytes=1024)
    with pytest.raises(InvalidArgument):
        await documents.apply_update(app.editor, sid, b"\x05not yjs")
    with pytest.raises(DocumentTooLarge):
        await documents.apply_update(app.editor, sid, edit(Doc(), 0, "x" * 2000))
    assert app.store.t.doc_heads == {}
    assert app.store.t.doc_updates == []
    assert app.publisher.frames == []
    # The empty update a client sends when it has nothing new is answered, not stored.
    assert await documents.apply_update(app.editor, sid, b"\x00\x00") == 0
    await app.sessions.end_session(app.owner, sid)
    with pytest.raises(FailedPrecondition) as info:
        await documents.apply_update(app.owner, sid, edit(Doc(), 0, "late"))
    assert info.value.reason == "session_ended"
    assert app.store.t.doc_updates == []


@pytest.mark.parametrize("statement", ["append", "compact", "commit"])
async def test_a_document_write_that_fails_mid_transaction_is_not_acknowledged_or_kept(
        app: App, statement: str) -> None:
    sid = await app.session_with_members()
    # "compact": the second update makes compaction due; "commit": every statement ran and
    # the loaded Doc holds the update when the commit fails.
    documents = app.documents(compact_after=2 if statement == "compact" else 10)
    author: Doc[Any] = Doc()
    assert await documents.apply_update(app.editor, sid, edit(author, 0, "a")) == 1
    lost = edit(author, 1, "b")
    app.store.fail_on.add(statement)
    with pytest.raises(InjectedFault):
        await documents.apply_update(app.editor, sid, lost)
    assert len(app.publisher.frames) == 1, "a failed write is not published"
    view = await documents.get_document(app.viewer, sid)
    assert (view.text, view.version) == ("a", 1)
    assert await documents.apply_update(app.editor, sid, lost) == 2
    assert (await documents.get_document(app.viewer, sid)).text == "ab"


async def test_loaded_documents_stay_within_their_byte_budget(app: App) -> None:
    sid_a = await app.session_with_members()
    sid_b = await app.session_with_members()
    documents = app.documents(loaded=LoadedDocuments(cache_bytes=10_000))
    await documents.apply_update(app.editor, sid_a, edit(Doc(), 0, "a" * 3000))
    await documents.apply_update(app.editor, sid_b, edit(Doc(), 0, "b" * 3000))
    assert list(documents.loaded.sizes()) == [sid_b], "two of them weigh more than 10 kB"
    assert (await documents.get_document(app.viewer, sid_a)).text == "a" * 3000
    assert list(documents.loaded.sizes()) == [sid_a]
