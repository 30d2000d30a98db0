"""Invitations to a GitHub login or by link: accept, decline, revoke, expiry, single use."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import grpc
from tandem.sessions.v1 import sessions_pb2 as pb

from tests.helpers.identity import SignedIn, sign_in_grpc
from tests.sessions.conftest import World, expect_code, reason, unique_login

GONE = grpc.StatusCode.FAILED_PRECONDITION


async def _gone(call: object) -> None:
    error = await expect_code(GONE, call)  # type: ignore[arg-type]
    assert reason(error) == "gone"


async def test_invitation_to_a_login_is_listed_for_the_invitee_and_accepted(world: World) -> None:
    session = await world.create("Review day")
    created = await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, github_login=world.editor.login.upper(), role=pb.ROLE_EDITOR),
        metadata=world.owner.metadata)
    invitation = created.invitation
    assert invitation.status == pb.INVITATION_STATUS_PENDING
    assert invitation.role == pb.ROLE_EDITOR
    assert invitation.token == ""
    assert invitation.github_login == world.editor.login
    assert invitation.session_title == "Review day"
    listed = await world.stub.ListInvitations(pb.ListInvitationsRequest(),
                                              metadata=world.editor.metadata)
    assert [i.id for i in listed.invitations] == [invitation.id]
    assert listed.invitations[0].session_title == "Review day"
    accepted = await world.stub.AcceptInvitation(
        pb.AcceptInvitationRequest(invitation_id=invitation.id), metadata=world.editor.metadata)
    assert accepted.role == pb.ROLE_EDITOR
    assert accepted.session.id == session.id
    assert accepted.session.role == pb.ROLE_EDITOR
    again = await world.stub.AcceptInvitation(
        pb.AcceptInvitationRequest(invitation_id=invitation.id), metadata=world.editor.metadata)
    assert again.role == pb.ROLE_EDITOR
    listed = await world.stub.ListInvitations(pb.ListInvitationsRequest(),
                                              metadata=world.editor.metadata)
    assert listed.invitations[0].status == pb.INVITATION_STATUS_ACCEPTED
    members = await world.stub.ListMembers(pb.ListMembersRequest(session_id=session.id),
                                           metadata=world.editor.metadata)
    assert len(members.members) == 2


async def test_invitation_to_a_login_without_a_user_yet_is_found_when_they_sign_in(
        world: World) -> None:
    session = await world.create()
    login = unique_login("newcomer")
    created = await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, github_login=login, role=pb.ROLE_VIEWER),
        metadata=world.owner.metadata)
    newcomer = await sign_in_grpc(world.auth_channel, login)
    listed = await world.stub.ListInvitations(pb.ListInvitationsRequest(),
                                              metadata=newcomer.metadata)
    assert [i.id for i in listed.invitations] == [created.invitation.id]
    accepted = await world.stub.AcceptInvitation(
        pb.AcceptInvitationRequest(invitation_id=created.invitation.id),
        metadata=newcomer.metadata)
    assert accepted.role == pb.ROLE_VIEWER
    rows = await world.sql("SELECT invitee_id FROM invitations WHERE id = %s",
                           created.invitation.id)
    assert str(rows[0]["invitee_id"]) == newcomer.user_id


async def test_link_token_is_returned_once_and_stored_only_as_a_hash(world: World) -> None:
    session = await world.create()
    created = await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, role=pb.ROLE_VIEWER), metadata=world.owner.metadata)
    token = created.invitation.token
    assert token.startswith("tdi_")
    assert len(token) >= 4 + 43  # 256 bits in base64url
    rows = await world.sql("SELECT * FROM invitations WHERE id = %s", created.invitation.id)
    assert bytes(rows[0]["token_hash"]) == hashlib.sha256(token.encode()).digest()
    assert token not in repr(rows[0])
    listed = await world.stub.ListInvitations(pb.ListInvitationsRequest(),
                                              metadata=world.owner.metadata)
    assert all(i.token == "" for i in listed.invitations)


async def test_a_single_use_link_admits_one_user_and_is_harmless_to_repeat(world: World) -> None:
    session = await world.create()
    token = (await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, role=pb.ROLE_EDITOR), metadata=world.owner.metadata)).invitation.token
    first = await world.stub.AcceptInvitation(pb.AcceptInvitationRequest(token=token),
                                              metadata=world.editor.metadata)
    assert first.role == pb.ROLE_EDITOR
    second = await world.stub.AcceptInvitation(pb.AcceptInvitationRequest(token=token),
                                               metadata=world.editor.metadata)
    assert second.role == pb.ROLE_EDITOR
    await _gone(world.stub.AcceptInvitation(pb.AcceptInvitationRequest(token=token),
                                            metadata=world.viewer.metadata))
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.GetSession(
        pb.GetSessionRequest(session_id=session.id), metadata=world.viewer.metadata))


async def test_concurrent_accepts_of_a_single_use_link_admit_exactly_one(world: World) -> None:
    session = await world.create()
    token = (await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, role=pb.ROLE_VIEWER), metadata=world.owner.metadata)).invitation.token
    users = [await world.sign_in("racer") for _ in range(5)]

    async def accept(metadata: tuple[tuple[str, str], ...]) -> str:
        try:
            await world.stub.AcceptInvitation(pb.AcceptInvitationRequest(token=token),
                                              metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            return reason(exc) or exc.code().name
        return "ok"

    outcomes = await asyncio.gather(*(accept(u.metadata) for u in users))
    assert sorted(outcomes) == ["gone"] * 4 + ["ok"]
    members = await world.stub.ListMembers(pb.ListMembersRequest(session_id=session.id),
                                           metadata=world.owner.metadata)
    assert len(members.members) == 2


async def test_a_multi_use_link_admits_up_to_max_uses(world: World) -> None:
    session = await world.create()
    created = await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, role=pb.ROLE_VIEWER, max_uses=2), metadata=world.owner.metadata)
    assert created.invitation.max_uses == 2
    token = created.invitation.token
    for user in (world.editor, world.viewer):
        await world.stub.AcceptInvitation(pb.AcceptInvitationRequest(token=token),
                                          metadata=user.metadata)
    await _gone(world.stub.AcceptInvitation(pb.AcceptInvitationRequest(token=token),
                                            metadata=world.stranger.metadata))


async def test_expired_invitations_are_gone(world: World) -> None:
    session = await world.create()
    by_login = (await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, github_login=world.editor.login, role=pb.ROLE_EDITOR),
        metadata=world.owner.metadata)).invitation
    link = (await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, role=pb.ROLE_VIEWER, expires_in_seconds=60),
        metadata=world.owner.metadata)).invitation
    # Expiry without sleeping: move the deadline into the past.
    await world.sql("UPDATE invitations SET expires_at = now() - interval '1 second' "
                    "WHERE session_id = %s", session.id)
    await _gone(world.stub.AcceptInvitation(pb.AcceptInvitationRequest(invitation_id=by_login.id),
                                            metadata=world.editor.metadata))
    await _gone(world.stub.AcceptInvitation(pb.AcceptInvitationRequest(token=link.token),
                                            metadata=world.viewer.metadata))
    await _gone(world.stub.DeclineInvitation(pb.DeclineInvitationRequest(invitation_id=by_login.id),
                                             metadata=world.editor.metadata))
    listed = await world.stub.ListInvitations(pb.ListInvitationsRequest(),
                                              metadata=world.editor.metadata)
    assert listed.invitations[0].status == pb.INVITATION_STATUS_EXPIRED


async def test_expiry_defaults_to_seven_days_and_is_bounded(world: World) -> None:
    session = await world.create()
    created = await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, role=pb.ROLE_VIEWER), metadata=world.owner.metadata)
    expires = created.invitation.expires_at.ToDatetime(tzinfo=UTC)
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    for seconds in (59, 30 * 24 * 3600 + 1, -5):
        error = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.CreateInvitation(
            pb.CreateInvitationRequest(session_id=session.id, role=pb.ROLE_VIEWER,
                                       expires_in_seconds=seconds),
            metadata=world.owner.metadata))
        assert "expires_in" in error.details()
    await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, role=pb.ROLE_VIEWER, expires_in_seconds=30 * 24 * 3600),
        metadata=world.owner.metadata)


async def test_bad_invitations_are_refused(world: World) -> None:
    session = await world.session_with_members()
    invalid = [
        pb.CreateInvitationRequest(session_id=session.id, role=pb.ROLE_OWNER),
        pb.CreateInvitationRequest(session_id=session.id),
        pb.CreateInvitationRequest(session_id=session.id, role=pb.ROLE_VIEWER,
                                   github_login="not a login!"),
        pb.CreateInvitationRequest(session_id=session.id, role=pb.ROLE_VIEWER,
                                   github_login=world.stranger.login, max_uses=3),
        pb.CreateInvitationRequest(session_id=session.id, role=pb.ROLE_VIEWER, max_uses=1001),
    ]
    for request in invalid:
        await expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                          world.stub.CreateInvitation(request, metadata=world.owner.metadata))
    for login in (world.editor.login, world.owner.login):
        error = await expect_code(grpc.StatusCode.ABORTED, world.stub.CreateInvitation(
            pb.CreateInvitationRequest(session_id=session.id, github_login=login,
                                       role=pb.ROLE_VIEWER), metadata=world.owner.metadata))
        assert "already a member" in error.details()
    await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, github_login=world.stranger.login, role=pb.ROLE_VIEWER),
        metadata=world.owner.metadata)
    duplicate = await expect_code(grpc.StatusCode.ABORTED, world.stub.CreateInvitation(
        pb.CreateInvitationRequest(session_id=session.id, github_login=world.stranger.login,
                                   role=pb.ROLE_EDITOR), metadata=world.owner.metadata))
    assert "pending" in duplicate.details()


async def test_decline_by_the_invitee(world: World) -> None:
    session = await world.create()
    invitation = (await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, github_login=world.viewer.login, role=pb.ROLE_VIEWER),
        metadata=world.owner.metadata)).invitation
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.DeclineInvitation(
        pb.DeclineInvitationRequest(invitation_id=invitation.id),
        metadata=world.stranger.metadata))
    for _ in range(2):
        await world.stub.DeclineInvitation(pb.DeclineInvitationRequest(invitation_id=invitation.id),
                                           metadata=world.viewer.metadata)
    await _gone(world.stub.AcceptInvitation(pb.AcceptInvitationRequest(invitation_id=invitation.id),
                                            metadata=world.viewer.metadata))
    listed = await world.stub.ListInvitations(pb.ListInvitationsRequest(),
                                              metadata=world.viewer.metadata)
    assert listed.invitations[0].status == pb.INVITATION_STATUS_DECLINED


async def test_revoke_is_for_the_owner_and_makes_the_invitation_gone(world: World) -> None:
    session = await world.session_with_members()
    invitation = (await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, github_login=world.stranger.login, role=pb.ROLE_VIEWER),
        metadata=world.owner.metadata)).invitation
    outsider = await world.sign_in("outsider")
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.RevokeInvitation(
        pb.RevokeInvitationRequest(invitation_id=invitation.id), metadata=outsider.metadata))
    for user in (world.editor, world.viewer, world.stranger):
        await expect_code(grpc.StatusCode.PERMISSION_DENIED, world.stub.RevokeInvitation(
            pb.RevokeInvitationRequest(invitation_id=invitation.id), metadata=user.metadata))
    for _ in range(2):
        await world.stub.RevokeInvitation(pb.RevokeInvitationRequest(invitation_id=invitation.id),
                                          metadata=world.owner.metadata)
    await _gone(world.stub.AcceptInvitation(pb.AcceptInvitationRequest(invitation_id=invitation.id),
                                            metadata=world.stranger.metadata))
    listed = await world.stub.ListInvitations(pb.ListInvitationsRequest(),
                                              metadata=world.stranger.metadata)
    assert listed.invitations[0].status == pb.INVITATION_STATUS_REVOKED


async def test_revoking_an_accepted_invitation_is_a_conflict(world: World) -> None:
    session = await world.create()
    invitation = (await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, github_login=world.editor.login, role=pb.ROLE_EDITOR),
        metadata=world.owner.metadata)).invitation
    await world.stub.AcceptInvitation(pb.AcceptInvitationRequest(invitation_id=invitation.id),
                                      metadata=world.editor.metadata)
    await expect_code(grpc.StatusCode.ABORTED, world.stub.RevokeInvitation(
        pb.RevokeInvitationRequest(invitation_id=invitation.id), metadata=world.owner.metadata))


async def test_accept_needs_an_invitation_of_ones_own(world: World) -> None:
    session = await world.create()
    invitation = (await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, github_login=world.editor.login, role=pb.ROLE_EDITOR),
        metadata=world.owner.metadata)).invitation
    for request in (pb.AcceptInvitationRequest(invitation_id=invitation.id),
                    pb.AcceptInvitationRequest(invitation_id="nope"),
                    pb.AcceptInvitationRequest(token="tdi_not-a-real-token")):
        await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.AcceptInvitation(
            request, metadata=world.stranger.metadata))
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.AcceptInvitation(
        pb.AcceptInvitationRequest(), metadata=world.stranger.metadata))


async def test_accepting_into_an_ended_session_is_a_conflict(world: World) -> None:
    session = await world.create()
    token = (await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, role=pb.ROLE_VIEWER), metadata=world.owner.metadata)).invitation.token
    await world.stub.EndSession(pb.EndSessionRequest(session_id=session.id),
                                metadata=world.owner.metadata)
    await expect_code(grpc.StatusCode.ABORTED, world.stub.AcceptInvitation(
        pb.AcceptInvitationRequest(token=token), metadata=world.viewer.metadata))


async def test_invitations_list_pending_first_then_newest_in_pages(world: World) -> None:
    invitee = await world.sign_in("popular")
    ids: list[str] = []
    for title in ("a", "b", "c", "d"):
        session = await world.create(title)
        created = await world.stub.CreateInvitation(pb.CreateInvitationRequest(
            session_id=session.id, github_login=invitee.login, role=pb.ROLE_VIEWER),
            metadata=world.owner.metadata)
        ids.append(created.invitation.id)
    # The oldest and the newest are settled: the pending ones come first.
    for invitation_id in (ids[0], ids[3]):
        await world.stub.DeclineInvitation(pb.DeclineInvitationRequest(invitation_id=invitation_id),
                                           metadata=invitee.metadata)
    seen: list[str] = []
    cursor = ""
    while True:
        page = await world.stub.ListInvitations(pb.ListInvitationsRequest(limit=1, cursor=cursor),
                                                metadata=invitee.metadata)
        seen += [i.id for i in page.invitations]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == [ids[2], ids[1], ids[3], ids[0]]


# --- the rules a session owner expects (issue 14, item 11) ---------------------------------


async def _link(world: World, session_id: str, uses: int = 5,
                role: pb.Role.ValueType = pb.ROLE_EDITOR) -> pb.Invitation:
    created = await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session_id, role=role, max_uses=uses), metadata=world.owner.metadata)
    return created.invitation


async def _accept_link(world: World, token: str, user: SignedIn) -> pb.AcceptInvitationResponse:
    return await world.stub.AcceptInvitation(pb.AcceptInvitationRequest(token=token),
                                             metadata=user.metadata)


async def _remove(world: World, session_id: str, user: SignedIn,
                  by: SignedIn | None = None) -> None:
    await world.stub.RemoveMember(pb.RemoveMemberRequest(session_id=session_id,
                                                         user_id=user.user_id),
                                  metadata=(by or world.owner).metadata)


async def _is_member(world: World, session_id: str, user: SignedIn) -> bool:
    members = await world.stub.ListMembers(pb.ListMembersRequest(session_id=session_id),
                                           metadata=world.owner.metadata)
    return user.user_id in {m.user_id for m in members.members}


async def test_a_link_cannot_be_declined_by_someone_who_used_it(world: World) -> None:
    session = await world.create()
    link = await _link(world, session.id)
    await _accept_link(world, link.token, world.editor)
    # Declining is the addressee's answer to an invitation made to them; a link is
    # nobody's: one user's "no" must not close it for everyone else.
    refused = await expect_code(grpc.StatusCode.PERMISSION_DENIED, world.stub.DeclineInvitation(
        pb.DeclineInvitationRequest(invitation_id=link.id), metadata=world.editor.metadata))
    assert "link" in refused.details()
    # The owner revokes, never declines; strangers learn nothing.
    await expect_code(grpc.StatusCode.PERMISSION_DENIED, world.stub.DeclineInvitation(
        pb.DeclineInvitationRequest(invitation_id=link.id), metadata=world.owner.metadata))
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.DeclineInvitation(
        pb.DeclineInvitationRequest(invitation_id=link.id), metadata=world.stranger.metadata))
    rows = await world.sql("SELECT status, uses FROM invitations WHERE id = %s", link.id)
    assert (rows[0]["status"], rows[0]["uses"]) == ("pending", 1)
    # Someone else accepting a link another person already used is fine while uses remain.
    accepted = await _accept_link(world, link.token, world.viewer)
    assert accepted.role == pb.ROLE_EDITOR


async def test_an_addressed_invitation_is_declined_only_by_its_addressee(world: World) -> None:
    session = await world.session_with_members()
    invitation = (await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, github_login=world.stranger.login, role=pb.ROLE_VIEWER),
        metadata=world.owner.metadata)).invitation
    for user in (world.owner, world.editor):
        await expect_code(grpc.StatusCode.PERMISSION_DENIED, world.stub.DeclineInvitation(
            pb.DeclineInvitationRequest(invitation_id=invitation.id), metadata=user.metadata))
    outsider = await world.sign_in("outsider")
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.DeclineInvitation(
        pb.DeclineInvitationRequest(invitation_id=invitation.id), metadata=outsider.metadata))
    await world.stub.DeclineInvitation(pb.DeclineInvitationRequest(invitation_id=invitation.id),
                                       metadata=world.stranger.metadata)
    await _gone(world.stub.AcceptInvitation(pb.AcceptInvitationRequest(
        invitation_id=invitation.id), metadata=world.stranger.metadata))


async def test_a_removed_member_cannot_come_back_through_a_link_made_before_the_removal(
        world: World) -> None:
    session = await world.create()
    joined_through, other = await _link(world, session.id), await _link(world, session.id)
    await _accept_link(world, joined_through.token, world.editor)
    await _remove(world, session.id, world.editor)
    for link in (joined_through, other):
        refused = await expect_code(grpc.StatusCode.PERMISSION_DENIED,
                                    _accept_link(world, link.token, world.editor))
        assert "removed" in refused.details()
    assert not await _is_member(world, session.id, world.editor)
    # The refusal used nothing up: the link still admits others.
    rows = await world.sql("SELECT uses FROM invitations WHERE id = %s", other.id)
    assert rows[0]["uses"] == 0
    await _accept_link(world, other.token, world.viewer)
    # A link the owner makes after the removal is a deliberate way back.
    fresh = await _link(world, session.id, role=pb.ROLE_VIEWER)
    back = await _accept_link(world, fresh.token, world.editor)
    assert back.role == pb.ROLE_VIEWER
    assert await _is_member(world, session.id, world.editor)


async def test_a_removed_member_comes_back_only_through_an_invitation_addressed_after_it(
        world: World) -> None:
    session = await world.create()
    # Invited by login, but joined through a link before answering that invitation.
    waiting = (await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, github_login=world.viewer.login, role=pb.ROLE_EDITOR),
        metadata=world.owner.metadata)).invitation
    await _accept_link(world, (await _link(world, session.id, role=pb.ROLE_VIEWER)).token,
                       world.viewer)
    await _remove(world, session.id, world.viewer)
    # Removing someone withdraws what was still waiting for them.
    await expect_code(grpc.StatusCode.PERMISSION_DENIED, world.stub.AcceptInvitation(
        pb.AcceptInvitationRequest(invitation_id=waiting.id), metadata=world.viewer.metadata))
    assert not await _is_member(world, session.id, world.viewer)
    listed = await world.stub.ListInvitations(pb.ListInvitationsRequest(),
                                              metadata=world.viewer.metadata)
    assert {i.id: i.status for i in listed.invitations}[waiting.id] == \
        pb.INVITATION_STATUS_REVOKED
    again = (await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, github_login=world.viewer.login, role=pb.ROLE_VIEWER),
        metadata=world.owner.metadata)).invitation
    back = await world.stub.AcceptInvitation(pb.AcceptInvitationRequest(invitation_id=again.id),
                                             metadata=world.viewer.metadata)
    assert back.role == pb.ROLE_VIEWER


async def test_a_member_who_left_may_rejoin_through_an_open_link(world: World) -> None:
    session = await world.create()
    first, second = await _link(world, session.id), await _link(world, session.id)
    await _accept_link(world, first.token, world.editor)
    # Leaving is the member's own choice, not the owner's: any open link lets them back.
    await _remove(world, session.id, world.editor, by=world.editor)
    await _accept_link(world, second.token, world.editor)
    assert await _is_member(world, session.id, world.editor)
