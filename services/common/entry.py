"""The shared `python -m services.<name>` entry point: config, logging, run or migrate."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable

from services.common.config import CommonConfig, ConfigError, Env, fail
from services.common.db import migrate
from services.common.eventloop import install_uvloop
from services.common.grpcserver import ServiceRuntime, ServiceSpec
from services.common.logs import setup_logging

log = logging.getLogger(__name__)


def main(name: str, build: Callable[[Env, CommonConfig], ServiceSpec]) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}",
                                     description=f"Run the Tandem {name} service.")
    parser.add_argument("command", nargs="?", choices=("serve", "migrate"), default="serve",
                        help="serve (default) or apply migrations and exit")
    args = parser.parse_args()
    env = Env()
    try:
        config = CommonConfig.from_env(env)
        spec = build(env, config)
    except ConfigError as exc:
        fail(exc, name)
    setup_logging(name, config.log_level, config.log_format)
    install_uvloop()
    if args.command == "migrate":
        applied = asyncio.run(migrate(config.database_url, spec.schema, spec.migrations()))
        log.info("migrations done", extra={"applied": applied})
        return
    if config.development:
        log.warning("TANDEM_ENV=development: local default secrets and gRPC reflection are on")
    asyncio.run(ServiceRuntime(spec, config).run_until_signal())
