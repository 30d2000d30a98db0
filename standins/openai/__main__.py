"""``python -m standins.openai``: run the OpenAI stand-in configured from the environment."""

from __future__ import annotations

import logging
import os
import sys

from aiohttp import web

from standins.openai.app import create_app
from standins.openai.config import ConfigError, settings_from_env


def main() -> None:
    """Validate the environment, say loudly what this is, serve until interrupted."""
    try:
        settings = settings_from_env(os.environ)
    except ConfigError as exc:
        sys.exit(f"standins.openai: {exc}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Loud on purpose: nobody should mistake these canned findings for a real model's.
    print(
        f"*** LOCAL STAND-IN, NOT OpenAI: fake chat-completions server on "
        f"http://{settings.host}:{settings.port}/v1 (model {settings.app.model}, "
        f"key from OPENAI_API_KEY) ***",
        flush=True,
    )
    # run_app handles SIGINT/SIGTERM with a graceful shutdown; print=None because the line
    # above already says where we listen.
    web.run_app(create_app(settings.app), host=settings.host, port=settings.port, print=None)


if __name__ == "__main__":
    main()
