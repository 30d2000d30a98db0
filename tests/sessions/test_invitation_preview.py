"""PreviewInvitation: the holder of a link's token sees the session and role before accepting,
and whether the link can still be used; nothing changes, and no token means no glimpse."""

from __future__ import annotations

import grpc
from tandem.sessions.v1 import sessions_pb2 as pb

from tests.sessions.conftest import World, expect_code


async def _link(world: World, session_id: str, role: pb.Role.ValueType = pb.ROLE_EDITOR,
                max_uses: int = 0) -> pb.Invitation:
    created = await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session_id, role=role, max_uses=max_uses), metadata=world.owner.metadata)
    return created.invitation


async def _preview(world: World, token: str, user: object) -> pb.PreviewInvitationResponse:
    return await world.stub.PreviewInvitation(pb.PreviewInvitationRequest(token=token),
                                              metadata=user.metadata)  # type: ignore[attr-defined]


async def test_a_stranger_with_the_token_sees_the_session_and_role(world: World) -> None:
    session = await world.create("Pairing on the parser", language="python")
    link = await _link(world, session.id, pb.ROLE_VIEWER)
    seen = await _preview(world, link.token, world.stranger)
    assert seen.session.id == session.id
    assert seen.session.title == "Pairing on the parser"
    assert seen.session.language == "python"
    assert seen.session.status == pb.SESSION_STATUS_ACTIVE
    assert seen.session.role == pb.ROLE_UNSPECIFIED  # not a member (yet)
    assert seen.invitation.role == pb.ROLE_VIEWER
    assert seen.invitation.status == pb.INVITATION_STATUS_PENDING
    assert seen.invitation.invited_by == world.owner.user_id
    assert seen.invitation.token == ""  # never echoed
    # Looking changes nothing: the stranger is still no member, the link still unused.
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.GetSession(
        pb.GetSessionRequest(session_id=session.id), metadata=world.stranger.metadata))
    again = await _preview(world, link.token, world.stranger)
    assert again.invitation.uses == 0
    assert again.invitation.status == pb.INVITATION_STATUS_PENDING


async def test_after_accepting_the_preview_shows_the_link_used_and_the_callers_role(
        world: World) -> None:
    session = await world.create()
    link = await _link(world, session.id, pb.ROLE_EDITOR)
    await world.stub.AcceptInvitation(pb.AcceptInvitationRequest(token=link.token),
                                      metadata=world.stranger.metadata)
    seen = await _preview(world, link.token, world.stranger)
    assert seen.invitation.status == pb.INVITATION_STATUS_ACCEPTED
    assert seen.session.role == pb.ROLE_EDITOR
    # A link with uses left stays pending for the next person.
    shared = await _link(world, session.id, pb.ROLE_VIEWER, max_uses=3)
    await world.stub.AcceptInvitation(pb.AcceptInvitationRequest(token=shared.token),
                                      metadata=world.viewer.metadata)
    other = await _preview(world, shared.token, world.editor)
    assert other.invitation.status == pb.INVITATION_STATUS_PENDING
    assert other.invitation.uses == 1


async def test_revoked_and_expired_links_say_so(world: World) -> None:
    session = await world.create()
    revoked = await _link(world, session.id)
    await world.stub.RevokeInvitation(pb.RevokeInvitationRequest(invitation_id=revoked.id),
                                      metadata=world.owner.metadata)
    assert (await _preview(world, revoked.token, world.stranger)).invitation.status \
        == pb.INVITATION_STATUS_REVOKED
    expired = await _link(world, session.id)
    await world.sql("UPDATE invitations SET expires_at = now() - interval '1 second' "
                    "WHERE id = %s", expired.id)
    assert (await _preview(world, expired.token, world.stranger)).invitation.status \
        == pb.INVITATION_STATUS_EXPIRED
    # A link made before the session ended shows it ended (accepting would be refused).
    before_end = await _link(world, session.id)
    await world.stub.EndSession(pb.EndSessionRequest(session_id=session.id),
                                metadata=world.owner.metadata)
    ended = await _preview(world, before_end.token, world.stranger)
    assert ended.session.status == pb.SESSION_STATUS_ENDED
    assert ended.invitation.status == pb.INVITATION_STATUS_PENDING


async def test_an_unknown_or_missing_token_discloses_nothing(world: World) -> None:
    session = await world.create()
    link = await _link(world, session.id)
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.PreviewInvitation(
        pb.PreviewInvitationRequest(token=link.token + "x"), metadata=world.stranger.metadata))
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, world.stub.PreviewInvitation(
        pb.PreviewInvitationRequest(token=""), metadata=world.stranger.metadata))
    # A user's token is required, as for accepting.
    await expect_code(grpc.StatusCode.UNAUTHENTICATED, world.stub.PreviewInvitation(
        pb.PreviewInvitationRequest(token=link.token), metadata=world.internal))
    # Deleting the session makes its links unknown.
    await world.stub.DeleteSession(pb.DeleteSessionRequest(session_id=session.id),
                                   metadata=world.owner.metadata)
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.PreviewInvitation(
        pb.PreviewInvitationRequest(token=link.token), metadata=world.stranger.metadata))
