"""The gRPC floor: one grpc.aio server answering the standard health Check, nothing else.

Every API request crosses at least one gateway -> service hop. This server has the
services' own runtime choices (grpc.aio on uvloop, the same server options) and a
handler that does no work, so what a call costs here is what a hop costs before any
of our code runs. The `grpc_floor` scenario drives it from the benchmark process
with a grpc.aio client, as the gateway does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common.eventloop import install_uvloop
from services.common.grpcserver import SERVER_OPTIONS


async def serve(host: str, port: int) -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    servicer = health.aio.HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.grpcfloor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    install_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
