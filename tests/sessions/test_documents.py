"""Document size limits (issue 14, item 3): the document cap, loaded documents bounded in bytes,
and gRPC message limits that agree with them, over real gRPC, PostgreSQL and the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY
from pycrdt import Doc, Text
from tandem.sessions.v1 import sessions_pb2 as pb
from tandem.sessions.v1 import sessions_pb2_grpc

from gateway import keys
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.realtime.config import RealtimeConfig
from services.common.config import CommonConfig, ConfigError, Env, grpc_message_limit
from services.common.grpcserver import server_options
from services.common.identity import Caller, service_metadata
from services.sessions.config import SessionsConfig
from services.sessions.documents import LOADED_OVERHEAD_BYTES
from services.sessions.server import build_documents, wire
from services.sessions.usecases import DocumentUseCases
from tests.helpers.identity import sign_in_grpc
from tests.helpers.realtime import synced_text
from tests.sessions.conftest import World, expect_code, make_world, reason, unique_login

LIMIT = 32 * 1024


def singles(doc: Doc, count: int) -> bytes:
    """The issue's attack: `count` single-character items that cannot merge (each typed in
    front of the last), as one update."""
    before = doc.get_state()
    text = doc.get("code", type=Text)
    with doc.transaction():
        for _ in range(count):
            text.insert(0, "x")
    return doc.get_update(before)


def edit(doc: Doc, index: int, value: str) -> bytes:
    before = doc.get_state()
    doc.get("code", type=Text).insert(index, value)
    return doc.get_update(before)


def delete(doc: Doc, index: int, length: int) -> bytes:
    before = doc.get_state()
    del doc.get("code", type=Text)[index:index + length]
    return doc.get_update(before)


@pytest.fixture
async def small(stack: Callable[..., Any]) -> AsyncIterator[World]:
    """Auth + sessions with a 32 KiB document limit."""
    async for world in make_world(stack, DOCUMENT_MAX_BYTES=str(LIMIT)):
        yield world


@asynccontextmanager
async def running_gateway(env: dict[str, str]) -> AsyncIterator[tuple[str, web.Application]]:
    """An in-process gateway over `env`; yields its base URL and app."""
    app = create_app(GatewayConfig.from_env(Env({**env, "GATEWAY_PORT": "0"})))
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/"), app


@pytest.fixture
async def gateway(small: World, base_env: dict[str, str]) -> AsyncIterator[str]:
    """An in-process gateway in front of `small`'s services; yields its base URL."""
    async with running_gateway({**base_env, **small.env}) as (url, _):
        yield url


async def apply(world: World, session_id: str, update: bytes) -> int:
    reply = await world.stub.ApplyDocumentUpdate(
        pb.ApplyDocumentUpdateRequest(session_id=session_id, update=update),
        metadata=world.editor.metadata)
    return reply.version


async def stored(world: World, session_id: str) -> tuple[int, str]:
    """The stored document's version and text, as a member reads them."""
    doc = await world.stub.GetDocument(pb.GetDocumentRequest(session_id=session_id),
                                       metadata=world.viewer.metadata)
    return doc.version, doc.text


