"""The services' /metrics endpoint over real sockets: what it serves, and what it refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from services.common.metrics import MetricsServer


@pytest.fixture
async def server() -> AsyncIterator[tuple[MetricsServer, int]]:
    metrics = MetricsServer()
    port = await metrics.start("127.0.0.1", 0)
    try:
        yield metrics, port
    finally:
        await metrics.close()


async def _exchange(port: int, raw: bytes) -> tuple[bytes, bool]:
    """Send raw bytes; return everything answered and whether the server then closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        data = b""
        try:
            async with asyncio.timeout(1.0):
                while chunk := await reader.read(65536):
                    data += chunk
            return data, True
        except TimeoutError:
            return data, False
    finally:
        writer.close()


async def test_get_serves_the_exposition_and_head_its_headers(server: tuple[MetricsServer, int]) -> None:
    _, port = server
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        reply = await client.get("/metrics")
        head = await client.head("/metrics")
        with_query = await client.get("/metrics?name[]=python_info")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == CONTENT_TYPE_LATEST
    names = {family.name for family in text_string_to_metric_families(reply.text)}
    assert {"python_info", "tandem_grpc_server_handled"} <= names
    assert head.status_code == 200
    assert head.headers["content-type"] == CONTENT_TYPE_LATEST
    assert int(head.headers["content-length"]) > 0
    assert head.content == b""
    # The query is ignored, as before: the whole exposition, always in the text format.
    assert with_query.status_code == 200
    assert "tandem_grpc_server_handled" in with_query.text


async def test_other_paths_are_404_and_other_methods_405(server: tuple[MetricsServer, int]) -> None:
    _, port = server
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        missing = await client.get("/")
        trailing = await client.get("/metrics/")
        post = await client.post("/metrics", content=b"x")
        delete = await client.delete("/metrics")
    assert (missing.status_code, missing.text) == (404, "404: Not Found")
    assert trailing.status_code == 404
    for reply in (post, delete):
        assert (reply.status_code, reply.text) == (405, "405: Method Not Allowed")
        assert reply.headers["allow"] == "GET,HEAD"
    # The path is matched once percent-decoded, as aiohttp did.
    data, _ = await _exchange(port, b"GET /%6detrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_one_connection_carries_several_requests(server: tuple[MetricsServer, int]) -> None:
    _, port = server
    two = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    data, closed = await _exchange(port, two)
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 1
    assert data.count(b"HTTP/1.1 404 Not Found\r\n") == 1
    assert not closed  # kept alive for the next scrape
    http10, closed = await _exchange(port, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert http10.startswith(b"HTTP/1.1 200 OK\r\n")
    assert closed


@pytest.mark.parametrize(("raw", "status"), [
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"\xff\xfe\r\n\r\n", b"400"),
    (b"get /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    (b"GET metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    (b"GET /metrics\r\n\r\n", b"400"),
    (b"GET /metrics HTTP/1.1\r\n\r\n", b"400"),  # HTTP/1.1 without Host
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", b"400"),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n", b"400"),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n", b"400"),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X" * 70_000, b"400"),  # a head that never ends
    (b"GET /metrics HTTP/2.0\r\n\r\n", b"505"),
])
async def test_malformed_requests_are_refused_and_the_server_keeps_serving(
        server: tuple[MetricsServer, int], raw: bytes, status: bytes) -> None:
    _, port = server
    data, closed = await _exchange(port, raw)
    assert data.startswith(b"HTTP/1.1 " + status + b" ")
    assert closed
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://127.0.0.1:{port}/metrics")).status_code == 200


async def test_a_request_with_a_body_is_answered_then_the_connection_closed(
        server: tuple[MetricsServer, int]) -> None:
    _, port = server
    # The body is never read, so the connection cannot be reused after it.
    data, closed = await _exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close\r\n" in data
    assert closed


async def test_close_drops_open_connections_and_stops_listening() -> None:
    metrics = MetricsServer()
    port = await metrics.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    await metrics.close()
    async with asyncio.timeout(2):
        while await reader.read(65536):  # the rest of the answer, then the end
            pass
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
