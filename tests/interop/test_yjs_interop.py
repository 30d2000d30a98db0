"""A real y-websocket WebsocketProvider (Node) and a pycrdt client edit one document via the gateway."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pycrdt import Awareness

from bench.realtime_scenarios import DocClient, ws_url
from scripts.platform import LocalPlatform
from tests.helpers.identity import sign_in_http

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).with_name("yjs_client.cjs")


class NodeClient:
    """The Node script as a child process, driven by JSON lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.said: list[dict[str, Any]] = []

    async def tell(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(command) + b"\n")
        await self.proc.stdin.drain()

    async def hear(self, key: str, timeout: float = 20.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    stderr = await self.proc.stderr.read() if self.proc.stderr else b""
                    raise AssertionError(f"node exited: {self.said[-3:]} {stderr[-500:]!r}")
                message: dict[str, Any] = orjson.loads(line)
                self.said.append(message)
                if "error" in message:
                    raise AssertionError(f"node client: {message}")
                if key in message:
                    return message


async def test_a_javascript_yjs_client_and_a_pycrdt_client_share_one_document(
        platform: LocalPlatform, node_modules: Path) -> None:
    owner = sign_in_http(platform.url, f"interop-{secrets.token_hex(3)}")
    async with httpx.AsyncClient(base_url=platform.url, timeout=10) as api:
        created = await api.post("/api/v1/sessions", json={"title": "interop"}, headers=owner.headers)
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]

    python = await DocClient.connect(platform.url, session_id, owner.access_token)
    await asyncio.wait_for(python.synced.wait(), 10)
    await python.insert(0, "print('from python')\n")

    server_url = ws_url(platform.url, f"/api/v1/sessions/{session_id}")
    proc = await asyncio.create_subprocess_exec(
        "node", str(SCRIPT), server_url, owner.access_token,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "NODE_PATH": str(node_modules)})
    node = NodeClient(proc)
    try:
        await node.hear("synced")
        await node.tell(**{"await": "from python"})
        await node.hear("seen")
        await node.tell(insert="console.log('from javascript')\n")
        await python.wait_until(lambda c: "from javascript" in c.value())
        await python.insert(len(python.value()), "# python saw it\n")
        await node.tell(**{"await": "python saw it"})
        await node.hear("seen")

        # The Node client's awareness (user name) reached the Python client.
        seen = Awareness(python.doc)

        def node_present(client: DocClient) -> bool:
            for message in client.awareness:
                seen.apply_awareness_update(message[1:][_prefix(message[1:]):], "interop")
            client.awareness.clear()
            return any(s.get("user", {}).get("name") == "node" for s in seen.states.values())

        await python.wait_until(node_present)

        await node.tell(done=True)
        final = (await node.hear("text"))["text"]
        assert final == python.value()
        assert final == ("print('from python')\nconsole.log('from javascript')\n"
                         "# python saw it\n")
        async with httpx.AsyncClient(base_url=platform.url, timeout=10) as api:
            stored = await api.get(f"/api/v1/sessions/{session_id}/document", headers=owner.headers)
        assert stored.json()["text"] == final
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await python.close()


def _prefix(data: bytes) -> int:
    for i, byte in enumerate(data):
        if byte < 0x80:
            return i + 1
    return len(data)