async def test_the_attack_is_refused_with_a_clear_error_and_the_document_stays_readable(
        small: World, gateway: str) -> None:
    session = await small.session_with_members()
    model: Doc = Doc()  # what the service should hold: every accepted update, in order
    author: Doc = Doc(client_id=11)
    attacker: Doc = Doc(client_id=99)
    first = edit(author, 0, "def main():\n    pass\n")
    assert await apply(small, session.id, first) == 1
    model.apply_update(first)

    accepted = refused = 0
    refusals_before = _sample("tandem_document_updates_too_large_total")
    for _ in range(12):
        update = singles(attacker, 500)  # about 7 KB of single characters each
        # New content is counted (state + update, refused unread when over); what is
        # stored must be within the limit too.
        fits = (len(model.get_update()) + len(update) <= LIMIT
                and len(_merged(model, update)) <= LIMIT)
        if fits:
            await apply(small, session.id, update)
            model.apply_update(update)
            accepted += 1
            continue
        before = await stored(small, session.id)
        error = await expect_code(grpc.StatusCode.RESOURCE_EXHAUSTED, small.stub.ApplyDocumentUpdate(
            pb.ApplyDocumentUpdateRequest(session_id=session.id, update=update),
            metadata=small.editor.metadata))
        assert reason(error) == "document_too_large"
        assert str(LIMIT) in (error.details() or "")
        # Nothing of the refused update is stored, and nothing already stored is lost
        # (the refusal may have folded the log into the snapshot: same text, same version).
        assert await stored(small, session.id) == before
        refused += 1
    assert accepted >= 3
    assert refused >= 1
    assert _sample("tandem_document_updates_too_large_total") == refusals_before + refused

    expected = str(model.get("code", type=Text))
    # Still readable over REST ...
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
        reply = await client.get(f"/api/v1/sessions/{session.id}/document",
                                 headers=small.viewer.headers)
    assert reply.status_code == 200, reply.text
    assert reply.json()["text"] == expected
    # ... and by a fresh client's sync, whose state is within the limit.
    fresh: Doc = Doc()
    synced = await small.stub.SyncDocument(
        pb.SyncDocumentRequest(session_id=session.id, state_vector=fresh.get_state()),
        metadata=small.viewer.metadata)
    fresh.apply_update(synced.update)
    assert str(fresh.get("code", type=Text)) == expected
    assert len(fresh.get_update()) <= LIMIT
    # ... and over the document socket, as a browser editor joins.
    assert await synced_text(gateway, session.id, small.viewer.access_token) == expected
    # A small real edit still fits where the attack did not.
    small_edit = edit(author, 0, "# ok\n")
    assert len(model.get_update()) + len(small_edit) <= LIMIT
    await apply(small, session.id, small_edit)


def _merged(model: Doc, update: bytes) -> bytes:
    """The encoded state `model` would have with `update` applied (model is left alone)."""
    trial: Doc = Doc()
    trial.apply_update(model.get_update())
    trial.apply_update(update)
    return trial.get_update()


async def test_deletes_that_multiply_the_state_cannot_take_it_past_the_limit(small: World) -> None:
    """Deleting every other character splits one item into thousands: a delete set of ~15 KB
    makes a state of ~140 KB. Counting update bytes alone would let it through."""
    session = await small.session_with_members()
    author: Doc = Doc()
    await apply(small, session.id, edit(author, 0, "q" * 10_000))
    before = author.get_state()
    text = author.get("code", type=Text)
    with author.transaction():
        for index in range(1, 5_001):
            del text[index:index + 1]
    amplifying = author.get_update(before)
    assert len(amplifying) + 10_100 < LIMIT < len(author.get_update())
    error = await expect_code(grpc.StatusCode.RESOURCE_EXHAUSTED, small.stub.ApplyDocumentUpdate(
        pb.ApplyDocumentUpdateRequest(session_id=session.id, update=amplifying),
        metadata=small.editor.metadata))
    assert reason(error) == "document_too_large"
    assert await stored(small, session.id) == (1, "q" * 10_000)
    # What a fresh client syncs is the stored state, within the limit.
    synced = await small.stub.SyncDocument(
        pb.SyncDocumentRequest(session_id=session.id, state_vector=Doc().get_state()),
        metadata=small.viewer.metadata)
    assert len(synced.update) <= LIMIT


async def test_a_full_document_can_still_be_cut_down(small: World) -> None:
    """At the limit, an update that only deletes is measured, not counted: it frees room."""
    session = await small.session_with_members()
    author: Doc = Doc()
    # Counted, the new document's empty snapshot (2 bytes) plus `full` lands exactly 4 bytes
    # short of the limit. The length is found with the author's own client id: its varint
    # length varies with the random id, so a stranger's id would miss by several bytes.
    length = LIMIT - 64
    while len(edit(Doc(client_id=author.client_id), 0, "w" * (length + 1))) <= LIMIT - 6:
        length += 1
    full = edit(author, 0, "w" * length)
    assert len(full) == LIMIT - 6
    await apply(small, session.id, full)
    cut = delete(author, 0, length)
    assert len(full) + len(cut) > LIMIT  # counted, it would not fit
    assert await apply(small, session.id, cut) == 2
    assert await stored(small, session.id) == (2, "")
    await apply(small, session.id, edit(author, 0, "fresh start"))
    assert await stored(small, session.id) == (3, "fresh start")


async def test_one_update_larger_than_the_limit_is_refused_as_too_large(small: World) -> None:
    session = await small.session_with_members()
    update = edit(Doc(), 0, "y" * (LIMIT + 1))
    error = await expect_code(grpc.StatusCode.RESOURCE_EXHAUSTED, small.stub.ApplyDocumentUpdate(
        pb.ApplyDocumentUpdateRequest(session_id=session.id, update=update),
        metadata=small.editor.metadata))
    assert reason(error) == "document_too_large"
    assert await small.sql("SELECT * FROM document_updates WHERE session_id = %s", session.id) == []


