"""Signed webhook deliveries, with the headers GitHub's Hookshot sends."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid

import aiohttp

from standins.github.config import StandinConfig
from standins.github.render import JSON
from standins.github.store import Delivery, iso

log = logging.getLogger("standins.github")

# A stable made-up hook id: Tandem may log it, nothing depends on its value.
HOOK_ID = "470004001"


def signature_256(secret: str, body: bytes) -> str:
    """X-Hub-Signature-256: HMAC-SHA256 of the raw body, hex, prefixed sha256=."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_1(secret: str, body: bytes) -> str:
    """X-Hub-Signature, the legacy SHA-1 variant GitHub still sends alongside."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


async def deliver(
    session: aiohttp.ClientSession,
    config: StandinConfig,
    *,
    event: str,
    payload: JSON,
    repository_id: int,
    now: float,
) -> Delivery:
    """POST one event to config.webhook_url; never raises, the outcome is in the Delivery."""
    delivery_id = str(uuid.uuid4())
    action = str(payload.get("action", ""))
    url = config.webhook_url
    if url is None:
        return Delivery(delivery_id, event, action, None, None, "no webhook_url", iso(now))
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/standin",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": HOOK_ID,
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-GitHub-Hook-Installation-Target-ID": str(repository_id),
        "X-Hub-Signature": signature_1(config.webhook_secret, body),
        "X-Hub-Signature-256": signature_256(config.webhook_secret, body),
    }
    timeout = aiohttp.ClientTimeout(total=config.webhook_timeout)
    try:
        async with session.post(url, data=body, headers=headers, timeout=timeout) as response:
            await response.read()
            status: int | None = response.status
            error = None
    except (aiohttp.ClientError, TimeoutError) as exc:
        # Tandem being down is an expected state in local runs, not a stand-in failure.
        status, error = None, f"{type(exc).__name__}: {exc}".strip()
        log.warning("webhook %s %s to %s failed: %s", event, delivery_id, url, error)
    return Delivery(delivery_id, event, action, url, status, error, iso(now))
