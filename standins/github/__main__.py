"""`python -m standins.github`: serve the GitHub stand-in until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from aiohttp import web

from standins.github.app import create_app
from standins.github.config import ConfigError, ServerSettings, settings_from_env

log = logging.getLogger("standins.github")
# Request line, status, size and duration: enough to follow what Tandem calls.
# Never headers, so tokens stay out of the log.
ACCESS_LOG_FORMAT = '"%r" %s %b %Tfs'


async def serve(settings: ServerSettings) -> None:
    """Listen until a stop signal arrives, then close connections and resources cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Windows has no add_signal_handler; Ctrl-C then ends asyncio.run instead.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(
        create_app(settings.standin),
        access_log=logging.getLogger("standins.github.access"),
        access_log_format=ACCESS_LOG_FORMAT,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        log.warning(
            "LOCAL GITHUB STAND-IN for development only - not GitHub, no real accounts - "
            "listening on http://%s:%d (public URL %s, client_id %s, webhooks to %s)",
            settings.host,
            settings.port,
            settings.standin.public_url,
            settings.standin.client_id,
            settings.standin.webhook_url or "nowhere",
        )
        await stop.wait()
        log.info("stopping the GitHub stand-in")
    finally:
        await runner.cleanup()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = settings_from_env(os.environ)
    except ConfigError as exc:
        print(f"standins.github: invalid {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        # Most often the port is taken; one line beats a traceback here.
        where = f"{settings.host}:{settings.port}"
        print(f"standins.github: cannot listen on {where}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