async def test_deleted_text_frees_its_room_even_before_the_log_is_compacted(small: World) -> None:
    """The write path counts a document's size as its snapshot plus the updates logged since
    (no re-encoding per update); near the limit it compacts to learn the real size."""
    session = await small.session_with_members()
    author: Doc = Doc()
    for round_ in range(4):
        # Each round stores 20 KB and deletes it: 80 KB logged, never more than 20 KB held.
        await apply(small, session.id, edit(author, 0, str(round_) * 20_000))
        await apply(small, session.id, delete(author, 0, 20_000))
    await apply(small, session.id, edit(author, 0, "kept"))
    doc = await small.stub.GetDocument(pb.GetDocumentRequest(session_id=session.id),
                                       metadata=small.viewer.metadata)
    assert doc.text == "kept"
    assert doc.version == 9


def _sample(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    return 0.0 if value is None else value


def _service(world: World, **kwargs: Any) -> DocumentUseCases:
    memberships = wire(world.res, SessionsConfig.from_env(Env({}))).memberships
    return build_documents(world.res, memberships, **kwargs)


async def test_loaded_documents_are_bounded_by_bytes_least_recently_used_first(
        small: World) -> None:
    caller = Caller(small.owner.user_id, internal=False, token=small.owner.access_token)
    sessions = []
    for size in (10_000, 10_000, 10_000):
        session = await small.create()
        await small.stub.ApplyDocumentUpdate(
            pb.ApplyDocumentUpdateRequest(session_id=session.id, update=edit(Doc(), 0, "z" * size)),
            metadata=small.owner.metadata)
        sessions.append(session.id)
    # Room for two of these documents (each weighs its size plus the Doc's overhead), not three.
    service = _service(small, cache_bytes=30_000)
    for session_id in sessions[:2]:
        await service.get_document(caller, session_id)
    sizes = service.loaded.sizes()
    assert list(sizes) == sessions[:2]
    assert all(10_000 <= size < 12_000 for size in sizes.values()), sizes
    # Touch the first, load the third: the second (least recently used) goes.
    await service.get_document(caller, sessions[0])
    await service.get_document(caller, sessions[2])
    assert list(service.loaded.sizes()) == [sessions[0], sessions[2]]
    weight = sum(size + LOADED_OVERHEAD_BYTES for size in service.loaded.sizes().values())
    assert weight <= 30_000
    assert _sample("tandem_documents_loaded_bytes") == weight
    # A document larger than the whole budget is still served, alone.
    big = await small.create()
    await small.stub.ApplyDocumentUpdate(
        pb.ApplyDocumentUpdateRequest(session_id=big.id, update=edit(Doc(), 0, "w" * 30_000)),
        metadata=small.owner.metadata)
    doc = await service.get_document(caller, big.id)
    assert len(doc.text) == 30_000
    assert list(service.loaded.sizes()) == [big.id]
    # Writes keep the count current: the stored size grows with each update (near the
    # limit it is measured, and merging may save a few bytes of what was sent).
    before = service.loaded.sizes()[big.id]
    update = edit(Doc(), 0, "v" * 100)
    await service.apply_update(caller, big.id, update)
    assert before + 100 <= service.loaded.sizes()[big.id] <= before + len(update)


async def test_a_document_over_16_mib_is_read_whole_by_rest_sync_and_other_services(
        stack: Callable[..., Any], base_env: dict[str, str]) -> None:
    """Under a 24 MiB limit every gRPC server and channel (gateway and service-to-service)
    carries a near-full document; before, 16 MiB (gateway) and 4 MiB (services) stopped it."""
    limit = 24 * 1024 * 1024
    async with stack("sessions", "review", DOCUMENT_MAX_BYTES=str(limit)) as s, \
            grpc.aio.insecure_channel(s.addr("auth")) as auth_channel, \
            grpc.aio.insecure_channel(
                s.addr("sessions"),
                options=[("grpc.max_send_message_length", 2 * limit),
                         ("grpc.max_receive_message_length", 2 * limit)]) as channel:
        owner = await sign_in_grpc(auth_channel, unique_login("owner"))
        stub = sessions_pb2_grpc.SessionsServiceStub(channel)
        session = (await stub.CreateSession(pb.CreateSessionRequest(title="Big"),
                                            metadata=owner.metadata)).session
        author: Doc = Doc()
        chunk = 6 * 1024 * 1024
        for i in range(3):  # 18 MiB in three updates, each over gRPC's 4 MiB default
            await stub.ApplyDocumentUpdate(pb.ApplyDocumentUpdateRequest(
                session_id=session.id, update=edit(author, i * chunk, "abcdefgh"[i] * chunk)),
                metadata=owner.metadata, timeout=60)
        expected_length = 3 * chunk

        # Another service's channel to sessions (review's, as the AI service reads documents).
        review = s.runtimes["review"].resources
        peer = sessions_pb2_grpc.SessionsServiceStub(review.channel("sessions"))
        internal = service_metadata(review.config.service_token)
        via_peer = await peer.GetDocument(pb.GetDocumentRequest(session_id=session.id),
                                          metadata=internal, timeout=60)
        assert len(via_peer.text) == expected_length

        env = {**base_env, **s.env, "GRPC_DEADLINE_SECONDS": "60"}
        async with running_gateway(env) as (base, app):
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                reply = await client.get(f"/api/v1/sessions/{session.id}/document",
                                         headers=owner.headers)
            assert reply.status_code == 200, reply.text[:300]
            assert len(reply.json()["text"]) == expected_length
            # The gateway's own channel carries a fresh client's whole sync too.
            synced = await app[keys.BACKENDS].sessions.SyncDocument(
                pb.SyncDocumentRequest(session_id=session.id, state_vector=b"\x00"),
                metadata=owner.metadata, timeout=60)
            fresh: Doc = Doc()
            fresh.apply_update(synced.update)
            assert len(str(fresh.get("code", type=Text))) == expected_length


@pytest.mark.parametrize("limit", [64 * 1024, 4 * 1024 * 1024, 24 * 1024 * 1024])
def test_the_document_socket_takes_an_update_as_large_as_the_document_limit(limit: int) -> None:
    config = RealtimeConfig.from_env(Env({"DOCUMENT_MAX_BYTES": str(limit)}))
    # An update message: type (sync), sync type (update), the length as a varuint, the update.
    framing = 2 + len(_varuint(limit))
    assert config.doc_max_frame >= limit + framing
    # ... and not much more: a frame that could never be stored is refused as 1009 on arrival.
    assert config.doc_max_frame <= limit + 16


def _varuint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@pytest.mark.parametrize("value", ["0", "1023", "4MiB", str(256 * 1024 * 1024 + 1)])
def test_a_bad_document_limit_stops_every_process_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="DOCUMENT_MAX_BYTES"):
        CommonConfig.from_env(Env({"TANDEM_ENV": "development", "DOCUMENT_MAX_BYTES": value}))


