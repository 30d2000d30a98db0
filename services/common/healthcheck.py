"""Container health probe: `python -m services.common.healthcheck HOST:PORT` asks grpc.health.v1."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Docker reads 0 as healthy and 1 as unhealthy and reserves every other code,
# so usage errors exit 1 as well (argparse would exit 2).
HEALTHY = 0
UNHEALTHY = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other failure: a compose/k8s event shows it whole.
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(UNHEALTHY)


def _target(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return value


def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if not 0 < seconds <= 60:
        raise argparse.ArgumentTypeError(f"expected 0 < seconds <= 60, got {value!r}")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m services.common.healthcheck",
        description="Exit 0 when the gRPC server reports SERVING, 1 otherwise.",
    )
    parser.add_argument("target", type=_target, help="HOST:PORT of the gRPC server")
    parser.add_argument(
        "--service", default="", help="service name to check (default: the whole server)"
    )
    parser.add_argument(
        "--timeout", type=_timeout, default=2.0, help="deadline in seconds (default: 2)"
    )
    return parser


def check(target: str, service: str = "", timeout: float = 2.0) -> tuple[bool, str]:
    """Call grpc.health.v1.Health/Check once; return (serving, one-line reason)."""
    # A probe to 127.0.0.1 must never go through an HTTP(S)_PROXY set in the container.
    options = [("grpc.enable_http_proxy", 0)]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)
        try:
            response = stub.Check(request, timeout=timeout)
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call):
                details = (exc.details() or "").replace("\n", " ")
                return False, f"{target}: {exc.code().name}: {details}".rstrip(": ")
            return False, f"{target}: {exc!r}"
    status: int = int(response.status)
    name: str = str(health_pb2.HealthCheckResponse.ServingStatus.Name(status))
    label = f"{target} ({service})" if service else target
    return status == health_pb2.HealthCheckResponse.SERVING, f"{label}: {name}"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    target: str = args.target
    service: str = args.service
    timeout: float = args.timeout
    serving, reason = check(target, service, timeout)
    print(reason, file=sys.stdout if serving else sys.stderr)
    return HEALTHY if serving else UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())
