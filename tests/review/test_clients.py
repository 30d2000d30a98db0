"""The review service's peer clients on their own: profiles of verdict authors from auth."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import grpc

from services.common.peers import Peer
from services.review.clients import AuthDirectory
from tests.helpers.identity import sign_in_grpc


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_profiles_are_decoration_an_unreachable_auth_leaves_them_out() -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{_closed_port()}") as channel:
        directory = AuthDirectory(Peer("auth", channel, "service-token", 2.0), ttl=60)
        assert await directory.people(["7c0a4bd4-0000-4000-8000-000000000001"]) == {}


async def test_profiles_come_from_auth_and_are_cached(stack: Callable[..., Any]) -> None:
    async with stack() as s, grpc.aio.insecure_channel(s.addr("auth")) as channel:
        hubot = await sign_in_grpc(channel, "hubot")
        directory = AuthDirectory(
            Peer("auth", channel, s.runtimes["auth"].config.service_token, 2.0), ttl=60)
        unknown = "7c0a4bd4-0000-4000-8000-000000000002"
        found = await directory.people([hubot.user_id, unknown, hubot.user_id])
        assert list(found) == [hubot.user_id]  # an id auth does not know is left out
        person = found[hubot.user_id]
        assert (person.id, person.github_login) == (hubot.user_id, "hubot")
        assert person.avatar_url
        assert person.created_at is not None
    # The channel is closed now: the profile is still known from the cache.
    assert (await directory.people([hubot.user_id]))[hubot.user_id] == person
