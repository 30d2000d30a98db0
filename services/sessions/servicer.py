"""gRPC servicer of the sessions service: proto <-> domain, nothing else."""

from __future__ import annotations

from tandem.sessions.v1 import sessions_pb2_grpc

from services.common.grpcserver import Resources


class SessionsServiceServicer(sessions_pb2_grpc.SessionsServiceServicer):
    """RPCs not yet built answer UNIMPLEMENTED (the generated base class)."""

    def __init__(self, res: Resources) -> None:
        self._res = res
