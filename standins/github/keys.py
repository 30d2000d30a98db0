"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp import web

from standins.github.config import StandinConfig
from standins.github.render import Renderer
from standins.github.store import Account, State, Token


@dataclass(frozen=True)
class Viewer:
    """Who is calling the REST API: a token and its account, or nobody."""

    token: Token | None
    account: Account | None


CONFIG_KEY = web.AppKey("config", StandinConfig)
STATE_KEY = web.AppKey("state", State)
RENDERER_KEY = web.AppKey("renderer", Renderer)
# Opened on start-up and closed on shutdown; used to deliver webhooks.
HTTP_KEY = web.AppKey("http", aiohttp.ClientSession)
VIEWER_KEY = web.RequestKey("viewer", Viewer)
