"""In-process outside services for the service tests: an aiohttp app on a free port, the GitHub
stand-in whose webhooks reach the review service, and the relay that plays the gateway's
webhook route. The ai and review conftests import the fixtures from here."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from aiohttp import web
from tandem.review.v1 import review_pb2, review_pb2_grpc

from services.common.identity import service_metadata


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` in this event loop on a free loopback port; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


# What the gateway's webhook route answers for a refusal of HandleWebhook.
_HTTP_FOR_CODE = {grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.INVALID_ARGUMENT: 400,
                  grpc.StatusCode.UNAVAILABLE: 503}


@dataclass
class Relay:
    """Plays the gateway's webhook route: HTTP deliveries from the stand-in to HandleWebhook."""

    url: str = ""
    review_addr: str | None = None
    # The credential the gateway presents on its calls to a service.
    service_token: str = ""
    # Per delivery, in order: the HTTP status answered and HandleWebhook's outcome ("" when
    # it was refused).
    answers: list[int] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    # What arrived, as (X-Hub-Signature-256, body): a test can replay a real delivery.
    received: list[tuple[str, bytes]] = field(default_factory=list)


@pytest.fixture
async def webhook_relay() -> AsyncIterator[Relay]:
    relay = Relay()

    async def receive(request: web.Request) -> web.Response:
        assert relay.review_addr, "set relay.review_addr once the review service runs"
        body = await request.read()
        relay.received.append((request.headers.get("X-Hub-Signature-256", ""), body))
        outcome = ""
        async with grpc.aio.insecure_channel(relay.review_addr) as channel:
            stub = review_pb2_grpc.ReviewServiceStub(channel)
            try:
                reply = await stub.HandleWebhook(review_pb2.HandleWebhookRequest(
                    event=request.headers.get("X-GitHub-Event", ""),
                    delivery_id=request.headers.get("X-GitHub-Delivery", ""),
                    signature_256=request.headers.get("X-Hub-Signature-256", ""), body=body),
                    metadata=service_metadata(relay.service_token), timeout=20)
                outcome = reply.outcome
                status = 202 if outcome == "ignored" else 200
            except grpc.aio.AioRpcError as exc:
                status = _HTTP_FOR_CODE.get(exc.code(), 500)
        relay.answers.append(status)
        relay.outcomes.append(outcome)
        return web.json_response({"outcome": outcome}, status=status)

    app = web.Application()
    app.router.add_post("/hook", receive)
    async with serving(app) as url:
        relay.url = url + "/hook"
        yield relay


def relayed_github_standin(secret: str) -> object:
    """A `github_standin` fixture (overriding tests/conftest.py's) whose `synchronize` webhooks,
    signed with `secret`, go to the `webhook_relay`."""

    @pytest.fixture
    async def github_standin(webhook_relay: Relay) -> AsyncIterator[str]:
        from standins.github.app import create_app
        from standins.github.config import StandinConfig

        config = StandinConfig(webhook_url=webhook_relay.url, webhook_secret=secret)
        async with serving(create_app(config)) as url:
            yield url

    return github_standin
