"""The events socket end to end over two gateway replicas: welcome, chat, replay, presence, closes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bench.realtime_scenarios import DocClient, EventsClient, ws_url
from scripts.platform import LocalPlatform
from tests.helpers.realtime import Crew, gateway2, refused

pytestmark = pytest.mark.e2e

__all__ = ["gateway2"]  # the fixture, imported for pytest


@pytest.fixture(scope="module")
def crew(platform: LocalPlatform) -> Crew:
    return Crew.sign_in(platform.url)


async def test_welcome_comes_first_with_the_session_the_role_members_presence_and_last_seq(
        platform: LocalPlatform, crew: Crew) -> None:
    session_id = crew.session()
    first = await EventsClient.connect(platform.url, session_id, crew.owner.access_token)
    await first.chat("before the viewer came")
    viewer = await EventsClient.connect(platform.url, session_id, crew.viewer.access_token)
    try:
        welcome = viewer.welcome
        assert welcome["type"] == "welcome"
        assert welcome["session_id"] == session_id
        assert welcome["session"]["id"] == session_id
        assert welcome["session"]["status"] == "active"
        assert welcome["role"] == "viewer"
        roles = {m["user"]["id"]: m["role"] for m in welcome["members"]}
        assert roles == {crew.owner.user_id: "owner", crew.editor.user_id: "editor",
                         crew.viewer.user_id: "viewer"}
        assert {m["user"]["github_login"] for m in welcome["members"]} >= {crew.owner.login}
        present = {p["user_id"] for p in welcome["presence"]}
        assert present == {crew.owner.user_id, crew.viewer.user_id}
        assert welcome["last_seq"] >= 3  # two joins and the chat message
        assert welcome["at"].endswith("Z")
    finally:
        await first.close()
        await viewer.close()


async def test_non_members_get_404_and_missing_tokens_401_before_the_upgrade(
        platform: LocalPlatform, crew: Crew) -> None:
    session_id = crew.session(editor=False, viewer=False)
    for socket in ("events", "doc"):
        path = f"/api/v1/sessions/{session_id}/{socket}"
        status, body = await refused(platform.url, path, crew.stranger.access_token)
        assert (status, body["error"]["code"]) == (404, "not_found")
        status, body = await refused(platform.url, path, None)
        assert (status, body["error"]["code"]) == (401, "unauthenticated")
        status, _ = await refused(platform.url, path, "not-a-token")
        assert status == 401
    status, _ = await refused(platform.url, "/api/v1/sessions/nope/events",
                              crew.owner.access_token)
    assert status == 404


async def test_chat_over_two_gateways_reaches_everyone_with_one_seq_after_the_ack(
        platform: LocalPlatform, gateway2: str, crew: Crew) -> None:
    session_id = crew.session()
    alice = await EventsClient.connect(platform.url, session_id, crew.owner.access_token)
    bob = await EventsClient.connect(gateway2, session_id, crew.viewer.access_token)
    try:
        ack = await alice.chat("hello from gateway 1", client_id="c-42")
        assert ack["client_id"] == "c-42"
        assert isinstance(ack["seq"], int)
        assert ack["id"]
        for client in (alice, bob):
            message = await client.wait_type("chat.message", where=lambda e: e["seq"] == ack["seq"])
            assert message["body"] == "hello from gateway 1"
            assert message["id"] == ack["id"]
            assert message["session_id"] == session_id
        reply = await bob.chat("and back from gateway 2")
        await alice.wait_type("chat.message", where=lambda e: e["seq"] == reply["seq"])
        assert reply["seq"] == ack["seq"] + 1
        # Stored: the REST history has both, in order.
        history = crew.call("GET", f"/api/v1/sessions/{session_id}/messages").json()["items"]
        assert [m["seq"] for m in history][-2:] == [ack["seq"], reply["seq"]]
    finally:
        await alice.close()
        await bob.close()


async def test_reconnecting_with_last_seq_replays_everything_missed_in_order_none_twice(
        platform: LocalPlatform, gateway2: str, crew: Crew) -> None:
    session_id = crew.session()
    reader = await EventsClient.connect(platform.url, session_id, crew.viewer.access_token)
    await reader.chat("seen live")
    seen = await reader.wait_type("chat.message")
    last_seq = seen["seq"]
    await reader.close()

    writer = await EventsClient.connect(gateway2, session_id, crew.editor.access_token)
    sent = [(await writer.chat(f"while away {i}"))["seq"] for i in range(20)]
    back = await EventsClient.connect(gateway2, session_id, crew.viewer.access_token,
                                      last_seq=last_seq)
    try:
        await back.wait_for(lambda events: len([e for e in events
                                                if e["type"] == "chat.message"]) >= 20)
        # And live again right at the seam: the next message follows without a gap.
        live = await writer.chat("after the reconnect")
        await back.wait_type("chat.message", where=lambda e: e["seq"] == live["seq"])
        seqs = [e["seq"] for e in back.received if "seq" in e]
        assert seqs == list(range(last_seq + 1, live["seq"] + 1))
        bodies = [e["body"] for e in back.of_type("chat.message")]
        assert bodies == [f"while away {i}" for i in range(20)] + ["after the reconnect"]
        assert sent == list(range(last_seq + 1, last_seq + 21))
    finally:
        await writer.close()
        await back.close()


async def test_presence_is_shared_across_gateways_and_departures_are_announced(
        platform: LocalPlatform, gateway2: str, crew: Crew) -> None:
    session_id = crew.session()
    alice = await EventsClient.connect(platform.url, session_id, crew.owner.access_token)
    bob = await EventsClient.connect(gateway2, session_id, crew.editor.access_token)
    try:
        assert crew.owner.user_id in {p["user_id"] for p in bob.welcome["presence"]}
        joined = await alice.wait_type("presence.joined",
                                       where=lambda e: e["user_id"] == crew.editor.user_id)
        assert joined["connection_id"] == bob.welcome["connection_id"]
        assert joined["status"] == "online"

        await bob.send({"type": "presence.update", "cursor": {"line": 3, "ch": 7},
                        "status": "typing"})
        updated = await alice.wait_type("presence.updated",
                                        where=lambda e: e["user_id"] == crew.editor.user_id)
        assert (updated["cursor"], updated["status"]) == ({"line": 3, "ch": 7}, "typing")
        late = await EventsClient.connect(platform.url, session_id, crew.viewer.access_token)
        mine = [p for p in late.welcome["presence"] if p["user_id"] == crew.editor.user_id]
        assert mine[0]["cursor"] == {"line": 3, "ch": 7}
        # Bob hears of the newcomer: had he been told of his own arrival, it would have come
        # before this (presence events reach a connection in order).
        await bob.wait_type("presence.joined", where=lambda e: e["user_id"] == crew.viewer.user_id)
        joins = [e["connection_id"] for e in bob.of_type("presence.joined")]
        assert joins == [late.welcome["connection_id"]], "a client is not told about itself"
        await late.close()

        await bob.close()
        left = await alice.wait_type("presence.left",
                                     where=lambda e: e["user_id"] == crew.editor.user_id)
        assert left["connection_id"] == bob.welcome["connection_id"]
    finally:
        await alice.close()


async def test_bad_frames_get_error_events_and_the_connection_stays_open(
        platform: LocalPlatform, crew: Crew) -> None:
    session_id = crew.session(viewer=False)
    client = await EventsClient.connect(platform.url, session_id, crew.editor.access_token)
    try:
        for frame in ("not json", '{"type": "teleport"}', '{"type": "chat.send", "body": "x"}',
                      '{"type": "hello", "last_seq": -4}', b"\x00\x01"):
            await client.send(frame)
        errors = await client.wait_for(lambda events: [e for e in events
                                                       if e["type"] == "error"][4:] and
                                       [e for e in events if e["type"] == "error"])
        assert len(errors) == 5
        assert all(e["code"] == "invalid_argument" and e["message"] for e in errors)
        assert errors[2]["details"] == [{"field": "client_id",
                                         "message": "client_id is required and must be a "
                                                    "non-empty string"}]
        await client.send({"type": "ping", "id": "p1"})
        pong = await client.wait_type("pong")
        assert pong["id"] == "p1"
        # A refusal by the sessions service is an error event too, naming the message.
        await client.send({"type": "chat.send", "body": "   ", "client_id": "blank"})
        refusal = await client.wait_type("error", where=lambda e: e.get("client_id") == "blank")
        assert refusal["code"] == "invalid_argument"
    finally:
        await client.close()


async def test_a_frame_over_64_kib_closes_with_1009(platform: LocalPlatform, crew: Crew) -> None:
    session_id = crew.session(viewer=False)
    client = await EventsClient.connect(platform.url, session_id, crew.editor.access_token)
    other = await EventsClient.connect(platform.url, session_id, crew.owner.access_token)
    try:
        await client.send('{"type": "ping", "pad": "' + "x" * (64 * 1024) + '"}')
        assert await client.wait_closed() == 1009
        # Nobody else noticed.
        await other.send({"type": "ping"})
        await other.wait_type("pong")
    finally:
        await other.close()


async def test_a_flood_is_answered_with_rate_limited_errors(platform: LocalPlatform,
                                                            crew: Crew) -> None:
    session_id = crew.session(viewer=False)
    client = await EventsClient.connect(platform.url, session_id, crew.editor.access_token)
    try:
        for i in range(80):
            await client.send({"type": "ping", "id": i})
        limited = await client.wait_type("error", where=lambda e: e["code"] == "rate_limited")
        assert limited["retry_after"] > 0
        await client.wait_for(lambda events: len(events) >= 80)
        assert 40 <= len(client.of_type("pong")) < 80
    finally:
        await client.close()


async def test_a_removed_member_is_told_then_closed_with_4403_on_both_sockets(
        platform: LocalPlatform, gateway2: str, crew: Crew) -> None:
    session_id = crew.session()
    events = await EventsClient.connect(gateway2, session_id, crew.editor.access_token)
    doc = await DocClient.connect(platform.url, session_id, crew.editor.access_token)
    watcher = await EventsClient.connect(platform.url, session_id, crew.owner.access_token)
    try:
        await asyncio.wait_for(doc.synced.wait(), 10)
        reply = crew.call("DELETE", f"/api/v1/sessions/{session_id}/members/{crew.editor.user_id}")
        assert reply.status_code == 204, reply.text
        assert await events.wait_closed() == 4403
        assert events.received[-1]["type"] == "member.removed"
        assert events.received[-1]["user_id"] == crew.editor.user_id
        assert await doc.wait_closed() == 4403
        await watcher.wait_type("member.removed")
        status, _ = await refused(gateway2, f"/api/v1/sessions/{session_id}/events",
                                  crew.editor.access_token)
        assert status == 404
    finally:
        await watcher.close()


async def test_ending_the_session_sends_session_ended_then_closes_with_4410(
        platform: LocalPlatform, gateway2: str, crew: Crew) -> None:
    session_id = crew.session()
    clients = [await EventsClient.connect(url, session_id, user.access_token)
               for url, user in ((platform.url, crew.owner), (gateway2, crew.viewer))]
    reply = crew.call("POST", f"/api/v1/sessions/{session_id}/end")
    assert reply.status_code == 200, reply.text
    for client in clients:
        assert await client.wait_closed() == 4410
        assert client.received[-1]["type"] == "session.ended"
    # Reconnecting afterwards: the welcome says so, a replay still works, then 4410.
    late = await EventsClient.connect(gateway2, session_id, crew.viewer.access_token, last_seq=0)
    assert late.welcome["session"]["status"] == "ended"
    assert await late.wait_closed() == 4410
    assert late.received[-1]["type"] == "session.ended"


async def test_a_fresh_token_is_accepted_on_a_live_connection(platform: LocalPlatform,
                                                              crew: Crew) -> None:
    session_id = crew.session(viewer=False)
    client = await EventsClient.connect(platform.url, session_id, crew.editor.access_token)
    try:
        refreshed = crew.call("POST", "/api/v1/auth/refresh",
                              json={"refresh_token": crew.editor.refresh_token})
        assert refreshed.status_code == 200, refreshed.text
        crew.editor = type(crew.editor)(crew.editor.user_id, crew.editor.login,
                                        refreshed.json()["access_token"],
                                        refreshed.json()["refresh_token"])
        await client.send({"type": "auth", "access_token": crew.editor.access_token})
        ok = await client.wait_type("auth.ok")
        assert ok["expires_at"].endswith("Z")
        await client.send({"type": "auth", "access_token": crew.owner.access_token})
        wrong = await client.wait_type("error", where=lambda e: e["code"] == "unauthenticated")
        assert "another user" in wrong["message"]
    finally:
        await client.close()


def test_the_routes_are_documented_in_openapi(platform: LocalPlatform) -> None:
    paths = httpx.get(platform.url + "/openapi.json").json()["paths"]
    for socket in ("events", "doc"):
        operation = paths[f"/api/v1/sessions/{{id}}/{socket}"]["get"]
        assert "101" in operation["responses"]
        assert "404" in operation["responses"]
    assert ws_url("http://h:1", "/p", "t") == "ws://h:1/p?access_token=t"
