"""gRPC servicer of the auth service: proto <-> domain, nothing else."""

from __future__ import annotations

from tandem.auth.v1 import auth_pb2_grpc

from services.common.grpcserver import Resources


class AuthServiceServicer(auth_pb2_grpc.AuthServiceServicer):
    """RPCs not yet built answer UNIMPLEMENTED (the generated base class)."""

    def __init__(self, res: Resources) -> None:
        self._res = res
