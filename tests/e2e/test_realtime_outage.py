"""A Redis outage: clients are told, the hub resubscribes by itself and refills what was missed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from tandem.sessions.v1 import sessions_pb2 as pb
from tandem.sessions.v1 import sessions_pb2_grpc

from bench.realtime_scenarios import EventsClient
from scripts.devdeps import PrivateRedis, find_free_port
from scripts.platform import LocalPlatform
from tests.helpers.identity import sign_in_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(port=find_free_port(57500), data_dir=tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def outage_platform(base_env: dict[str, str],
                    private_redis: PrivateRedis) -> Iterator[LocalPlatform]:
    # A short sequence check: an event whose publish the sessions service skipped
    # while its own Redis client was recovering shows up within a second.
    env = dict(base_env, REDIS_URL=private_redis.url, REALTIME_SEQ_CHECK_SECONDS="1")
    plat = LocalPlatform.create(env, openai_standin=False)
    with plat:
        plat.wait_ready(90)
        yield plat


async def test_clients_hear_of_the_outage_and_get_missed_events_once_redis_returns(
        outage_platform: LocalPlatform, private_redis: PrivateRedis) -> None:
    owner = sign_in_http(outage_platform.url, "rt-outage-owner")
    async with grpc.aio.insecure_channel(
            f"127.0.0.1:{outage_platform.ports.grpc['sessions']}") as channel:
        stub = sessions_pb2_grpc.SessionsServiceStub(channel)
        session = (await stub.CreateSession(pb.CreateSessionRequest(title="outage"),
                                            metadata=owner.metadata)).session
        client = await EventsClient.connect(outage_platform.url, session.id, owner.access_token)
        try:
            await client.chat("before")
            await client.wait_type("chat.message")

            await asyncio.to_thread(private_redis.stop)
            error = await client.wait_type("error", where=lambda e: e["code"] == "unavailable")
            assert "interrupted" in error["message"]

            # Stored while Redis is down: nobody hears of it live.
            async def post(body: str) -> int:
                reply = await stub.PostMessage(pb.PostMessageRequest(session_id=session.id,
                                                                     body=body),
                                               metadata=owner.metadata, timeout=10)
                return reply.message.seq

            during = await post("during the outage")
            await asyncio.to_thread(private_redis.start)
            # No restart of the gateway: the hub resubscribes and the client catches up.
            missed = await client.wait_type("chat.message", timeout=30,
                                            where=lambda e: e["seq"] == during)
            assert missed["body"] == "during the outage"
            after = await post("after the outage")
            await client.wait_type("chat.message", timeout=15, where=lambda e: e["seq"] == after)
            seqs = [e["seq"] for e in client.of_type("chat.message")]
            assert seqs == sorted(set(seqs))
            assert seqs[-2:] == [during, after]
            # Live pub/sub again (presence is never replayed from the log).
            second = await EventsClient.connect(outage_platform.url, session.id,
                                                owner.access_token)
            joined = await client.wait_type("presence.joined", timeout=15)
            assert joined["connection_id"] == second.welcome["connection_id"]
            await second.close()
        finally:
            await client.close()
