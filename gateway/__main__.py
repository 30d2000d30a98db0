"""Entry point: `python -m gateway`."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.middlewares import SERVER_NAME, security_headers
from gateway.server import serve
from services.common.config import ConfigError, Env, fail
from services.common.eventloop import install_uvloop
from services.common.logs import setup_logging

log = logging.getLogger("gateway.access")


class AccessLogger(AbstractAccessLogger):
    """One structured line per request; never the query string (it may carry a token)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s", request.method, request.path, response.status,
            extra={"method": request.method, "path": request.path, "status": response.status,
                   "duration_ms": round(time * 1000, 2), "remote": request.remote},
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def main() -> None:
    try:
        config = GatewayConfig.from_env(Env())
    except ConfigError as exc:
        fail(exc, "gateway")
    setup_logging("gateway", config.common.log_level, config.common.log_format)
    if config.access_log:
        logging.getLogger("gateway.access").setLevel(logging.INFO)
    install_uvloop()
    logging.getLogger(__name__).info("gateway listening", extra={"port": config.port})
    answer_headers = {**security_headers(config.hsts), "Server": SERVER_NAME}
    asyncio.run(serve(
        create_app(config),
        host=config.host,
        port=config.port,
        answer_headers=answer_headers,
        access_log=log if config.access_log else None,
        access_log_class=AccessLogger,
        shutdown_timeout=config.common.shutdown_grace,
    ))


if __name__ == "__main__":
    main()
