"""Notifications from domain events: delivery, read state, redelivery without duplicates, the outbox."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import orjson
from redis.asyncio import Redis
from tandem.sessions.v1 import sessions_pb2 as pb

from services.common.sessionevents import ConsumerSettings, DomainEventConsumer
from services.sessions.notifications import Notifier, notifications_for
from services.sessions.repository import SessionsRepository
from tests.helpers.identity import SignedIn, sign_in_grpc
from tests.sessions.conftest import World, eventually, expect_code, unique_login


async def _notifications(world: World, user: SignedIn, *, unread: bool = False,
                         count: int = 1) -> list[pb.Notification]:
    async def check() -> list[pb.Notification] | None:
        reply = await world.stub.ListNotifications(pb.ListNotificationsRequest(unread_only=unread),
                                                   metadata=user.metadata)
        found = list(reply.notifications)
        return found if len(found) >= count else None

    return await eventually(check)


async def test_an_invitee_is_notified_and_can_mark_it_read(world: World) -> None:
    session = await world.create("Bug bash")
    invitation = (await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, github_login=world.editor.login, role=pb.ROLE_EDITOR),
        metadata=world.owner.metadata)).invitation
    (note,) = await _notifications(world, world.editor)
    assert note.kind == "invitation.received"
    assert not note.read
    assert orjson.loads(note.payload_json) == {
        "invitation_id": invitation.id, "session_id": session.id, "session_title": "Bug bash",
        "role": "editor", "invited_by": world.owner.user_id}
    await expect_code(grpc.StatusCode.NOT_FOUND, world.stub.MarkNotificationRead(
        pb.MarkNotificationReadRequest(notification_id=note.id), metadata=world.viewer.metadata))
    for _ in range(2):
        await world.stub.MarkNotificationRead(pb.MarkNotificationReadRequest(notification_id=note.id),
                                              metadata=world.editor.metadata)
    unread = await world.stub.ListNotifications(pb.ListNotificationsRequest(unread_only=True),
                                                metadata=world.editor.metadata)
    assert list(unread.notifications) == []
    everything = await world.stub.ListNotifications(pb.ListNotificationsRequest(),
                                                    metadata=world.editor.metadata)
    assert [n.read for n in everything.notifications] == [True]


async def test_a_login_without_a_user_yet_sees_its_notification_after_signing_in(
        world: World) -> None:
    session = await world.create()
    login = unique_login("later")
    await world.stub.CreateInvitation(pb.CreateInvitationRequest(
        session_id=session.id, github_login=login, role=pb.ROLE_VIEWER),
        metadata=world.owner.metadata)
    newcomer = await sign_in_grpc(world.auth_channel, login)
    (note,) = await _notifications(world, newcomer)
    assert note.kind == "invitation.received"


async def test_members_hear_about_role_changes_removal_and_the_inviter_about_accepts(
        world: World) -> None:
    session = await world.session_with_members()
    await world.stub.UpdateMember(pb.UpdateMemberRequest(
        session_id=session.id, user_id=world.viewer.user_id, role=pb.ROLE_EDITOR),
        metadata=world.owner.metadata)
    await world.stub.RemoveMember(pb.RemoveMemberRequest(session_id=session.id,
                                                         user_id=world.viewer.user_id),
                                  metadata=world.owner.metadata)
    # Invitation received, role changed, removed: newest first.
    kinds = [n.kind for n in await _notifications(world, world.viewer, count=3)]
    assert kinds == ["member.removed", "member.role_changed", "invitation.received"]
    accepted = await _notifications(world, world.owner, count=2)
    assert {n.kind for n in accepted} == {"invitation.accepted"}
    assert {orjson.loads(n.payload_json)["user_id"] for n in accepted} == {
        world.editor.user_id, world.viewer.user_id}
    # Leaving on one's own tells nobody.
    await world.stub.RemoveMember(pb.RemoveMemberRequest(session_id=session.id,
                                                         user_id=world.editor.user_id),
                                  metadata=world.editor.metadata)
    assert notifications_for("member.removed", {
        "session_id": session.id, "user_id": world.editor.user_id,
        "actor_id": world.editor.user_id}) == []


async def test_notification_pages_and_cursor(world: World) -> None:
    invitee = await world.sign_in("paged")
    for title in ("a", "b", "c"):
        session = await world.create(title)
        await world.stub.CreateInvitation(pb.CreateInvitationRequest(
            session_id=session.id, github_login=invitee.login, role=pb.ROLE_VIEWER),
            metadata=world.owner.metadata)
    await _notifications(world, invitee, count=3)
    titles: list[str] = []
    cursor = ""
    while True:
        page = await world.stub.ListNotifications(pb.ListNotificationsRequest(limit=2, cursor=cursor),
                                                  metadata=invitee.metadata)
        titles += [orjson.loads(n.payload_json)["session_title"] for n in page.notifications]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert titles == ["c", "b", "a"]


def _entry(event_id: str, session_id: str, user: SignedIn) -> dict[str, Any]:
    return {"event_id": event_id, "type": "invitation.created", "data": orjson.dumps({
        "invitation_id": str(uuid.uuid4()), "session_id": session_id, "session_title": "t",
        "role": "viewer", "invitee_id": user.user_id, "invitee_login": user.login,
        "invited_by": str(uuid.uuid4())})}


async def test_a_redelivered_event_creates_no_duplicate(world: World) -> None:
    """A consumer dies holding an entry; another claims it; the event also arrives twice."""
    session = await world.create()
    user = await world.sign_in("redelivered")
    stream = world.res.keys.key("test-stream", uuid.uuid4().hex)
    client = Redis.from_url(world.res.config.redis_url)
    notifier = Notifier(SessionsRepository(world.res.pool))
    settings = ConsumerSettings(block_ms=100, claim_idle_ms=0)
    dead = DomainEventConsumer(client, stream, "g", notifier.handle, settings, name="dead")
    alive = DomainEventConsumer(client, stream, "g", notifier.handle, settings, name="alive")
    event_id = str(uuid.uuid4())
    try:
        await dead.ensure_group()
        await alive.ensure_group()
        await client.xadd(stream, _entry(event_id, session.id, user))
        assert len(await dead.read()) == 1  # read, never acknowledged: the consumer "crashed"
        assert await alive.read() == []
        claimed = await alive.claim_stale()
        assert len(claimed) == 1
        await alive.handle(claimed)
        assert notifier.created == 1
        # Handling the same entry again (a crash between commit and XACK) and a second
        # copy of the event on the stream (a publish retried by the outbox relay).
        await alive.handle(claimed)
        await client.xadd(stream, _entry(event_id, session.id, user))
        await alive.handle(await alive.read())
        assert notifier.created == 1
        pending = await client.xpending(stream, "g")
        assert pending["pending"] == 0
    finally:
        await client.delete(stream)
        await client.aclose()
    rows = await world.sql("SELECT count(*) AS n FROM notifications WHERE event_id = %s", event_id)
    assert rows[0]["n"] == 1
    (note,) = await _notifications(world, user)
    assert note.kind == "invitation.received"


async def test_a_malformed_entry_is_acknowledged_and_skipped(world: World) -> None:
    stream = world.res.keys.key("test-stream", uuid.uuid4().hex)
    client = Redis.from_url(world.res.config.redis_url)
    notifier = Notifier(SessionsRepository(world.res.pool))
    consumer = DomainEventConsumer(client, stream, "g", notifier.handle,
                                   ConsumerSettings(block_ms=100))
    try:
        await consumer.ensure_group()
        await client.xadd(stream, {"type": "invitation.created", "data": "{broken"})
        # Well-formed JSON without the fields an invitation's notification needs.
        await client.xadd(stream, {"event_id": str(uuid.uuid4()), "type": "invitation.created",
                                   "data": orjson.dumps({"session_id": str(uuid.uuid4())})})
        await consumer.handle(await consumer.read())
        assert notifier.created == 0
        assert (await client.xpending(stream, "g"))["pending"] == 0
    finally:
        await client.delete(stream)
        await client.aclose()


async def test_domain_events_left_in_the_outbox_are_relayed(world: World) -> None:
    """What a request could not publish (Redis down) reaches the stream later."""
    session = await world.create("Outboxed")
    user = await world.sign_in("outboxed")
    data = {"invitation_id": str(uuid.uuid4()), "session_id": session.id,
            "session_title": "Outboxed", "role": "viewer", "invitee_id": user.user_id,
            "invitee_login": user.login, "invited_by": world.owner.user_id}
    await world.sql("INSERT INTO outbox (event_id, type, data, created_at) "
                    "VALUES (%s, 'invitation.created', %s::jsonb, now() - interval '1 minute')",
                    str(uuid.uuid4()), orjson.dumps(data).decode())
    (note,) = await _notifications(world, user)
    assert orjson.loads(note.payload_json)["session_title"] == "Outboxed"

    async def drained() -> bool:
        rows = await world.sql("SELECT count(*) AS n FROM outbox WHERE data->>'session_id' = %s",
                               session.id)
        return rows[0]["n"] == 0

    await eventually(drained)