def test_grpc_message_limits_follow_the_document_limit() -> None:
    # A fresh client's sync answer carries the state twice at most (update and state vector).
    assert grpc_message_limit(4 * 1024 * 1024) == 16 * 1024 * 1024
    assert grpc_message_limit(24 * 1024 * 1024) == 49 * 1024 * 1024
    config = CommonConfig.from_env(Env({"TANDEM_ENV": "development",
                                        "DOCUMENT_MAX_BYTES": str(24 * 1024 * 1024)}))
    options = dict(server_options(config.grpc_max_message_bytes))
    assert options["grpc.max_receive_message_length"] == 49 * 1024 * 1024
    assert options["grpc.max_send_message_length"] == 49 * 1024 * 1024


async def test_an_update_that_cannot_fit_is_refused_before_it_is_decoded(small: World) -> None:
    """At the limit a refusal costs a row lock, not a decode of the update (the issue's
    repeated 4 MB updates each cost the service a scratch document of ~70 MB)."""
    session = await small.session_with_members()
    await apply(small, session.id, edit(Doc(), 0, "f" * (LIMIT - 100)))
    garbage = b"\xff" * 1000  # not a Yjs update, and too big for what room is left
    error = await expect_code(grpc.StatusCode.RESOURCE_EXHAUSTED, small.stub.ApplyDocumentUpdate(
        pb.ApplyDocumentUpdateRequest(session_id=session.id, update=garbage),
        metadata=small.editor.metadata))
    assert reason(error) == "document_too_large"
    # Where it would fit, garbage is still refused as such, and nothing is stored.
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, small.stub.ApplyDocumentUpdate(
        pb.ApplyDocumentUpdateRequest(session_id=session.id, update=b"\xff" * 10),
        metadata=small.editor.metadata))
    assert await stored(small, session.id) == (1, "f" * (LIMIT - 100))
