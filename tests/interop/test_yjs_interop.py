"""A real y-websocket WebsocketProvider (Node) and a pycrdt client edit one document via the gateway."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pycrdt import Awareness

from bench.realtime_scenarios import DocClient, ws_url
from scripts.platform import LocalPlatform
from tests.helpers.identity import SignedIn, sign_in_http
from tests.helpers.realtime import Crew

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).with_name("yjs_client.cjs")
WATCH = Path(__file__).with_name("yjs_watch.cjs")
# Longer than y-websocket's messageReconnectTimeout (30 s) plus its 3 s check interval.
IDLE_SECONDS = 40.0


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

    async def listen(self, seconds: float, *, stop_on: str) -> list[dict[str, Any]]:
        """Every line said within `seconds`; returns early on a line whose value is `stop_on`."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + seconds
        heard: list[dict[str, Any]] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), left)
            except TimeoutError:
                break
            assert line, f"node exited: {self.said[-3:]}"
            message: dict[str, Any] = orjson.loads(line)
            self.said.append(message)
            heard.append(message)
            if stop_on in message.values():
                break
        return heard

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def _watcher(platform: LocalPlatform, session_id: str, user: SignedIn,
                   node_modules: Path, *mode: str) -> NodeClient:
    proc = await asyncio.create_subprocess_exec(
        "node", str(WATCH), ws_url(platform.url, f"/api/v1/sessions/{session_id}"),
        user.access_token, *mode, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "NODE_PATH": str(node_modules)})
    return NodeClient(proc)


async def test_a_lone_y_websocket_provider_stays_connected_while_idle(
        platform: LocalPlatform, node_modules: Path) -> None:
    """Issue 14, item 1: y-websocket's provider closes a socket that heard nothing for 30 s.
    Alone, one hears its own awareness renewals echoed back; one whose awareness is null
    sends none, and hears the gateway's keepalive. Each is alone in its own session."""
    owner = sign_in_http(platform.url, f"lone-{secrets.token_hex(3)}")
    nodes = []
    try:
        async with httpx.AsyncClient(base_url=platform.url, timeout=10) as api:
            for mode in ((), ("silent",)):
                created = await api.post("/api/v1/sessions", json={"title": "alone"},
                                         headers=owner.headers)
                assert created.status_code == 201, created.text
                nodes.append(await _watcher(platform, created.json()["id"], owner,
                                            node_modules, *mode))
        await asyncio.gather(*(node.hear("synced") for node in nodes))
        await asyncio.gather(*(node.listen(IDLE_SECONDS, stop_on="disconnected")
                               for node in nodes))
        for node in nodes:
            statuses = [m["status"] for m in node.said if "status" in m]
            assert statuses.count("connected") == 1, statuses
            assert "disconnected" not in statuses, statuses
    finally:
        for node in nodes:
            await node.stop()


async def test_a_viewers_provider_is_told_permission_denied_on_the_document_socket(
        platform: LocalPlatform, node_modules: Path) -> None:
    """Issue 14, item 4: the refusal reaches y-websocket's permission-denied handler."""
    crew = Crew.sign_in(platform.url)
    session_id = crew.session(editor=False)
    node = await _watcher(platform, session_id, crew.viewer, node_modules)
    try:
        await node.hear("synced")
        await node.tell(insert="# a viewer typing\n")
        denied = await node.hear("permission_denied")
        assert "viewers cannot edit" in denied["permission_denied"]
        assert crew.document(session_id)["text"] == ""
        # The socket stays open: the provider is still connected, once.
        await node.tell(done=True)
        await node.hear("text")
        statuses = [m["status"] for m in node.said if "status" in m]
        assert statuses.count("connected") == 1, statuses
        assert "disconnected" not in statuses, statuses
    finally:
        await node.stop()


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

        # The Node client's awareness reached the Python client, labelled with the login of
        # its token (the gateway sets every state's user name; the client said "node").
        seen = Awareness(python.doc)

        def node_present(client: DocClient) -> bool:
            for message in client.awareness:
                seen.apply_awareness_update(message[1:][_prefix(message[1:]):], "interop")
            client.awareness.clear()
            return any(s.get("user", {}).get("name") == owner.login for s in seen.states.values())

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
