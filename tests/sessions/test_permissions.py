"""Every permission rule, for owner, editor, viewer and a non-member, enforced by the service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from tandem.sessions.v1 import sessions_pb2 as pb

from tests.helpers.identity import SignedIn
from tests.sessions.conftest import World, expect_code

OK = grpc.StatusCode.OK
NOT_FOUND = grpc.StatusCode.NOT_FOUND
DENIED = grpc.StatusCode.PERMISSION_DENIED

Call = Callable[[World, pb.Session, SignedIn], Awaitable[Any]]


def _calls() -> dict[str, Call]:
    def meta(user: SignedIn) -> Any:
        return user.metadata

    return {
        "get": lambda w, s, u: w.stub.GetSession(pb.GetSessionRequest(session_id=s.id),
                                                 metadata=meta(u)),
        "members": lambda w, s, u: w.stub.ListMembers(pb.ListMembersRequest(session_id=s.id),
                                                      metadata=meta(u)),
        "membership": lambda w, s, u: w.stub.GetMembership(
            pb.GetMembershipRequest(session_id=s.id), metadata=meta(u)),
        "post_message": lambda w, s, u: w.stub.PostMessage(
            pb.PostMessageRequest(session_id=s.id, body="hello"), metadata=meta(u)),
        "messages": lambda w, s, u: w.stub.ListMessages(pb.ListMessagesRequest(session_id=s.id),
                                                        metadata=meta(u)),
        "events": lambda w, s, u: w.stub.ListEvents(pb.ListEventsRequest(session_id=s.id),
                                                    metadata=meta(u)),
        "update": lambda w, s, u: w.stub.UpdateSession(
            pb.UpdateSessionRequest(session_id=s.id, title="New title"), metadata=meta(u)),
        "end": lambda w, s, u: w.stub.EndSession(pb.EndSessionRequest(session_id=s.id),
                                                 metadata=meta(u)),
        "delete": lambda w, s, u: w.stub.DeleteSession(pb.DeleteSessionRequest(session_id=s.id),
                                                       metadata=meta(u)),
        "change_role": lambda w, s, u: w.stub.UpdateMember(pb.UpdateMemberRequest(
            session_id=s.id, user_id=w.viewer.user_id, role=pb.ROLE_EDITOR), metadata=meta(u)),
        "remove_other": lambda w, s, u: w.stub.RemoveMember(pb.RemoveMemberRequest(
            session_id=s.id, user_id=w.viewer.user_id if u is not w.viewer else w.editor.user_id),
            metadata=meta(u)),
        "transfer": lambda w, s, u: w.stub.TransferOwnership(pb.TransferOwnershipRequest(
            session_id=s.id, new_owner_id=w.editor.user_id if u is not w.editor
            else w.viewer.user_id), metadata=meta(u)),
        "invite": lambda w, s, u: w.stub.CreateInvitation(pb.CreateInvitationRequest(
            session_id=s.id, role=pb.ROLE_VIEWER), metadata=meta(u)),
        "append_event": lambda w, s, u: w.stub.AppendEvent(pb.AppendEventRequest(
            session_id=s.id, type="review.created", payload_json="{}"), metadata=meta(u)),
    }


CALLS = _calls()
READS = ("get", "members", "membership", "post_message", "messages", "events")
OWNER_ONLY = ("update", "end", "delete", "change_role", "remove_other", "transfer", "invite")

EXPECTED: dict[str, dict[str, grpc.StatusCode]] = {
    **{name: {"owner": OK, "editor": OK, "viewer": OK, "stranger": NOT_FOUND} for name in READS},
    **{name: {"owner": OK, "editor": DENIED, "viewer": DENIED, "stranger": NOT_FOUND}
       for name in OWNER_ONLY},
    # Internal-only, whoever the user is.
    "append_event": {"owner": DENIED, "editor": DENIED, "viewer": DENIED, "stranger": DENIED},
}


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_each_role_gets_what_the_contract_says(world: World, name: str) -> None:
    for who, expected in EXPECTED[name].items():
        # A fresh session per attempt: the owner's successful delete/transfer must not
        # change what the next role sees.
        session = await world.session_with_members()
        user = getattr(world, who)
        call = CALLS[name](world, session, user)
        if expected is OK:
            await call
        else:
            await expect_code(expected, call)


async def test_non_members_cannot_tell_a_session_exists(world: World) -> None:
    session = await world.create()
    missing = "0f8fad5b-d9cb-469f-a165-70867728950e"
    for session_id in (session.id, missing):
        error = await expect_code(NOT_FOUND, world.stub.GetSession(
            pb.GetSessionRequest(session_id=session_id), metadata=world.stranger.metadata))
        assert error.details() == "session not found"


async def test_members_may_leave_but_the_owner_may_not(world: World) -> None:
    session = await world.session_with_members()
    for user in (world.editor, world.viewer):
        await world.stub.RemoveMember(pb.RemoveMemberRequest(session_id=session.id,
                                                             user_id=user.user_id),
                                      metadata=user.metadata)
        await expect_code(NOT_FOUND, world.stub.GetSession(
            pb.GetSessionRequest(session_id=session.id), metadata=user.metadata))
    await expect_code(grpc.StatusCode.FAILED_PRECONDITION, world.stub.RemoveMember(
        pb.RemoveMemberRequest(session_id=session.id, user_id=world.owner.user_id),
        metadata=world.owner.metadata))


async def test_the_owner_cannot_be_demoted_or_made_twice(world: World) -> None:
    session = await world.session_with_members()
    await expect_code(grpc.StatusCode.FAILED_PRECONDITION, world.stub.UpdateMember(
        pb.UpdateMemberRequest(session_id=session.id, user_id=world.owner.user_id,
                               role=pb.ROLE_EDITOR), metadata=world.owner.metadata))
    error = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.UpdateMember(
        pb.UpdateMemberRequest(session_id=session.id, user_id=world.editor.user_id,
                               role=pb.ROLE_OWNER), metadata=world.owner.metadata))
    assert "role" in error.details()
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.UpdateMember(
        pb.UpdateMemberRequest(session_id=session.id, user_id=world.editor.user_id),
        metadata=world.owner.metadata))


async def test_changing_the_role_of_a_non_member_is_not_found(world: World) -> None:
    session = await world.session_with_members()
    for user_id in (world.stranger.user_id, "not-a-uuid"):
        await expect_code(NOT_FOUND, world.stub.UpdateMember(pb.UpdateMemberRequest(
            session_id=session.id, user_id=user_id, role=pb.ROLE_VIEWER),
            metadata=world.owner.metadata))
        await expect_code(NOT_FOUND, world.stub.RemoveMember(pb.RemoveMemberRequest(
            session_id=session.id, user_id=user_id), metadata=world.owner.metadata))


async def test_a_role_change_takes_effect_at_once(world: World) -> None:
    session = await world.session_with_members()
    await world.stub.GetSession(pb.GetSessionRequest(session_id=session.id),
                                metadata=world.editor.metadata)  # warm the cache
    reply = await world.stub.UpdateMember(pb.UpdateMemberRequest(
        session_id=session.id, user_id=world.editor.user_id, role=pb.ROLE_VIEWER),
        metadata=world.owner.metadata)
    assert reply.member.role == pb.ROLE_VIEWER
    assert reply.member.user_id == world.editor.user_id
    got = await world.stub.GetSession(pb.GetSessionRequest(session_id=session.id),
                                      metadata=world.editor.metadata)
    assert got.session.role == pb.ROLE_VIEWER
    await expect_code(DENIED, world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, role=pb.ROLE_VIEWER), metadata=world.editor.metadata))


async def test_transfer_makes_the_old_owner_an_editor(world: World) -> None:
    session = await world.session_with_members()
    reply = await world.stub.TransferOwnership(pb.TransferOwnershipRequest(
        session_id=session.id, new_owner_id=world.viewer.user_id), metadata=world.owner.metadata)
    assert reply.session.owner_id == world.viewer.user_id
    assert reply.session.role == pb.ROLE_EDITOR
    assert reply.session.version == session.version + 1
    members = await world.stub.ListMembers(pb.ListMembersRequest(session_id=session.id),
                                           metadata=world.owner.metadata)
    roles = {m.user_id: m.role for m in members.members}
    assert roles == {world.owner.user_id: pb.ROLE_EDITOR, world.viewer.user_id: pb.ROLE_OWNER,
                     world.editor.user_id: pb.ROLE_EDITOR}
    await expect_code(DENIED, world.stub.UpdateSession(pb.UpdateSessionRequest(
        session_id=session.id, title="old owner"), metadata=world.owner.metadata))
    await world.stub.UpdateSession(pb.UpdateSessionRequest(session_id=session.id, title="mine"),
                                   metadata=world.viewer.metadata)
    # The former owner may now leave like any member.
    await world.stub.RemoveMember(pb.RemoveMemberRequest(session_id=session.id,
                                                         user_id=world.owner.user_id),
                                  metadata=world.owner.metadata)


async def test_transfer_to_a_non_member_is_not_found(world: World) -> None:
    session = await world.create()
    await expect_code(NOT_FOUND, world.stub.TransferOwnership(pb.TransferOwnershipRequest(
        session_id=session.id, new_owner_id=world.stranger.user_id),
        metadata=world.owner.metadata))


async def test_removed_members_lose_access_at_once(world: World) -> None:
    session = await world.session_with_members()
    await world.stub.ListMessages(pb.ListMessagesRequest(session_id=session.id),
                                  metadata=world.viewer.metadata)  # warm the cache
    await world.stub.RemoveMember(pb.RemoveMemberRequest(session_id=session.id,
                                                         user_id=world.viewer.user_id),
                                  metadata=world.owner.metadata)
    await expect_code(NOT_FOUND, world.stub.ListMessages(
        pb.ListMessagesRequest(session_id=session.id), metadata=world.viewer.metadata))
    await expect_code(NOT_FOUND, world.stub.PostMessage(
        pb.PostMessageRequest(session_id=session.id, body="still here?"),
        metadata=world.viewer.metadata))


async def test_internal_callers_read_any_session_and_ask_about_any_user(world: World) -> None:
    session = await world.session_with_members()
    got = await world.stub.GetSession(pb.GetSessionRequest(session_id=session.id),
                                      metadata=world.internal)
    assert got.session.role == pb.ROLE_UNSPECIFIED
    membership = await world.stub.GetMembership(pb.GetMembershipRequest(
        session_id=session.id, user_id=world.editor.user_id), metadata=world.internal)
    assert membership.role == pb.ROLE_EDITOR
    # A user asking about someone else gets their own answer, never the other user's.
    own = await world.stub.GetMembership(pb.GetMembershipRequest(
        session_id=session.id, user_id=world.editor.user_id), metadata=world.viewer.metadata)
    assert own.role == pb.ROLE_VIEWER
    await expect_code(NOT_FOUND, world.stub.GetMembership(pb.GetMembershipRequest(
        session_id=session.id, user_id=world.stranger.user_id), metadata=world.internal))
