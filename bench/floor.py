"""The physical floor: a bare aiohttp handler answering like the gateway's /health."""

from __future__ import annotations

import argparse

from aiohttp import web

from services.common.eventloop import install_uvloop

# Byte for byte what gateway/routes/system.py answers, so the two differ only in the gateway.
BODY = b'{"status":"ok"}'


async def health(_: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # Same event loop as the gateway when it is available, or the floor is not a floor.
    install_uvloop()
    web.run_app(make_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
